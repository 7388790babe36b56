"""PAGAN's trained networks: the residual generator and the pyramid discriminator's four heads.

The frozen judges (phi_age, the age-classifier VGG-16 whose features the discriminator reads, and VGG-Face, the
identity descriptor) are in `vgg.py`.
"""

import keras
import tensorflow as tf

from face_aging import layers as fa_layers  # 16-bit runs fall back to float32 kernels on CPUs
from face_aging.layers import track_layers
from face_aging.models.caae.residual import smooth
from face_aging.models.pagan.config import GEN_CHANNELS
from face_aging.models.pagan.vgg import TAPS

HEAD_MAX_CHANNELS = 512    # the discriminator heads' channel cap
UPSAMPLE_MODES = ("deconv", "resize")


class InstanceNorm(keras.layers.Layer):
    """Instance normalisation with a learned per-channel scale and shift (as in the fast style-transfer network the
    generator derives from). Statistics are per image, so there is no train/inference difference."""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta


class Pad(keras.layers.Layer):
    """Zero or reflection padding of the spatial dimensions (reflection is the open point of the released model)."""

    def __init__(self, amount, mode="zero", **kwargs):
        super().__init__(**kwargs)
        self.amount, self.mode = amount, mode

    def call(self, x):
        p = self.amount
        if p == 0:
            return x
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT" if self.mode == "reflect" else "CONSTANT")


def _channels(shape_or_channels):
    """A 4-D shape with only its channels known: what every sublayer's build needs."""
    channels = shape_or_channels if isinstance(shape_or_channels, int) else shape_or_channels[-1]
    return (None, None, None, channels)


# The composite layers below build their sublayers from the channel counts alone. Without a build of their own, Keras
# builds each one by running its call symbolically, nested inside its parent's symbolic run: 0.9 s per generator,
# most of test mode's start (benchmarks/run.py, pagan_bundled_test).

