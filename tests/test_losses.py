"""The objective's terms against direct numpy computations of docs/CAAE.md's formulas."""

import numpy as np
import pytest
import tensorflow as tf

from face_aging.caae import losses


def test_reconstruction_is_mean_absolute_error():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (2, 3, 8, 8, 3)).astype(np.float32)
    assert float(losses.reconstruction_loss(x, y)) == pytest.approx(np.abs(x - y).mean(), rel=1e-6)


def test_total_variation_is_the_originals_formula():
    rng = np.random.default_rng(1)
    g = rng.uniform(-1, 1, (4, 8, 6, 3)).astype(np.float32)
    dy = ((g[:, 1:] - g[:, :-1]) ** 2).sum() / 2
    dx = ((g[:, :, 1:] - g[:, :, :-1]) ** 2).sum() / 2
    expected = (dy / 8 + dx / 6) / 4
    assert float(losses.total_variation_loss(g)) == pytest.approx(expected, rel=1e-5)


def test_sigmoid_cross_entropy_targets():
    logits = tf.constant([[0.0], [2.0], [-3.0]])
    p = 1 / (1 + np.exp(-np.array([0.0, 2.0, -3.0])))
    assert float(losses.discriminator_loss_real(logits)) == pytest.approx(-np.log(p).mean(), rel=1e-5)
    assert float(losses.discriminator_loss_fake(logits)) == pytest.approx(-np.log(1 - p).mean(), rel=1e-5)
    assert float(losses.adversarial_loss(logits)) == float(losses.discriminator_loss_real(logits))


def test_player_totals_use_the_weights():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-1, 1, (2, 2, 8, 8, 3)).astype(np.float32)
    lz, lp, li, lg = (tf.constant(rng.normal(size=(2, 1)), tf.float32) for _ in range(4))
    t = losses.caae_losses(x, y, lz, lp, li, lg, weights=(0.5, 0.25, 2.0))
    expected = t["EG_loss"] + 0.5 * t["G_img_loss"] + 0.25 * t["E_z_loss"] + 2.0 * t["tv_loss"]
    assert float(t["loss_EG"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(t["loss_Dz"]) == pytest.approx(float(t["D_z_loss_prior"] + t["D_z_loss_z"]), rel=1e-6)
    assert float(t["loss_Di"]) == pytest.approx(float(t["D_img_loss_input"] + t["D_img_loss_G"]), rel=1e-6)
    plain = losses.caae_losses(x, y, lz, lp, li, lg, weights=(0.0, 0.0, 0.0))
    assert float(plain["loss_EG"]) == pytest.approx(float(plain["EG_loss"]), rel=1e-7)
