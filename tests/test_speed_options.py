"""--precision, --xla and --strategy: the same training, computed differently (correctness only; speed is in
benchmarks/)."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import REPO, TINY_FLAGS, assert_same_first_step, call_main, run_main
from face_aging import layers
from face_aging.models.caae.config import CAAEConfig
from face_aging.models.caae.model import CAAE

TINY = dict(image_size=32, enc_channels=8, gen_channels=64)


def _batches(n, size=32, batch=8, seed=0):
    rs = np.random.RandomState(seed)
    for _ in range(n):
        yield (tf.constant(rs.uniform(-1, 1, [batch, size, size, 3]).astype("float32")),
               tf.constant(np.eye(10, dtype="float32")[rs.randint(0, 10, batch)] * 2 - 1),
               tf.constant(np.eye(2, dtype="float32")[rs.randint(0, 2, batch)] * 2 - 1))


def _train(steps, **config):
    keras.utils.set_random_seed(3)
    model = CAAE(CAAEConfig(**TINY, **config), steps_per_epoch=100)
    weights = tf.constant([1e-4, 0.0, 0.0])
    history = [{k: float(v) for k, v in model.train_step(*batch, weights)[0].items()}
               for batch in _batches(steps)]
    return model, history


@pytest.fixture(scope="module")
def float32_run():
    return _train(12)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_losses_track_float32(float32_run, precision):
    reference, expected = float32_run
    model, history = _train(12, precision=precision)
    # Weights, optimiser state and losses stay float32; only the layers compute in 16 bits.
    for variable in model.encoder.weights + model.generator.weights + model.optimizers["EG"].variables:
        assert variable.dtype in ("float32", "int64"), variable.path
    assert model.generator.layers[-1].compute_dtype == precision.split("_")[1]
    curve = {name: (np.array([h[name] for h in history]), np.array([h[name] for h in expected]))
             for name in ("EG_loss", "D_img_loss_input", "D_img_loss_G", "D_z_loss_prior")}
    # 16-bit layers keep 8 (bfloat16) or 11 (float16) bits of mantissa. The reconstruction loss follows the float32
    # run to 3% step by step; the discriminators' losses, which feed back through the game, to 0.1 (mean 0.03).
    np.testing.assert_allclose(*curve.pop("EG_loss"), rtol=0.03)
    for name, (got, want) in curve.items():
        assert np.abs(got - want).max() < 0.1 and np.abs(got - want).mean() < 0.03, (name, got, want)
    assert history[-1]["EG_loss"] < history[0]["EG_loss"]
    # Outputs written as images have the float32 model's range and dtype.
    images = next(_batches(1))[0]
    out = model.reconstruct(images, *next(_batches(1))[1:])
    assert out.dtype == tf.float32 and float(tf.reduce_max(tf.abs(out))) <= 1.0
    if precision == "mixed_float16":                    # float16 uses dynamic loss scaling
        applier = model.appliers["EG"]
        assert isinstance(applier, keras.optimizers.LossScaleOptimizer)
        assert applier.inner_optimizer is model.optimizers["EG"]   # the checkpoint holds the inner optimiser
        assert int(model.optimizers["EG"].iterations) == 12


@pytest.mark.slow
def test_xla_step_matches_the_plain_step(float32_run):
    plain = float32_run[1][:2]                          # the plain run's first two steps (the same seed and batches)
    model, compiled = _train(2, xla=True)
    assert model.train_step._jit_compile
    for a, b in zip(plain, compiled):
        for name in ("EG_loss", "D_img_loss_G", "D_z_loss_z"):
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6)


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set FACE_AGING_CPU_BF16 for one test (layers reads it once)."""
    def set_(value):
        monkeypatch.setenv("FACE_AGING_CPU_BF16", value)
        layers.cpu_bfloat16_native.cache_clear()
    yield set_
    monkeypatch.delenv("FACE_AGING_CPU_BF16", raising=False)
    layers.cpu_bfloat16_native.cache_clear()


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("cpu_kernels", ["float32", "native"])
def test_gemm_layers_in_bfloat16_match_float32(transposed, cpu_kernels, cpu_bf16):
    """On a CPU without fast bfloat16 arithmetic, mixed precision sends stride-2 layers on maps up to 8x8 through the
    matmul form (stock bfloat16 gradients are very slow there) and the others to float32 kernels; with it
    ("native"), TensorFlow's bfloat16 kernels with the float32 rule for the matmul form. Either way the results equal the float32 layer's to
    bfloat16 rounding, gradients included."""
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("the CPU's forms")
    cpu_bf16(cpu_kernels)
    cls = layers.Conv2DTranspose if transposed else layers.Conv2D
    x = tf.random.normal([4, 8, 8, 6])
    reference = cls(5, 5, strides=2, padding="same")
    reference(x)
    mixed = cls(5, 5, strides=2, padding="same", dtype="mixed_bfloat16")
    mixed(x)
    mixed.set_weights(reference.get_weights())
    assert not layers._gemm_applies(reference, 8) and layers._gemm_applies(reference, 4)
    if cpu_kernels == "float32":
        assert layers._gemm_applies(mixed, 8) and not layers._gemm_applies(mixed, 16)
        assert layers._stock_in_float32(mixed)
    else:
        assert not layers._gemm_applies(mixed, 8) and layers._gemm_applies(mixed, 4)
        assert not layers._stock_in_float32(mixed)
        half = cls(5, 5, strides=2, padding="same", dtype="mixed_float16")
        half(x)
        assert layers._stock_in_float32(half) and layers._gemm_applies(half, 8)   # float16: slow kernels anyway
    with pytest.raises(ValueError, match="FACE_AGING_CPU_BF16='amx'"):
        cpu_bf16("amx")
        layers.cpu_bfloat16_native()
    cpu_bf16(cpu_kernels)
    results = []
    for layer in (reference, mixed):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x), tf.float32)
            loss = tf.reduce_sum(y * y)
        results.append([y] + tape.gradient(loss, [x, layer.kernel]))
    for want, got in zip(*results):
        scale = float(tf.reduce_max(tf.abs(want)))
        assert float(tf.reduce_max(tf.abs(tf.cast(got, tf.float32) - want))) < 0.03 * scale


