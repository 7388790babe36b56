"""--precision: Keras mixed-precision policies around network construction, and loss scaling for float16.

Variables, optimiser state and every loss stay float32 in all three modes; only the layers' computations change.
Networks built for inference (test mode, --eval, --export) are always float32, so a checkpoint restores into any
precision.
"""

import contextlib

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


def choose_precision(gpus, cpu):
    """(precision, why) for `gpus` (compute capabilities, [] on a CPU-only machine) and `cpu` (its flags).

    GPUs: bfloat16 from Ampere (8.0) on, float16 on Volta and Turing (7.x: float16 tensor cores, no bfloat16 ones).
    CPUs: bfloat16 only with AMX, whose bfloat16 matrix units are what make it faster. Without AMX it is no faster:
    emulated on AVX2, and with AVX512-BF16 alone 25.8 against 25.8 images/s (CAAE, BENCHMARKS.md), so float32 keeps
    the original's arithmetic for nothing. float16 is never chosen on a CPU (check_precision).
    """
    if gpus:
        capability = min(gpus, key=lambda c: c or (0, 0))
        if capability and tuple(capability) >= (8, 0):
            return "mixed_bfloat16", f"GPU compute capability {capability[0]}.{capability[1]}: bfloat16 tensor cores"
        if capability and tuple(capability) >= (7, 0):
            return "mixed_float16", f"GPU compute capability {capability[0]}.{capability[1]}: float16 tensor cores"
        return "float32", "GPU without 16-bit tensor cores (or of unknown compute capability)"
    if "amx_bf16" in cpu:
        return "mixed_bfloat16", "this CPU has AMX bfloat16 matrix units"
    return "float32", ("no AMX on this CPU: bfloat16 would be no faster" + (
        " (AVX512-BF16 alone)" if "avx512_bf16" in cpu else " (emulated)"))


def check_precision(name, gpus):
    """Refuse what would only be slow: float16 on a machine without a GPU."""
    if name == "mixed_float16" and not gpus:
        raise FlagError("--precision=mixed_float16: no GPU here, and on a CPU TensorFlow's float16 kernels are slower "
                        "than float32 (0.84x on an AMD EPYC with AVX-512, 0.15x on an Intel Xeon with AMX: "
                        "BENCHMARKS.md); float16 is for GPUs. Use --precision auto, float32 or mixed_bfloat16")


def for_training(name, gpus=None, cpu=None):
    """The precision a training run computes in for --precision `name`, and the console's line about it (None when
    there is nothing to say: float32 asked for). `gpus`/`cpu` default to this machine's."""
    gpus = gpu_compute_capabilities() if gpus is None else gpus
    if name == AUTO:
        chosen, why = choose_precision(gpus, cpu_flags() if cpu is None else cpu)
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
