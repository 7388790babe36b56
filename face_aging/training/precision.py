"""--precision: Keras mixed-precision policies around network construction, and loss scaling for float16.

Variables, optimiser state and every loss stay float32 in all three modes; only the layers' computations change.
Networks built for inference (test mode, --eval, --export) are always float32, so a checkpoint restores into any
precision.
"""

import contextlib
import functools
import time

import keras

from face_aging.errors import FlagError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
AUTO = "auto"   # --precision auto: choose_precision() picks one of PRECISIONS for the machine


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (Linux's /proc/cpuinfo; an empty set where it cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# bfloat16 matrix products at least this many times as fast as float32's: the CPU has bfloat16 arithmetic worth
# using (AMX, or AVX512-BF16 where oneDNN makes it pay: 1.9x on an AMD EPYC of 2026-12-06); below, it is emulated or
# no faster, and TensorFlow's bfloat16 convolution gradients crawl (about 3 GFLOP/s on the EPYC of 2026-11-30).
BFLOAT16_FAST = 1.25


@functools.lru_cache(maxsize=None)
def cpu_bfloat16_speedup():
    """How many times as fast as float32 this CPU multiplies bfloat16 matrices (1024x1024, best of 5 each), measured
    once per process (about half a second). 1.0 without measuring where /proc/cpuinfo lists neither AMX nor
    AVX512-BF16: bfloat16 is emulated there."""
    flags = cpu_flags()
    if flags and not flags & {"amx_bf16", "avx512_bf16"}:
        return 1.0
    import tensorflow as tf
    best = {}
    with tf.init_scope(), tf.device("/CPU:0"):   # eager, even when first asked while a function is traced
        for dtype in (tf.float32, tf.bfloat16):
            a = tf.cast(tf.random.stateless_normal([1024, 1024], seed=[1, 2]), dtype)
            float(tf.linalg.matmul(a, a)[0, 0])   # warm-up: the kernel's first call
            times = []
            for _ in range(5):
                start = time.perf_counter()
                float(tf.linalg.matmul(a, a)[0, 0])
                times.append(time.perf_counter() - start)
            best[dtype] = min(times)
    return best[tf.float32] / best[tf.bfloat16]


def cpu_bfloat16_fast(cpu, speedup=cpu_bfloat16_speedup):
    """(whether this CPU's bfloat16 arithmetic pays, why) for a CPU with flags `cpu`: AMX, or bfloat16 matrix
    products measured (`speedup()`, only without AMX) at least BFLOAT16_FAST times float32's. The one rule for both
    --precision auto and the form bfloat16 layers take (face_aging/layers.py)."""
    if "amx_bf16" in cpu:
        return True, "this CPU has AMX bfloat16 matrix units"
    ratio = speedup()
    if ratio >= BFLOAT16_FAST:
        return True, f"bfloat16 matrix products measured {ratio:.1f}x float32's on this CPU"
    return False, f"bfloat16 would be no faster on this CPU (its matrix products measured {ratio:.1f}x float32's)"


def gpu_compute_capabilities():
    """(major, minor) of every visible GPU (None where TensorFlow does not say)."""
    import tensorflow as tf
    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            found.append(tf.config.experimental.get_device_details(gpu).get("compute_capability"))
        except (ValueError, RuntimeError):
            found.append(None)
    return found


def choose_precision(gpus, cpu, speedup=cpu_bfloat16_speedup):
    """(precision, why) for `gpus` (compute capabilities, [] on a CPU-only machine), `cpu` (its flags) and `speedup`
    (a function giving cpu_bfloat16_speedup's figure; called only on a CPU without AMX).

    GPUs: bfloat16 from Ampere (8.0) on, float16 on Volta and Turing (7.x: float16 tensor cores, no bfloat16 ones).
    CPUs: bfloat16 with AMX, or where bfloat16 matrix products measure BFLOAT16_FAST times float32's (CAAE training at
    128x128 then 1.7x float32 on an AMD EPYC with AVX512-BF16; BENCHMARKS.md). Elsewhere bfloat16 is no faster (on
    another EPYC with AVX512-BF16, 25.8 against 25.8 images/s) and float32 keeps the original's arithmetic for
    nothing. float16 is never chosen on a CPU (check_precision).
    """
    if gpus:
        capability = min(gpus, key=lambda c: c or (0, 0))
        if capability and tuple(capability) >= (8, 0):
            return "mixed_bfloat16", f"GPU compute capability {capability[0]}.{capability[1]}: bfloat16 tensor cores"
        if capability and tuple(capability) >= (7, 0):
            return "mixed_float16", f"GPU compute capability {capability[0]}.{capability[1]}: float16 tensor cores"
        return "float32", "GPU without 16-bit tensor cores (or of unknown compute capability)"
    fast, why = cpu_bfloat16_fast(cpu, speedup)
    return ("mixed_bfloat16" if fast else "float32"), why


def check_precision(name, gpus):
    """Refuse what would only be slow: float16 on a machine without a GPU."""
    if name == "mixed_float16" and not gpus:
        raise FlagError("--precision=mixed_float16: no GPU here, and on a CPU TensorFlow's float16 kernels are slower "
                        "than float32 (0.84x on an AMD EPYC with AVX-512, 0.15x on an Intel Xeon with AMX: "
                        "BENCHMARKS.md); float16 is for GPUs. Use --precision auto, float32 or mixed_bfloat16")


def for_training(name, gpus=None, cpu=None, speedup=cpu_bfloat16_speedup):
    """The precision a training run computes in for --precision `name`, and the console's line about it (None when
    there is nothing to say: float32 asked for). `gpus`/`cpu`/`speedup` default to this machine's."""
    gpus = gpu_compute_capabilities() if gpus is None else gpus
    if name == AUTO:
        chosen, why = choose_precision(gpus, cpu_flags() if cpu is None else cpu, speedup)
        return chosen, f"Precision auto: {chosen} ({why})"
    check_precision(name, gpus)
    return name, None


@contextlib.contextmanager
def policy(name):
    """Layers created inside compute in `name`'s dtype; the global policy is restored afterwards."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def loss_scaled(optimizer, precision):
    """The optimiser that applies gradients: float16 gradients underflow without dynamic loss scaling.

    The inner optimiser is the one checkpoints hold, so runs can switch precision on resume (the loss scale itself
    starts again from its initial value).
    """
    if precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
