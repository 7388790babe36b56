"""Keras Conv2D / Conv2DTranspose with the same variables and results, computed as one matrix product where the
stock kernels are slow.

On CPU (oneDNN), a stride-2 convolution whose small side is a 4x4 map with hundreds of channels -- CAAE's E_conv4
(8x8x512 -> 4x4x1024) and G_deconv0 (4x4x1024 -> 8x8x512) -- runs its data-gradient (or, for the transposed conv,
its forward pass) at about 12-20 GFLOP/s, against ~100 for the same work as a GEMM: these two layers alone were
half of a 128x128 training step. Writing the layer as patches x kernel (im2col) or input x kernel then overlap-add
(col2im) keeps every heavy operation a matmul, forward and backward. Larger maps keep the stock kernels, which are
faster there. Measured with `python benchmarks/deconv_layers.py` (see BENCHMARKS.md).
"""

import keras
import tensorflow as tf

SMALL_MAP = 4  # use the GEMM form when the smaller of the input and output maps is at most this wide


def _gemm_applies(layer, small_side):
    return (layer.padding == "same" and tuple(layer.strides) == (2, 2) and tuple(layer.dilation_rate) == (1, 1)
            and layer.data_format == "channels_last" and layer.kernel_size[0] == layer.kernel_size[1]
            and layer.kernel_size[0] % 2 == 1 and small_side is not None and small_side <= SMALL_MAP)


def conv2d_same_stride2_gemm(x, kernel):
    """tf.nn.conv2d(x, kernel, 2, 'SAME') as im2col + matmul. kernel [k, k, in, out], odd k, even input sides."""
    batch, height, width, cin = x.shape
    k, cout = kernel.shape[0], kernel.shape[3]
    ho, wo = -(-height // 2), -(-width // 2)
    pad_h, pad_w = max((ho - 1) * 2 + k - height, 0), max((wo - 1) * 2 + k - width, 0)
    x = tf.pad(x, [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    patches = tf.stack([x[:, ky:ky + 2 * ho:2, kx:kx + 2 * wo:2, :] for ky in range(k) for kx in range(k)], axis=3)
    out = tf.matmul(tf.reshape(patches, [-1, k * k * cin]), tf.reshape(kernel, [k * k * cin, cout]))
    return tf.reshape(out, [-1, ho, wo, cout])


def conv2d_transpose_same_stride2_gemm(x, kernel):
    """tf.nn.conv2d_transpose(x, kernel, [b, 2h, 2w, out], 2, 'SAME') as matmul + overlap-add. kernel [k, k, out, in].

    Input pixel i reaches output row 2i + ky - pad_top. Grouping the taps by the parity of ky gives the two output
    phases, each a sum of shifted tap maps; depth_to_space interleaves the phases.
    """
    _, height, width, cin = x.shape
    k, cout = kernel.shape[0], kernel.shape[2]
    half = (k + 1) // 2
    taps = tf.matmul(tf.reshape(x, [-1, cin]), tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [cin, k * k * cout]))
    # unstack, not strided slices: the gradient of an unstack is one stack, of 25 slices 25 full-size zero tensors.
    taps = tf.unstack(tf.reshape(taps, [-1, height, width, k * k, cout]), axis=3)
    phases = []
    for r in (0, 1):
        for s in (0, 1):
            phases.append(tf.add_n([
                tf.pad(taps[ky * k + kx], [[0, 0], [ky // 2, half - 1 - ky // 2], [kx // 2, half - 1 - kx // 2],
                                           [0, 0]])
                for ky in range(r, k, 2) for kx in range(s, k, 2)]))
    full = tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)
    top = (k - 2) // 2
    return full[:, top:top + 2 * height, top:top + 2 * width, :]


class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D, run as im2col + GEMM when its output map is tiny (see the module's docstring)."""

    def convolution_op(self, inputs, kernel):
        out_side = None if inputs.shape[1] is None else -(-inputs.shape[1] // 2)
        if _gemm_applies(self, out_side):
            return conv2d_same_stride2_gemm(inputs, kernel)
        return super().convolution_op(inputs, kernel)


class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose, run as GEMM + overlap-add when its input map is tiny."""

    def call(self, inputs):
        if not _gemm_applies(self, inputs.shape[1]) or tuple(self.output_padding or (None, None)) != (None, None):
            return super().call(inputs)
        outputs = conv2d_transpose_same_stride2_gemm(inputs, self.kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


def track_layers(model, layers_):
    """Give each layer kept in a Python list a named checkpoint dependency (its original scope name).

    Keras 3 does not make list attributes part of a tf.train.Checkpoint: without this, a checkpoint of E and G alone
    would hold only their `fc` layers, and the convolutions' weights would be saved only through the optimisers.
    """
    for layer in layers_:
        model._track_trackable(layer, name=layer.name)