# Two logical CPU devices must be configured before TensorFlow starts: the comparisons run in a process of their own
# (one for both models).
_TWO_CPUS = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
""")

_TWO_DEVICES = _TWO_CPUS + textwrap.dedent("""
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import CAAE
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import PAGAN
    from face_aging.models.pagan.vgg import VGG16, scaled_channels
    rs = np.random.RandomState(0)
    x = tf.constant(rs.uniform(-1, 1, [8, 32, 32, 3]).astype("float32"))
    a = tf.constant(np.eye(10, dtype="float32")[rs.randint(0, 10, 8)] * 2 - 1)
    g = tf.constant(np.eye(2, dtype="float32")[rs.randint(0, 2, 8)] * 2 - 1)
    def caae_step(strategy):
        keras.utils.set_random_seed(5)
        m = CAAE(CAAEConfig(image_size=32, enc_channels=8, gen_channels=64), 10, strategy)
        terms, _ = m.train_step(x, a, g, tf.constant([1e-4, 0.5, 0.1]))
        moments = [v.numpy() for o in m.optimizers.values() for v in o.variables if "momentum" in v.path]
        weights = [v.numpy() for n in (m.encoder, m.generator, m.d_z, m.d_img) for v in n.weights]
        return m.replicas, {k: float(v) for k, v in terms.items()}, moments, weights
    rs = np.random.RandomState(0)
    young = tf.constant(rs.uniform(-1, 1, [4, 32, 32, 3]).astype("float32"))
    old = tf.constant(rs.uniform(-1, 1, [4, 32, 32, 3]).astype("float32"))
    def pagan_step(strategy):
        keras.utils.set_random_seed(5)
        with (strategy or tf.distribute.get_strategy()).scope():
            phi_age = VGG16(4, 32, scaled_channels(1 / 16), fc_units=8, name="phi_age")
            phi_id = VGG16(5, 32, scaled_channels(1 / 16), fc_units=8, name="phi_id")
        m = PAGAN(PAGANConfig(image_size=32, gen_channels=4, res_blocks=1, head_width=1 / 16), phi_age, phi_id,
                  strategy)
        terms, generated = m.train_step(young, old)
        moments = [v.numpy() for o in m.optimizers.values() for v in o.variables if "momentum" in v.path]
        weights = [v.numpy() for n in (m.generator, m.discriminator) for v in n.weights]
        return m.replicas, {k: float(v) for k, v in terms.items()}, moments, weights, generated.numpy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # one for both (collective keys are its own)
    for name, step in (("caae", caae_step), ("pagan", pagan_step)):
        out = {"single": step(None), "mirrored": step(mirrored)}
        np.save(f"{sys.argv[2]}/{name}.npy", np.array(out, dtype=object), allow_pickle=True)
