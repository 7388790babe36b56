"""The recipe's options that put the package's age estimator in PAGAN's training (face_aging/models/pagan/
estimator_judge.py): L_est on G(x), the estimator as phi_age, through main.py; and bundling a generator with its change
scaled."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from face_aging.models.pagan.config import LossWeights, PAGANConfig
from helpers import call_main, write_pagan_run

TINY_PAGAN = ["--image_size=32", "--gen_channels=4", "--res_blocks=1", "--head_width=0.0625", "--batch_size=4"]


def tiny_estimator(seed=3, size=64, width=4):
    """An untrained estimator at 64 px, the smallest size with the four stages phi_age needs (64, 32, 16, 8 px)."""
    import keras
    from face_aging.models.estimator import network
    keras.utils.set_random_seed(seed)
    model = network.build(size, width)
    model.trainable = False
    return model


def write_estimator_run(savedir, seed=3):
    """SAVEDIR as `--model estimator --is_train` leaves it: checkpoint/ and options.json (a tiny untrained network)."""
    from face_aging.training.rundir import RunDir
    model = tiny_estimator(seed)
    run = RunDir(str(savedir)).make()
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), run.checkpoint, max_to_keep=1,
                               checkpoint_name="model").save(1)
    run.write_options({"model": "estimator", "image_size": 64, "width": 4})
    return model


def test_l_est_counts_only_the_shortfall_below_the_target_and_joins_l_g():
    from face_aging.models.pagan import losses
    assert float(losses.estimator_age_loss(tf.constant([60.0, 75.0, 70.0]), 70.0)) == pytest.approx(100 / 3)
    args = [tf.fill([2, 3, 12, 1], v) for v in (0.9, 0.2, 0.1)] + [tf.zeros([2, 4]), tf.ones([2, 4])]
    faces = tf.zeros([2, 8, 8, 3])
    weights = LossWeights(estimator=0.5, estimator_target=70.0)
    off = losses.pagan_losses(*args, faces, faces + 0.1, 1.0, weights)
    on = losses.pagan_losses(*args, faces, faces + 0.1, 1.0, weights, tf.constant([50.0, 80.0]))
    assert "L_est" not in off and float(on["L_est"]) == pytest.approx(200.0) and float(on["est_age"]) == 65.0
    assert float(on["L_G"]) == pytest.approx(float(off["L_G"]) + 0.5 * 200.0, rel=1e-5)


def test_l_fine_counts_the_fine_part_of_the_change_only_and_joins_l_g():
    from scipy.ndimage import gaussian_filter
    from face_aging.models.pagan import losses
    rng = np.random.RandomState(0)
    x = rng.uniform(-0.5, 0.5, (2, 32, 32, 3)).astype(np.float32)
    yy, xx = np.mgrid[:32, :32] / 32.0
    smooth_change = (0.2 * np.sin(np.pi * xx) * np.cos(np.pi * yy))[None, :, :, None] * np.ones((2, 1, 1, 3))
    fine_change = 0.1 * ((np.indices((32, 32)).sum(0) % 2) * 2 - 1)[None, :, :, None] * np.ones((2, 1, 1, 3))
    for change in (smooth_change, fine_change, smooth_change + fine_change):
        c = 127.5 * change
        # scipy's Gaussian with mirrored edges, truncated at 4 sigma: the loss's definition, computed apart
        expected = np.mean((c - gaussian_filter(c, (0, losses.FINE_SIGMA, losses.FINE_SIGMA, 0), mode="reflect",
                                                truncate=4.0)) ** 2)
        got = float(losses.fine_loss(tf.constant(x), tf.constant((x + change).astype(np.float32))))
        assert got == pytest.approx(expected, rel=1e-3)
    # a smooth change costs little here, a checkerboard nearly all of its pixel term
    assert float(losses.fine_loss(tf.constant(x), tf.constant((x + smooth_change).astype(np.float32)))) < 0.03 * float(
        losses.pixel_loss(tf.constant(x), tf.constant((x + smooth_change).astype(np.float32))))
    assert float(losses.fine_loss(tf.constant(x), tf.constant((x + fine_change).astype(np.float32)))) > 0.9 * float(
        losses.pixel_loss(tf.constant(x), tf.constant((x + fine_change).astype(np.float32))))
    young, generated = tf.constant(x[:1]), tf.constant((x + fine_change)[:1].astype(np.float32))
    zeros = tf.zeros([1, 4, 1, 1])
    off = losses.pagan_losses(zeros, zeros, zeros, tf.zeros([1, 2]), tf.zeros([1, 2]), young, generated, 0.0,
                              LossWeights())
    on = losses.pagan_losses(zeros, zeros, zeros, tf.zeros([1, 2]), tf.zeros([1, 2]), young, generated, 0.0,
                             LossWeights(fine=3.0))
    assert "L_fine" not in off and float(on["L_G"]) == pytest.approx(float(off["L_G"]) + 3.0 * float(on["L_fine"]),
                                                                    rel=1e-5)


def test_the_estimator_as_phi_age_and_as_reader_is_frozen_and_gives_g_gradients():
    from face_aging.models.pagan.estimator_judge import AgeReading, EstimatorPhi
    from face_aging.models.pagan.frozen import random_identity_network
    from face_aging.models.pagan.model import PAGAN
    estimator = tiny_estimator()
    phi = EstimatorPhi(estimator)
    x = tf.random.uniform([2, 64, 64, 3], -1, 1, seed=2)
    taps = phi.taps(x)
    assert [tuple(t.shape) for t in taps.values()] == [(2, 64, 64, 4), (2, 32, 32, 8), (2, 16, 16, 16), (2, 8, 8, 32)]
    assert phi.channels == (4, 8, 16, 32)

    # The reading: years in range, a new random view each call, and a gradient back to the faces.
    reading = AgeReading(estimator)
    with tf.GradientTape() as tape:
        tape.watch(x)
        years = reading(x)
    assert years.shape == (2,) and np.all((years.numpy() >= 0) & (years.numpy() <= 100))
    assert float(tf.reduce_sum(tf.abs(tape.gradient(years, x)))) > 0
    assert not np.allclose(reading(x).numpy(), reading(x).numpy(), atol=1e-6)

    # In PAGAN at 32 px: L_est alone moves G; training leaves the estimator as it was.
    config = PAGANConfig(image_size=32, gen_channels=4, res_blocks=1, head_width=1 / 16, residual_output=True,
                         weights=LossWeights(0.0, 0.0, 0.0, estimator=1.0, estimator_target=100.0))
    model = PAGAN(config, phi, random_identity_network(32, 1), estimator=estimator)
    faces = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=4)
    before = [w.numpy().copy() for w in estimator.weights]
    g_before = [w.numpy().copy() for w in model.generator.trainable_variables]
    terms, _ = model.train_step(faces, faces)
    assert float(terms["L_est"]) > 0 and 0 < float(terms["est_age"]) < 100
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, estimator.weights))
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(g_before, model.generator.trainable_variables))
    with pytest.raises(ValueError, match="no estimator"):
        PAGAN(config, phi, random_identity_network(32, 1))


@pytest.mark.slow
def test_training_with_the_estimator_through_main_records_its_options(pagan_prepared, tmp_path):
    write_estimator_run(tmp_path / "estimator")
    savedir = tmp_path / "pagan"
    args = ["--model", "pagan", "--is_train", "--target_cluster", "3", "--prepared_dir", str(pagan_prepared),
            "--age_classifier", "estimator", "--identity", "random", "--residual_output", "--savedir", str(savedir),
            *TINY_PAGAN, "--iterations", "2", "--sample_every", "2"]
    result = call_main(*args, "--estimator_dir", str(tmp_path / "estimator"), "--estimator_age", "1",
                       "--estimator_target", "60", "--fine", "4")
    assert result.returncode == 0, result.stderr
    assert "phi_age from the age estimator" in result.stdout and "pulled up to 60 years" in result.stdout
    assert " est " in result.stdout and " fine " in result.stdout     # the reading and L_fine on the progress line
    options = json.loads((savedir / "cluster3" / "options.json").read_text())
    assert options["age_classifier"] == "estimator" and options["estimator_dir"] == str(tmp_path / "estimator")
    assert (options["weights"]["estimator"], options["weights"]["estimator_target"]) == (1.0, 60.0)
    assert options["weights"]["fine"] == 4.0
    summaries = os.listdir(savedir / "cluster3" / "summary")
    assert summaries

    # A folder that holds no estimator is named, not silently replaced by the bundled one.
    result = call_main(*args[:-4], "--iterations", "2", "--savedir", str(tmp_path / "other"), "--estimator_dir",
                       str(tmp_path / "nothing"))
    assert result.returncode != 0 and f"--estimator_dir {tmp_path / 'nothing'}: no estimator run" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("--estimator_age=-1",), "--estimator_age=-1.0: must be 0 (off) or more"),
    (("--estimator_target=0",), "--estimator_target=0.0: must be an age in years"),
])
def test_estimator_flags_are_rejected_before_any_work(args, message, tmp_path):
    result = call_main("--model=pagan", "--is_train", f"--savedir={tmp_path}", *args)
    assert result.returncode != 0 and message in result.stderr
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_bundling_scales_a_residual_generators_change(tmp_path):
    from face_aging.models.pagan import bundled
    from face_aging.models.pagan.infer import load_generators
    trained = write_pagan_run(str(tmp_path / "run"), (3,), residual_output=True)[3]
    bundled.write(str(tmp_path / "run"), str(tmp_path / "bundle"), scale=0.5)
    shipped = load_generators(str(tmp_path / "empty"), bundled_dir=str(tmp_path / "bundle"))[3][0]
    x = tf.random.uniform([2, 32, 32, 3], -0.5, 0.5, seed=6)
    change = trained.change(x).numpy()
    assert np.abs(change).max() > 1e-3
    np.testing.assert_allclose(shipped.change(x).numpy(), 0.5 * change, atol=1e-6)
    options = json.loads((tmp_path / "bundle" / "cluster3" / "options.json").read_text())
    assert options["_change_scale"] == 0.5
    write_pagan_run(str(tmp_path / "plain"), (3,))
    with pytest.raises(ValueError, match="residual generator"):
        bundled.write(str(tmp_path / "plain"), str(tmp_path / "bundle2"), scale=0.5)


def test_the_splits_blur_is_scipys_gaussian_filter():
    from scipy.ndimage import gaussian_filter
    from face_aging.models.caae.residual import smooth
    x = np.random.RandomState(2).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    for sigma in (1.0, 3.0):
        expected = np.stack([gaussian_filter(xi, (sigma, sigma, 0)) for xi in x])
        np.testing.assert_allclose(smooth(tf.constant(x), sigma, truncate=4.0).numpy(), expected, atol=1e-5)


def test_change_split_parsing_names_what_is_wrong():
    from face_aging.models.pagan.networks import PAGANGenerator, parse_change_split
    assert parse_change_split("") is None and parse_change_split("3,1.5,0.5") == (3.0, 1.5, 0.5)
    for text in ("3,1.5", "a,b,c", "0,1,1", "3,-1,1"):
        with pytest.raises(ValueError, match="change_split"):
            parse_change_split(text)
    with pytest.raises(ValueError, match="residual generator"):
        PAGANGenerator(4, 1, residual=False, change_split="3,1.5,0.5")


@pytest.mark.slow
def test_bundling_splits_a_residual_generators_change_and_training_continues_its_weights(tmp_path):
    from scipy.ndimage import gaussian_filter
    from face_aging.models.pagan import bundled
    from face_aging.models.pagan.infer import load_generators
    trained = write_pagan_run(str(tmp_path / "run"), (3,), residual_output=True)[3]
    bundled.write(str(tmp_path / "run"), str(tmp_path / "bundle"), scale=0.5, split="2,1.5,0.25")
    options = json.loads((tmp_path / "bundle" / "cluster3" / "options.json").read_text())
    assert options["change_split"] == "2,1.5,0.25" and options["_change_scale"] == 0.5
    shipped = load_generators(str(tmp_path / "empty"), bundled_dir=str(tmp_path / "bundle"))[3][0]
    x = tf.random.uniform([2, 32, 32, 3], -0.5, 0.5, seed=6)
    change = 0.5 * trained.change(x).numpy()
    coarse = np.stack([gaussian_filter(c, (2, 2, 0)) for c in change])
    assert np.abs(change - coarse).max() > 1e-4          # the fine part is there to be scaled
    np.testing.assert_allclose(shipped.change(x).numpy(), 1.5 * coarse + 0.25 * (change - coarse), atol=1e-5)
    np.testing.assert_allclose(shipped(x).numpy(), np.clip(x.numpy() + shipped.change(x).numpy(), -1, 1), atol=1e-6)
    # Warm-starting a training run from the split bundle takes its (scaled) weights, without the split.
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import build_generator
    from face_aging.models.pagan.train import warm_start
    config = PAGANConfig(**{name: options[name] for name in PAGANConfig.ARCHITECTURE
                            if name in options and name != "change_split"})
    fresh = build_generator(config)
    warm_start(fresh, config, str(tmp_path / "bundle" / "cluster3"))
    np.testing.assert_allclose(fresh.change(x).numpy(), change, atol=1e-6)
