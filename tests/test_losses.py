"""The objective's terms against direct numpy computations of docs/CAAE.md's formulas."""

import numpy as np
import pytest
import tensorflow as tf

from face_aging.models.caae import losses


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


def _sigmoid_ce(logits, target):
    """Sigmoid cross-entropy written out: -t log(s(x)) - (1 - t) log(1 - s(x)), averaged."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    return float(np.mean(-target * np.log(p) - (1.0 - target) * np.log(1.0 - p)))


def test_sigmoid_cross_entropy_targets():
    logits = tf.constant([[0.0], [2.0], [-3.0]])
    assert float(losses.discriminator_loss_real(logits)) == pytest.approx(_sigmoid_ce(logits, 1.0), rel=1e-5)
    assert float(losses.discriminator_loss_fake(logits)) == pytest.approx(_sigmoid_ce(logits, 0.0), rel=1e-5)
    # Non-saturating: E and G are asked for "real" on their own outputs, not for a small "fake" loss.
    assert float(losses.adversarial_loss(logits)) == pytest.approx(_sigmoid_ce(logits, 1.0), rel=1e-5)


# The original's default weights (G_img, E_z, TV), then distinct ones so that each weight is tied to its own term.
@pytest.mark.parametrize("weights", [(1e-4, 0.0, 0.0), (0.5, 0.25, 2.0)])
def test_every_term_reads_its_own_logits(weights):
    """Each term against sigmoid cross-entropy in numpy on the logits the objective names for it. The four logit
    sets are far apart, so a term fed another player's logits, or the wrong target, gives another number."""
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-1, 1, (2, 2, 8, 8, 3)).astype(np.float32)
    d_z, d_z_prior, d_input, d_g = (rng.normal(centre, 0.5, (2, 1)).astype(np.float32)
                                    for centre in (-2.0, 1.0, 2.5, -0.5))
    t = losses.caae_losses(x, y, tf.constant(d_z), tf.constant(d_z_prior), tf.constant(d_input), tf.constant(d_g),
                           weights=weights)
    dy, dx = y[:, 1:] - y[:, :-1], y[:, :, 1:] - y[:, :, :-1]
    expected = {
        "EG_loss": np.abs(x - y).mean(),
        "G_img_loss": _sigmoid_ce(d_g, 1.0),          # G wants D_img to call its faces real
        "E_z_loss": _sigmoid_ce(d_z, 1.0),            # E wants D_z to call its codes prior samples
        "tv_loss": ((dy ** 2).sum() / 2 / 8 + (dx ** 2).sum() / 2 / 8) / 2,
        "D_z_loss_prior": _sigmoid_ce(d_z_prior, 1.0),
        "D_z_loss_z": _sigmoid_ce(d_z, 0.0),
        "D_img_loss_input": _sigmoid_ce(d_input, 1.0),
        "D_img_loss_G": _sigmoid_ce(d_g, 0.0),
    }
    w0, w1, w2 = weights
    expected["loss_EG"] = (expected["EG_loss"] + w0 * expected["G_img_loss"] + w1 * expected["E_z_loss"]
                           + w2 * expected["tv_loss"])
    expected["loss_Dz"] = expected["D_z_loss_prior"] + expected["D_z_loss_z"]
    expected["loss_Di"] = expected["D_img_loss_input"] + expected["D_img_loss_G"]
    assert sorted(t) == sorted(expected)
    for name, value in expected.items():
        assert float(t[name]) == pytest.approx(value, rel=1e-5), name
