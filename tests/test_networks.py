"""The four networks against the architecture in docs/CAAE.md: sizes, parameter counts, label order, initialisers."""

import numpy as np
import pytest
import tensorflow as tf

from face_aging.models.caae import networks as N


def conv_params(cin, cout, k=5):
    return k * k * cin * cout + cout


def expected_counts(size, z=50, ce=64, cg=1024):
    """Parameter counts of E and G computed from docs/CAAE.md's description, independently of the code."""
    n = int(np.log2(size)) - 2
    enc, cin = 0, 3
    for i in range(n):
        enc += conv_params(cin, ce * 2 ** i)
        cin = ce * 2 ** i
    enc += 4 * 4 * cin * z + z
    gen = (3 * z) * (16 * cg) + 16 * cg
    cin = cg
    for i in range(n):
        gen += conv_params(cin, cg // 2 ** (i + 1))
        cin = cg // 2 ** (i + 1)
    gen += conv_params(cin, cg // 2 ** (n + 1)) + conv_params(cg // 2 ** (n + 1), 3)
    return enc, gen


def test_parameter_counts_at_128_match_the_original():
    """The counts the original TF1 model reports at 128x128 (its checkpoint's variables), against the code."""
    encoder, generator, _, _ = N.build_networks(128)
    assert encoder.count_params() == 18_234_034
    assert generator.count_params() == 19_948_195


@pytest.mark.parametrize("size", [pytest.param(128, marks=pytest.mark.slow), pytest.param(64, marks=pytest.mark.slow),
                                  32])
def test_shapes_and_ranges_at_every_supported_size(size):
    encoder, generator, d_z, d_img = N.build_networks(size)
    assert (encoder.count_params(), generator.count_params()) == expected_counts(size)
    x = tf.random.uniform([2, size, size, 3], -1, 1)
    age = tf.constant(np.where(np.eye(10)[[1, 7]] > 0, 1.0, -1.0), tf.float32)
    gender = tf.constant([[1.0, -1.0], [-1.0, 1.0]])
    z = encoder(x)
    assert z.shape == (2, 50) and np.abs(z.numpy()).max() <= 1
    out = generator(z, age, gender)
    assert out.shape == (2, size, size, 3) and np.abs(out.numpy()).max() <= 1
    assert d_z(z).shape == (2, 1)
    assert d_img(x, age, gender).shape == (2, 1)
    assert len(encoder.convs) == int(np.log2(size)) - 2
    # D_img: 4 stride-2 convs leave (size/16)^2 x 128 features for its first dense layer.
    assert d_img.fc1.kernel.shape == ((size // 16) ** 2 * 128, 1024)


@pytest.mark.parametrize("size", [16, 48, 100, 0])
def test_unsupported_image_sizes_are_refused(size):
    with pytest.raises(ValueError, match="power of two"):
        N.Encoder(size)


def test_label_tiling_repeats_the_whole_vector():
    z = tf.zeros([1, 50])
    age = tf.constant([np.arange(10, dtype=np.float32)])
    gender = tf.constant([[100.0, 200.0]])
    tiled = N.tile_labels(z, age, gender).numpy()[0]
    assert tiled.shape == (150,)
    np.testing.assert_array_equal(tiled[50:100], np.tile(np.arange(10), 5))
    np.testing.assert_array_equal(tiled[100:], np.tile([100.0, 200.0], 25))


def test_d_img_sees_16_features_plus_age_plus_gender_tiled_five_times():
    _, _, _, d_img = N.build_networks(32)
    assert d_img.convs[1].kernel.shape == (5, 5, 16 + 10 + 10, 32)
    fmap = tf.zeros([1, 2, 2, 16])
    gender = tf.constant([[1.0, -1.0]])
    out = N.broadcast_labels(fmap, tf.tile(gender, [1, 5])).numpy()
    np.testing.assert_array_equal(out[0, 1, 1, 16:], [1, -1] * 5)


def test_batch_norm_is_the_originals():
    _, _, d_z, d_img = N.build_networks(32)
    for bn in d_z.bns + d_img.bns:
        assert not bn.scale and bn.center
        assert bn.momentum == pytest.approx(0.999) and bn.epsilon == pytest.approx(1e-3)
        assert {w.name for w in bn.weights} == {"beta", "moving_mean", "moving_variance"}


def test_initialisers():
    encoder, generator, _, _ = N.build_networks(64)
    conv = encoder.convs[3].kernel.numpy()           # truncated normal, sd 0.02: nothing beyond 2 sd
    assert np.abs(conv).max() <= 0.04 + 1e-6
    assert np.std(conv) == pytest.approx(0.02 * 0.88, rel=0.05)   # a normal truncated at 2 sd has sd 0.88 sigma
    dense = generator.fc.kernel.numpy()              # plain normal, sd 0.02: values beyond 2 sd exist
    assert np.abs(dense).max() > 0.06
    assert np.std(dense) == pytest.approx(0.02, rel=0.02)
    deconv = generator.deconvs[0].kernel.numpy()
    assert np.std(deconv) == pytest.approx(0.02, rel=0.02)
    assert all(not np.any(layer.bias.numpy()) for layer in encoder.convs + generator.deconvs)


def test_too_narrow_generator_is_refused():
    with pytest.raises(ValueError, match="gen_channels"):
        N.Generator(128, channels=32)