""")


@pytest.fixture(scope="module")
def two_device_steps(tmp_path_factory):
    """{"caae": ..., "pagan": ...}: each model's first step on one device and on two (MirroredStrategy), computed in
    one process of its own (the two logical devices)."""
    out = tmp_path_factory.mktemp("two_devices")
    done = subprocess.run([sys.executable, "-c", _TWO_DEVICES, REPO, str(out)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: np.load(out / f"{name}.npy", allow_pickle=True).item() for name in ("caae", "pagan")}


@pytest.mark.slow
def test_mirrored_step_on_two_devices_equals_one_device_step(two_device_steps):
    """One step, global batch 8: two replicas of 4 faces (synchronised batch norm, losses over the replica count)
    update E, G, D_z and D_img as one device does with all 8."""
    result = two_device_steps["caae"]
    assert_same_first_step(result["single"], result["mirrored"])


@pytest.mark.slow
def test_pagan_mirrored_step_on_two_devices_equals_one_device_step(two_device_steps):
    """PAGAN, one step on 4 young and 4 old faces: two replicas of 2 + 2 (D's batch norm synchronised, judges on
    each replica) update G and D as one device does with all of them, and return the whole batch's G(x)."""
    result = two_device_steps["pagan"]
    (n1, terms1, moments1, weights1, gen1), (n2, terms2, moments2, weights2, gen2) = (result["single"],
                                                                                      result["mirrored"])
    assert (n1, n2) == (1, 2)
    np.testing.assert_allclose(gen2, gen1, atol=1e-5)
    for name, value in terms1.items():
        assert terms2[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    # Adam's first moments (the all-reduced gradients), to float rounding of the largest: the conv biases before
    # G's instance norms have zero gradient in exact arithmetic, so theirs are rounding noise on both sides.
    scale = max(np.abs(a).max() for a in moments1)
    for a, b in zip(moments1, moments2):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * scale)
    diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(weights1, weights2)])
    assert diff.max() <= 2 * 1e-4 + 1e-6 and (diff > 1e-6).mean() < 1e-2


@pytest.mark.slow
def test_multiworker_strategy_trains_through_main(tmp_path):
    """--strategy multiworker without TF_CONFIG: one worker; a tiny run completes and writes its outputs."""
    from face_aging.data.synthetic import write_utkface_folder
    data = tmp_path / "faces"
    write_utkface_folder(str(data), 40, 32, seed=21)
    savedir = tmp_path / "run"
    done = run_main("--model=caae", f"--dataset={data}", f"--savedir={savedir}", *TINY_FLAGS, "--epoch=1",
                    "--pretrain_epochs=0", "--strategy=multiworker", "--precision=mixed_bfloat16")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Precision mixed_bfloat16, 1 replica(s) of 16 faces" in done.stdout
    assert (savedir / "samples" / "01.png").exists() and list((savedir / "checkpoint").glob("model-*.index"))


