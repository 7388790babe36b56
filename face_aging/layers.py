"""Keras Conv2D / Conv2DTranspose with the same variables and results, computed as one matrix product where the
stock kernels are slow.

On CPU (oneDNN), a stride-2 convolution whose small side is a 4x4 map with hundreds of channels -- CAAE's E_conv4
(8x8x512 -> 4x4x1024) and G_deconv0 (4x4x1024 -> 8x8x512) -- runs its data-gradient (or, for the transposed conv,
its forward pass) at about 12-20 GFLOP/s, against ~100 for the same work as a GEMM: these two layers alone were
half of a 128x128 training step. Writing the layer as patches x kernel (im2col) or input x kernel then overlap-add
(col2im) keeps every heavy operation a matmul, forward and backward. Larger maps keep the stock kernels, which are
faster there. Measured with `python benchmarks/deconv_layers.py` (see BENCHMARKS.md).

Mixed precision on a CPU (--precision mixed_bfloat16/mixed_float16): where bfloat16 arithmetic is emulated or slow,
TensorFlow's 16-bit convolution gradients run at about 3 GFLOP/s, so maps up to 8x8 take the matmul form in 16 bits
and the other layers run their stock kernels in float32. Where the CPU has fast bfloat16 arithmetic (AMX, or
AVX512-BF16 whose bfloat16 matrix products measure faster than float32's: precision.cpu_bfloat16_fast), bfloat16
layers run TensorFlow's own bfloat16 kernels (oneDNN), with the float32 rule for the matmul form: CAAE training at
128x128 23.2 images/s against 14.0 with the float32 forms and 13.5 in float32 (AMD EPYC with AVX512-BF16,
BENCHMARKS.md). FACE_AGING_CPU_BF16=native|float32 overrides the choice (benchmarks/run.py measures both).
"""

import functools
import os

import keras
import tensorflow as tf

from face_aging.training.precision import cpu_bfloat16_fast, cpu_flags

SMALL_MAP = 4  # float32: use the GEMM form when the smaller of the input and output maps is at most this wide
SMALL_MAP_16BIT = 8  # 16-bit on a CPU: the GEMM form up to this side; larger maps run the stock kernels in float32


def _on_cpu_only():
    return not tf.config.list_logical_devices("GPU")


@functools.lru_cache(maxsize=None)
def cpu_bfloat16_native():
    """Whether bfloat16 layers on a CPU run TensorFlow's bfloat16 kernels rather than the forms above."""
    setting = os.environ.get("FACE_AGING_CPU_BF16", "auto")
    if setting not in ("auto", "native", "float32"):
        raise ValueError(f"FACE_AGING_CPU_BF16={setting!r}: must be auto, native or float32")
    if setting != "auto":
        return setting == "native"
    return cpu_bfloat16_fast(cpu_flags())[0]


def _cpu_16bit_workaround(layer):
    """16-bit layers on a CPU whose 16-bit kernels are slow: all of them but bfloat16 where it is fast (see above)."""
    return (layer.compute_dtype != "float32" and _on_cpu_only()
            and not (layer.compute_dtype == "bfloat16" and cpu_bfloat16_native()))


def _gemm_applies(layer, small_side):
    if not (layer.padding == "same" and tuple(layer.strides) == (2, 2) and tuple(layer.dilation_rate) == (1, 1)
            and layer.data_format == "channels_last" and layer.kernel_size[0] == layer.kernel_size[1]
            and layer.kernel_size[0] % 2 == 1 and small_side is not None):
        return False
    # TensorFlow's CPU kernels for the data and filter gradients of bfloat16/float16 convolutions run at ~3 GFLOP/s
    # (float32: 60-200). In mixed precision on a CPU the small maps, where the work is in big matmuls, take the
    # matmul form in 16 bits; at 16x16 and above im2col's memory traffic makes it slower than float32's stock kernels
    # (benchmarks/run.py: 3.1 against 7.3 images/s at 128x128 with every layer in the matmul form).
    if _cpu_16bit_workaround(layer):
        return small_side <= SMALL_MAP_16BIT
    return small_side <= SMALL_MAP


def _stock_in_float32(layer):
    """Mixed precision on a CPU: the layers not in the matmul form run their stock kernels in float32 (see above)."""
    return _cpu_16bit_workaround(layer)