class ConvINReLU(keras.layers.Layer):
    """pad -> conv -> instance norm (-> ReLU): the generator's unit."""

    def __init__(self, filters, kernel, stride=1, padding="zero", relu=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.pad = Pad(kernel // 2, padding)
        self.conv = fa_layers.Conv2D(filters, kernel, stride, padding="valid", name="conv")
        self.norm = InstanceNorm(name="norm")
        self.relu = relu

    def build(self, input_shape):
        self.conv.build(_channels(input_shape))
        self.norm.build(_channels(self.filters))

    def call(self, x):
        x = self.norm(self.conv(self.pad(x)))
        return tf.nn.relu(x) if self.relu else x


class ResidualBlock(keras.layers.Layer):
    """conv3-IN-ReLU-conv3-IN plus the input."""

    def __init__(self, filters, padding="zero", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.a = ConvINReLU(filters, 3, padding=padding, name="a")
        self.b = ConvINReLU(filters, 3, padding=padding, relu=False, name="b")

    def build(self, input_shape):
        self.a.build(input_shape)
        self.b.build(_channels(self.filters))

    def call(self, x):
        return x + self.b(self.a(x))


class UpINReLU(keras.layers.Layer):
    """Transposed conv 3x3 stride 2 (output exactly twice the input) -> instance norm -> ReLU; or, with mode "resize"
    (the recipe's option), nearest-neighbour x2 then conv 3x3: the same shapes without the transposed convolution's
    uneven overlap, whose checkerboard the discriminator rewards as texture (Odena et al., Distill 2016)."""

    def __init__(self, filters, mode="deconv", padding="zero", **kwargs):
        super().__init__(**kwargs)
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, not {mode!r}")
        self.mode, self.filters = mode, filters
        if mode == "deconv":
            self.deconv = fa_layers.Conv2DTranspose(filters, 3, 2, padding="same", name="deconv")
        else:
            self.pad = Pad(1, padding)
            self.conv = fa_layers.Conv2D(filters, 3, padding="valid", name="conv")
        self.norm = InstanceNorm(name="norm")

    def build(self, input_shape):
        conv = self.deconv if self.mode == "deconv" else self.conv
        conv.build(_channels(input_shape))
        self.norm.build(_channels(self.filters))

    def call(self, x):
        if self.mode == "deconv":
            x = self.deconv(x)
        else:
            x = self.conv(self.pad(tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)))
        return tf.nn.relu(self.norm(x))


def coarse_part(change, sigma):
    """The change blurred by a Gaussian of `sigma` px with scipy's kernel (truncated at 4 sigma, the one the split was
    chosen with; docs/pagan_recipe.md); the fine part is the change less it. The change split and L_fine use it."""
    return tf.cast(smooth(change, sigma, truncate=4.0), change.dtype)


def parse_change_split(text):
    """"SIGMA,LOW,HIGH" -> (sigma, low, high) floats, or None for ""; ValueError saying what is wrong."""
    if not text:
        return None
    try:
        sigma, low, high = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"change_split must be SIGMA,LOW,HIGH (three numbers, e.g. 3,1.5,0.5), not {text!r}")
    if not sigma > 0 or low < 0 or high < 0:
        raise ValueError(f"change_split {text!r}: SIGMA must be above 0 and LOW, HIGH at least 0")
    return sigma, low, high


class PAGANGenerator(keras.Model):
    """x -> G(x): conv9-32, conv3/2-64, conv3/2-128, residual blocks of 128, deconv3x2-64, deconv3x2-32, conv9-3, tanh.

    Images in and out are RGB in [-1, 1], of any size divisible by 4; `channels` scales every width (32 is the paper's).

    `residual`: the recipe's option (docs/PAGAN.md, Differences): G(x) = clip(x + conv_out(...)), the last convolution
    starting at zero, so that an untrained generator returns its input and training only has to learn the change of
    age. The change is a smooth map of the same size as x, which is what lets inference carry it to a larger face.

    `change_split` "SIGMA,LOW,HIGH" (residual generators; set when a trained generator is bundled, never trained
    with): the change's coarse part (a Gaussian of SIGMA px) multiplied by LOW and its fine rest by HIGH. The coarse
    change (shading of folds, sagging, skin tone) carries the age the judges read; the fine one carries most of the
    scratches and streaks and costs likeness (docs/pagan_recipe.md, "The change split").
    """

    def __init__(self, channels=GEN_CHANNELS, res_blocks=4, padding="zero", residual=False, upsample="deconv",
                 change_split="", name="generator", **kwargs):
        super().__init__(name=name, **kwargs)
        if padding not in ("zero", "reflect"):
            raise ValueError(f"padding must be 'zero' or 'reflect', not {padding!r}")
        self.change_split = change_split or ""
        self.split = parse_change_split(self.change_split)
        if self.split and not residual:
            raise ValueError("change_split needs a residual generator (--residual_output): a generator that draws "
                             "whole faces has no change to split")
        self.channels, self.res_blocks, self.padding, self.residual = channels, res_blocks, padding, bool(residual)
        c = channels
        self.down = [ConvINReLU(c, 9, padding=padding, name="conv1"),
                     ConvINReLU(2 * c, 3, 2, padding=padding, name="conv2"),
                     ConvINReLU(4 * c, 3, 2, padding=padding, name="conv3")]
        self.blocks = [ResidualBlock(4 * c, padding=padding, name=f"res{i + 1}") for i in range(res_blocks)]
        self.upsample = upsample
        self.up = [UpINReLU(2 * c, upsample, padding, name="deconv1"), UpINReLU(c, upsample, padding, name="deconv2")]
        track_layers(self, self.down + self.blocks + self.up)
        self.out_pad = Pad(4, padding)
        self.out_conv = fa_layers.Conv2D(3, 9, padding="valid", name="conv_out",
                                         kernel_initializer="zeros" if self.residual else "glorot_uniform")

    def build(self, input_shape):
        shape = input_shape
        for layer in self.down + self.blocks + self.up:
            layer.build(shape)
            shape = _channels(layer.filters)
        self.out_conv.build(shape)

    def _last_conv(self, x):
        for layer in self.down + self.blocks + self.up:
            x = layer(x)
        change = self.out_conv(self.out_pad(x))
        if self.split:
            sigma, low, high = self.split
            change = high * change + (low - high) * coarse_part(change, sigma)
        return change

    def call(self, x, training=False):
        out = self._last_conv(x)
        if self.residual:
            return tf.clip_by_value(tf.cast(x, out.dtype) + out, -1.0, 1.0)
        return tf.tanh(out)

    def change(self, x):
        """G(x) - x before clipping (residual generators only): the change of age, for carrying to a larger face."""
        if not self.residual:
            raise ValueError("change() needs a residual generator (--residual_output)")
        return self._last_conv(x)

    def get_config(self):
        return {"channels": self.channels, "res_blocks": self.res_blocks, "padding": self.padding,
                "residual": self.residual, "upsample": self.upsample, "change_split": self.change_split}


def head_plan(tap_channels, tap_side, image_size, width=1.0):
    """Channels of one head's stride-2 convs: doubling from the tap's width up to 512 (scaled), until the map side
    is image_size / 32 (7 at 224; at least 2 so that the last 4x4 stride-2 conv leaves a map)."""
    target = max(2, image_size // 32)
    cap = max(1, int(round(HEAD_MAX_CHANNELS * width)))
    plan, channels, side = [], tap_channels, tap_side
    while side > target:
        channels = min(2 * channels, cap)
        plan.append(channels)
        side //= 2
    return plan


class DiscriminatorHead(keras.layers.Layer):
    """Conv 4x4 stride 2 pad 1 + BN + LeakyReLU(0.2), repeated down to 512 x 7 x 7, then conv 4x4 stride 2 pad 1 to
    a 1 x 3 x 3 map (at 224). No sigmoid: least-squares GAN."""

    def __init__(self, plan, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.plan = plan
        self.convs = [fa_layers.Conv2D(c, 4, 2, padding="valid", name=f"conv{i + 1}") for i, c in enumerate(plan)]
        self.norms = [keras.layers.BatchNormalization(synchronized=synchronized, name=f"bn{i + 1}")
                      for i in range(len(plan))]
        track_layers(self, self.convs + self.norms)
        self.out = fa_layers.Conv2D(1, 4, 2, padding="valid", name="conv_out")

    def call(self, x, training=False):
        for conv, norm in zip(self.convs, self.norms):
            x = tf.nn.leaky_relu(norm(conv(_pad1(x)), training=training), alpha=0.2)
        return self.out(_pad1(x))


def _pad1(x):
    return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])


class PyramidDiscriminator(keras.Model):
    """D(phi_age(x)): one head per tapped phi_age layer; their 3x3 maps stacked into one 12x3 map (at 224).

    `tap_channels` are the channels of the taps (64, 128, 256, 512 for the real VGG-16); tap i is at 1/2^i of the
    image size. The heads' widths follow `width` (1.0 = the paper's). `synchronized`: batch statistics over every
    replica's share (tf.distribute), as one device has them over the whole batch."""

    def __init__(self, image_size=224, tap_channels=(64, 128, 256, 512), taps=TAPS, width=1.0, synchronized=False,
                 name="discriminator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.image_size, self.tap_channels, self.taps, self.width = image_size, tuple(tap_channels), tuple(taps), width
        self.heads = [DiscriminatorHead(head_plan(c, image_size // 2 ** i, image_size, width), synchronized,
                                        name=f"head_{tap}")
                      for i, (tap, c) in enumerate(zip(self.taps, self.tap_channels))]
        track_layers(self, self.heads)

    def call(self, features, training=False):
        """`features`: dict tap name -> phi_age feature map. Returns [N, 4 * side, side, 1]."""
        return tf.concat([head(features[tap], training=training) for tap, head in zip(self.taps, self.heads)],
                         axis=1)

    def output_side(self):
        return max(2, self.image_size // 32) // 2

    def get_config(self):
        return {"image_size": self.image_size, "tap_channels": self.tap_channels, "taps": self.taps,
                "width": self.width}