@pytest.mark.parametrize("args, message", [
    (["--is_train=False", "--testdir=.", "--strategy=mirrored"], "only CAAE and PAGAN training"),
    (["--is_train=False", "--testdir=.", "--precision=mixed_bfloat16"], "apply to training"),
    (["--model=age", "--xla"], "apply to training"),
    (["--precision=float64"], "--precision"),
])
def test_speed_flags_rejected_where_they_do_not_apply(args, message):
    done = call_main(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize("gpus, cpu, speedup, expected", [
    ([(8, 0)], set(), None, "mixed_bfloat16"),            # Ampere and later: bfloat16 tensor cores
    ([(9, 0), (7, 5)], set(), None, "mixed_float16"),     # the weakest GPU decides
    ([(7, 0)], {"amx_bf16"}, None, "mixed_float16"),       # a GPU present: the CPU does not matter
    ([(6, 1)], set(), None, "float32"),
    ([None], set(), None, "float32"),                      # compute capability unknown
    ([], {"avx512_bf16", "amx_bf16", "amx_tile"}, None, "mixed_bfloat16"),
    ([], {"avx512_bf16", "avx512f"}, 1.9, "mixed_bfloat16"),   # bfloat16 arithmetic that pays (BENCHMARKS.md)
    ([], {"avx512_bf16", "avx512f"}, 0.9, "float32"),          # ... and one that does not
    ([], {"avx2"}, 1.0, "float32"),
])
def test_auto_precision_follows_the_hardware(gpus, cpu, speedup, expected):
    from face_aging.training import precision

    def measured():
        assert speedup is not None, "measured where the flags or a GPU already decide"
        return speedup
    chosen, line = precision.for_training("auto", gpus=gpus, cpu=cpu, speedup=measured)
    assert chosen == expected and line.startswith(f"Precision auto: {expected} (")
    if speedup is not None:
        assert f"{speedup:.1f}x" in line
    assert precision.for_training("mixed_bfloat16", gpus=gpus, cpu=cpu, speedup=measured) == ("mixed_bfloat16", None)


def test_bfloat16_speedup_is_measured_once_and_skipped_where_emulated(monkeypatch):
    from face_aging.training import precision
    ratio = precision.cpu_bfloat16_speedup()
    assert ratio > 0 and precision.cpu_bfloat16_speedup() == ratio     # cached: one measurement a process
    flags = precision.cpu_flags()
    if flags and not flags & {"amx_bf16", "avx512_bf16"}:
        assert ratio == 1.0
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    precision.cpu_bfloat16_speedup.cache_clear()
    try:
        assert precision.cpu_bfloat16_speedup() == 1.0                  # emulated: not measured
    finally:
        precision.cpu_bfloat16_speedup.cache_clear()


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    from face_aging.training import precision
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\n")
    assert precision.cpu_flags(str(info)) == {"fpu", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert precision.cpu_flags(str(tmp_path / "absent")) == set()


def test_float16_refused_without_a_gpu_and_auto_said_on_the_console(tmp_path):
    from face_aging.training import precision
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present: float16 is allowed there")
    missing = str(tmp_path / "no_faces")
    for model in ("caae", "pagan"):
        done = call_main(f"--model={model}", "--is_train", "--precision=mixed_float16", f"--dataset={missing}",
                         f"--prepared_dir={missing}", f"--savedir={tmp_path / model}")
        assert done.returncode == 2 and "--precision=mixed_float16: no GPU here" in done.stderr, done.stderr
        assert not (tmp_path / model).exists()
    expected = precision.for_training("auto")[0]
    done = call_main("--model=caae", "--is_train", "--precision=auto", f"--dataset={missing}",
                     f"--savedir={tmp_path / 'auto'}")
    assert f"Precision auto: {expected} (" in done.stdout
    assert done.returncode != 0 and "no_faces" in done.stderr + done.stdout   # then the missing data is named