def im2col_stride2(x, k):
    """The patches of tf.nn.conv2d(x, [k, k, ...], 2, 'SAME'): [B, H, W, C] -> [B, H/2, W/2, k*k, C] (even sides)."""
    _, height, width, _ = x.shape
    ho, wo = -(-height // 2), -(-width // 2)
    pad_h, pad_w = max((ho - 1) * 2 + k - height, 0), max((wo - 1) * 2 + k - width, 0)
    x = tf.pad(x, [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    return tf.stack([x[:, ky:ky + 2 * ho:2, kx:kx + 2 * wo:2, :] for ky in range(k) for kx in range(k)], axis=3)


def overlap_add_stride2(taps, k):
    """The adjoint of im2col_stride2: [B, h, w, k*k, C] -> [B, 2h, 2w, C], each tap added where its patch came from.

    Input pixel i reaches output row 2i + ky - pad_top. Grouping the taps by the parity of ky gives the two output
    phases, each a sum of shifted tap maps; depth_to_space interleaves the phases.
    """
    _, height, width, _, _ = taps.shape
    half = (k + 1) // 2
    # unstack, not strided slices: the gradient of an unstack is one stack, of 25 slices 25 full-size zero tensors.
    taps = tf.unstack(taps, axis=3)
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


def _matmul_by_transposed(rows, matrix):
    """rows [n, c] x matrix [m, c]^T for a large matrix. oneDNN's matmul with transpose_b=True on a large right operand
    is slow, and so is an explicit transposed copy of it (~60 ms for CAAE's 52 MB G_deconv0 kernel); computing
    (matrix x rows^T)^T transposes only the small operand and the result. G_deconv0 at batch 10: 33 against 107 ms
    (copy) and 131 ms (transpose_b); at batch 100, 363 against 398 and 413 ms."""
    return tf.transpose(tf.matmul(matrix, rows, transpose_b=True))


# Both layers below have hand-written gradients: each is again a matmul plus im2col or overlap-add, the adjoint pair
# above. Left to autodiff, the 25 strided slices of im2col differentiate into 25 full-size scatter-and-add tensors.

@tf.custom_gradient
def _conv_gemm(x, kernel):
    k, _, cin, cout = kernel.shape
    _, height, width, _ = x.shape
    ho, wo = height // 2, width // 2
    patches = tf.reshape(im2col_stride2(x, k), [-1, k * k * cin])
    matrix = tf.reshape(kernel, [k * k * cin, cout])
    y = tf.reshape(tf.matmul(patches, matrix), [-1, ho, wo, cout])

    def grad(dy):
        dy = tf.reshape(dy, [-1, cout])
        d_kernel = tf.reshape(tf.matmul(patches, dy, transpose_a=True), kernel.shape)
        d_patches = tf.reshape(_matmul_by_transposed(dy, matrix), [-1, ho, wo, k * k, cin])
        return overlap_add_stride2(d_patches, k), d_kernel
    return y, grad


@tf.custom_gradient
def _conv_transpose_gemm(x, kernel):
    k, _, cout, cin = kernel.shape
    _, height, width, _ = x.shape
    # The kernel [k, k, out, in] is already the matrix [k*k*out, in]; it is never transposed (see above).
    matrix = tf.reshape(kernel, [k * k * cout, cin])
    rows = tf.reshape(x, [-1, cin])
    y = overlap_add_stride2(tf.reshape(_matmul_by_transposed(rows, matrix), [-1, height, width, k * k, cout]), k)

    def grad(dy):
        d_taps = tf.reshape(im2col_stride2(dy, k), [-1, k * k * cout])
        d_x = tf.reshape(tf.matmul(d_taps, matrix), [-1, height, width, cin])
        d_kernel = tf.reshape(tf.matmul(d_taps, rows, transpose_a=True), kernel.shape)
        return d_x, d_kernel
    return y, grad


# Autograph would rewrite the decorated functions' returned gradient closures; there is no Python control flow here.
@tf.autograph.experimental.do_not_convert
def conv2d_same_stride2_gemm(x, kernel):
    """tf.nn.conv2d(x, kernel, 2, 'SAME') as im2col + matmul. kernel [k, k, in, out], odd k, even input sides."""
    return _conv_gemm(tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))


@tf.autograph.experimental.do_not_convert
def conv2d_transpose_same_stride2_gemm(x, kernel):
    """tf.nn.conv2d_transpose(x, kernel, [b, 2h, 2w, out], 2, 'SAME') as matmul + overlap-add. kernel [k, k, out,
    in]."""
    return _conv_transpose_gemm(tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))


class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D, run as im2col + GEMM when its output map is tiny (see the module's docstring)."""

    def convolution_op(self, inputs, kernel):
        out_side = None if inputs.shape[1] is None else -(-inputs.shape[1] // 2)
        if _gemm_applies(self, out_side):
            return conv2d_same_stride2_gemm(inputs, kernel)
        if _stock_in_float32(self):
            return tf.cast(super().convolution_op(tf.cast(inputs, tf.float32), tf.cast(kernel, tf.float32)),
                           inputs.dtype)
        return super().convolution_op(inputs, kernel)


def subpixel_kernel(kernel):
    """A SAME stride-2 transposed convolution's kernel [k, k, out, in] as one stride-1 convolution's kernel
    [T, T, in, 4 out] over the input map, whose output channels are the four output phases (depth_to_space order).

    Output row 2m + r receives input row m - t through tap ky = r + pad_top - 2t; each phase keeps its own taps and
    zeros elsewhere. Returns (kernel, padding before, padding after) for a VALID convolution.
    """
    k = kernel.shape[0]
    pad = (k - 2) // 2
    offsets = [(r + pad - ky) // 2 for r in (0, 1) for ky in range(k) if (r + pad - ky) % 2 == 0]
    low, high = min(offsets), max(offsets)
    zero = tf.zeros_like(kernel[0, 0])

    def tap(r, t):
        ky = r + pad - 2 * t
        return ky if 0 <= ky < k else None

    rows = []
    for ty in range(low, high + 1):
        cols = []
        for tx in range(low, high + 1):
            phases = [zero if tap(r, ty) is None or tap(s, tx) is None else kernel[tap(r, ty), tap(s, tx)]
                      for r in (0, 1) for s in (0, 1)]
            cols.append(tf.transpose(tf.concat(phases, axis=0)))
        rows.append(tf.stack(cols))
    return tf.stack(rows), -low, high


INFERENCE_GEMM_MAP = 8  # inference: stride-2 transposed convs on maps up to this side as matmul + overlap-add
INFERENCE_PHASE_MAP = 16  # and up to this side as one convolution producing the four output phases


def _inference_form(layer, inputs):
    """Forward-only forms, where oneDNN's forward convolution or matmul beats its transposed convolution
    (benchmarks/run.py's caae_infer; BENCHMARKS.md). CAAE's G at batch 10: 4x4 and 8x8 maps as matmul + overlap-add
    (34 against 267 and 64 ms stock), 16x16 as a phase convolution (41 against 62 ms); a stride-1 transposed conv is a
    conv with the kernel flipped. None where none applies (32x32 and up: the stock kernel is fastest)."""
    if (layer.padding != "same" or layer.data_format != "channels_last" or tuple(layer.dilation_rate) != (1, 1)
            or tuple(layer.output_padding or (None, None)) != (None, None) or layer.compute_dtype != "float32"
            or layer.kernel_size[0] != layer.kernel_size[1] or layer.kernel_size[0] % 2 == 0):
        return None
    kernel = tf.convert_to_tensor(layer.kernel)
    if tuple(layer.strides) == (1, 1) and layer.filters >= 8:  # to RGB (3 outputs) is faster as it is
        return tf.nn.conv2d(inputs, tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]), 1, "SAME")
    side = inputs.shape[1]
    if tuple(layer.strides) != (2, 2) or side is None or side != inputs.shape[2]:
        return None
    if side <= INFERENCE_GEMM_MAP:
        return conv2d_transpose_same_stride2_gemm(inputs, kernel)
    if side <= INFERENCE_PHASE_MAP:
        phases, before, after = subpixel_kernel(kernel)
        padded = tf.pad(inputs, [[0, 0], [before, after], [before, after], [0, 0]])
        return tf.nn.depth_to_space(tf.nn.conv2d(padded, phases, 1, "VALID"), 2)
    return None


class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose, run as GEMM + overlap-add when its input map is tiny, and in inference as the
    forward convolutions above."""

    def call(self, inputs, training=None):
        outputs = None if training else _inference_form(self, inputs)
        if outputs is None and _gemm_applies(self, inputs.shape[1]) and tuple(
                self.output_padding or (None, None)) == (None, None):
            outputs = conv2d_transpose_same_stride2_gemm(inputs, self.kernel)
        if outputs is None:
            if not _stock_in_float32(self):
                return super().call(inputs)
            outputs = tf.cast(tf.nn.conv2d_transpose(
                tf.cast(inputs, tf.float32), tf.cast(self.kernel, tf.float32),
                tf.stack([tf.shape(inputs)[0], inputs.shape[1] * self.strides[0], inputs.shape[2] * self.strides[1],
                          self.filters]),
                self.strides, self.padding.upper()), self.compute_dtype)
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


def conv_stages(image_size, width, prefix, max_factor=8):
    """The (conv, batch norm) pairs of a small classifier: stages of a 3x3 conv then a 3x3 stride-2 conv, widths
    doubling from `width` (at most `max_factor` times), until the map is 4x4 or smaller. Layers are named
    PREFIX_conv{k} and PREFIX_bn{k} (checkpoints name them so)."""
    blocks, size, channels = [], int(image_size), int(width)
    while size > 4:
        for stride in (1, 2):
            k = len(blocks)
            blocks.append((keras.layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False,
                                               name=f"{prefix}_conv{k}"),
                           keras.layers.BatchNormalization(name=f"{prefix}_bn{k}")))
        size = (size + 1) // 2
        channels = min(channels * 2, max_factor * int(width))
    return blocks


def build_conv_stages(blocks, channels):
    """Create conv_stages' weights for inputs of `channels` channels, from the channel counts alone (Keras would
    otherwise run each parent's call symbolically to build them); returns the last stage's channels."""
    for conv, bn in blocks:
        conv.build((None, None, None, channels))
        channels = conv.filters
        bn.build((None, None, None, channels))
    return channels
