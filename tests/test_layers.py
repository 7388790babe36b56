"""The GEMM forms of the small-map convolutions compute exactly what TensorFlow's kernels compute, gradients too."""

import numpy as np
import pytest
import tensorflow as tf

from face_aging import layers


@pytest.mark.parametrize("side,k", [(4, 5), (2, 5), (1, 5), (4, 3), (3, 5)])
def test_transposed_conv_matches_tensorflow(side, k):
    rng = np.random.default_rng(side * 10 + k)
    x = tf.Variable(rng.normal(size=(3, side, side, 7)).astype(np.float32))
    w = tf.Variable(rng.normal(size=(k, k, 5, 7)).astype(np.float32))
    out_shape = [3, 2 * side, 2 * side, 5]
    upstream = tf.constant(rng.normal(size=out_shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        ours = layers.conv2d_transpose_same_stride2_gemm(x, w)
        ref = tf.nn.conv2d_transpose(x, w, out_shape, 2, "SAME")
        l_ours, l_ref = tf.reduce_sum(ours * upstream), tf.reduce_sum(ref * upstream)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-4)
    for a, b in zip(tape.gradient(l_ours, [x, w]), tape.gradient(l_ref, [x, w])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-3)


@pytest.mark.parametrize("side,k", [(8, 5), (4, 5), (2, 5), (8, 3), (6, 5)])
def test_conv_matches_tensorflow(side, k):
    rng = np.random.default_rng(side * 10 + k)
    x = tf.Variable(rng.normal(size=(3, side, side, 6)).astype(np.float32))
    w = tf.Variable(rng.normal(size=(k, k, 6, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        ours = layers.conv2d_same_stride2_gemm(x, w)
        ref = tf.nn.conv2d(x, w, 2, "SAME")
        l_ours, l_ref = tf.reduce_sum(ours * ours), tf.reduce_sum(ref * ref)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-4)
    for a, b in zip(tape.gradient(l_ours, [x, w]), tape.gradient(l_ref, [x, w])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-3)


def test_layers_take_the_gemm_path_only_for_small_maps(monkeypatch):
    calls = []
    real = layers.conv2d_transpose_same_stride2_gemm
    monkeypatch.setattr(layers, "conv2d_transpose_same_stride2_gemm", lambda x, k: calls.append(x.shape[1]) or real(x, k))
    layer = layers.Conv2DTranspose(4, 5, strides=2, padding="same")
    for side in (4, 8):
        x = tf.random.normal([2, side, side, 3])
        y = layer(x, training=True)  # inference has its own forms, tested below
        assert y.shape == (2, 2 * side, 2 * side, 4)
    assert calls == [4]


@pytest.mark.parametrize("side,k,strides,filters", [(4, 5, 2, 6), (8, 5, 2, 6), (8, 3, 2, 6), (6, 5, 2, 4),
                                                    (7, 5, 2, 4), (16, 5, 2, 4), (32, 3, 2, 3), (8, 5, 1, 8),
                                                    (5, 3, 1, 9)])
def test_inference_forms_equal_the_training_forms(side, k, strides, filters):
    """Inference runs stride-1 transposed convs as flipped-kernel convs, stride-2 ones on maps up to 8x8 as matmul +
    overlap-add and up to 16x16 as one phase-producing conv; each must give the stock layer's output."""
    layer = layers.Conv2DTranspose(filters, k, strides=strides, padding="same", bias_initializer="random_normal")
    x = tf.random.normal([3, side, side, 5])
    trained = layer(x, training=True)
    inferred = layer(x, training=False)
    form = layers._inference_form(layer, x)
    assert (form is not None) == (side <= layers.INFERENCE_PHASE_MAP if strides == 2 else filters >= 8)
    reference = tf.nn.conv2d_transpose(x, layer.kernel, [3, side * strides, side * strides, filters], strides,
                                       "SAME") + layer.bias
    np.testing.assert_allclose(inferred, reference, atol=1e-4)
    np.testing.assert_allclose(trained, reference, atol=1e-4)
