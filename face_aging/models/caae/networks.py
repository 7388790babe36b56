"""The four CAAE networks, layer for layer as in the original TF1 code (see docs/CAAE.md).

Layer names are the original's variable scopes (E_conv0, G_deconv3, D_img_bn1, ...) so that a TF1 checkpoint maps
onto these models name by name. Every spatial layer uses kernel 5 and SAME padding. The number of stride-2 layers
in E and G is log2(image_size) - 2, so a 128x128 model has a 4x4 bottleneck and a 32x32 model has one too.
"""

import math

import keras
import tensorflow as tf

from face_aging import layers
from face_aging.models.caae.config import image_size_problem
from face_aging.data.labels import NUM_AGE_GROUPS, NUM_GENDERS

KERNEL_SIZE = 5


def _conv_init():
    return keras.initializers.TruncatedNormal(stddev=0.02)


def _dense_init():
    # The original draws dense and transposed-conv kernels from an untruncated normal, convs from a truncated one.
    return keras.initializers.RandomNormal(stddev=0.02)


def num_stride2_layers(image_size):
    """Stride-2 layers in E and G: the original's log2(size) - int(kernel / 2)."""
    return int(math.log2(image_size)) - KERNEL_SIZE // 2


def check_image_size(image_size):
    problem = image_size_problem(image_size)
    if problem:
        raise ValueError(f"image size {problem}, got {image_size}")


def tile_labels(z, age, gender):
    """[z, age repeated z_dim/10 times, gender repeated z_dim/2 times]: whole-vector repeats (a0..a9, a0..a9, ...).

    The repeat order is the original's tf.tile, which is what makes imported G_fc weights line up.
    """
    z_dim = z.shape[-1]
    age = tf.cast(age, z.dtype)
    gender = tf.cast(gender, z.dtype)
    return tf.concat([z, tf.tile(age, [1, z_dim // age.shape[-1]]), tf.tile(gender, [1, z_dim // gender.shape[-1]])],
                     axis=-1)


def broadcast_labels(feature_map, labels):
    """Concatenate a label vector to every spatial position of a feature map."""
    labels = tf.cast(labels, feature_map.dtype)
    shape = tf.shape(feature_map)
    tiled = tf.ones([shape[0], shape[1], shape[2], 1], feature_map.dtype) * labels[:, None, None, :]
    return tf.concat([feature_map, tiled], axis=-1)


class Encoder(keras.Model):
    """E: image in [-1, 1] -> z in [-1, 1]^z_dim. Stride-2 convs (64, 128, 256, ...) with ReLU, dense, tanh."""

    def __init__(self, image_size=128, z_dim=50, channels=64, **kwargs):
        super().__init__(**kwargs)
        check_image_size(image_size)
        self.image_size = image_size
        self.convs = [
            layers.Conv2D(channels * 2 ** i, KERNEL_SIZE, strides=2, padding="same",
                          kernel_initializer=_conv_init(), name=f"E_conv{i}")
            for i in range(num_stride2_layers(image_size))
        ]
        layers.track_layers(self, self.convs)
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(z_dim, kernel_initializer=_dense_init(), name="E_fc")

    def build(self, images_shape):
        # From the channel counts, not by running call symbolically (Keras's default: most of a test run's start).
        channels = images_shape[-1]
        for conv in self.convs:
            conv.build((None, None, None, channels))
            channels = conv.filters
        side = self.image_size // 2 ** len(self.convs)
        self.fc.build((None, side * side * channels))

    def call(self, images):
        x = images
        for conv in self.convs:
            x = tf.nn.relu(conv(x))
        # float32 out in mixed precision too: z meets the uniform prior and the losses in float32.
        return tf.cast(tf.tanh(self.fc(self.flatten(x))), tf.float32)


class Generator(keras.Model):
    """G: (z, age label, gender label) -> image in [-1, 1].

    Dense to a 4x4x1024 map, stride-2 transposed convs halving the channels, then two stride-1 transposed convs
    (to 16 channels and to RGB at 128x128) and tanh.
    """

    def __init__(self, image_size=128, z_dim=50, channels=1024, **kwargs):
        super().__init__(**kwargs)
        check_image_size(image_size)
        if z_dim % NUM_AGE_GROUPS or z_dim % NUM_GENDERS:
            raise ValueError(f"z_dim must be a multiple of {NUM_AGE_GROUPS} so the labels tile evenly, got {z_dim}")
        n = num_stride2_layers(image_size)
        if channels // 2 ** (n + 1) < 1:
            raise ValueError(f"gen_channels={channels} is too narrow for {image_size}x{image_size}: it is halved "
                             f"{n + 1} times; use at least {2 ** (n + 1)}")
        self.image_size = image_size
        self.channels = channels
        self.mini = image_size // 2 ** n
        self.fc = keras.layers.Dense(channels * self.mini ** 2, kernel_initializer=_dense_init(), name="G_fc")
        self.deconvs = [
            layers.Conv2DTranspose(channels // 2 ** (i + 1), KERNEL_SIZE, strides=2, padding="same",
                                   kernel_initializer=_dense_init(), name=f"G_deconv{i}")
            for i in range(n)
        ]
        self.deconvs.append(layers.Conv2DTranspose(channels // 2 ** (n + 1), KERNEL_SIZE, strides=1,
                                                   padding="same", kernel_initializer=_dense_init(),
                                                   name=f"G_deconv{n}"))
        self.to_rgb = layers.Conv2DTranspose(3, KERNEL_SIZE, strides=1, padding="same",
                                             kernel_initializer=_dense_init(), name=f"G_deconv{n + 1}")
        layers.track_layers(self, self.deconvs)

    def build(self, z_shape, age_shape=None, gender_shape=None):
        self.fc.build((None, 3 * z_shape[-1]))            # z, then the age and gender labels tiled to z's length
        channels = self.channels
        for deconv in self.deconvs + [self.to_rgb]:
            deconv.build((None, None, None, channels))
            channels = deconv.filters

    def call(self, z, age, gender):
        x = self.fc(tile_labels(z, age, gender))
        x = tf.nn.relu(tf.reshape(x, [-1, self.mini, self.mini, self.channels]))
        for deconv in self.deconvs:
            x = tf.nn.relu(deconv(x))
        return tf.cast(tf.tanh(self.to_rgb(x)), tf.float32)


class DiscriminatorAge(keras.Model):
    """D_age of the recipe's age-blind code (losses.py): z -> logits of the ten age groups. Dense 64, 32 with ReLU,
    dense 10. Not in the original."""

    def __init__(self, hidden=(64, 32), **kwargs):
        super().__init__(**kwargs)
        self.fcs = [keras.layers.Dense(c, activation="relu", name=f"D_age_fc{i}") for i, c in enumerate(hidden)]
        self.out = keras.layers.Dense(NUM_AGE_GROUPS, name=f"D_age_fc{len(hidden)}")
        layers.track_layers(self, self.fcs)

    def call(self, z):
        x = z
        for fc in self.fcs:
            x = fc(x)
        return tf.cast(self.out(x), tf.float32)


def _batch_norm(name, synchronized=False):
    # tf.contrib.layers.batch_norm defaults as the original used them: no gamma, decay 0.999, epsilon 1e-3.
    # Synchronized across replicas under tf.distribute, so the statistics are those of the whole global batch.
    return keras.layers.BatchNormalization(momentum=0.999, epsilon=1e-3, scale=False, synchronized=synchronized,
                                           name=name)


class DiscriminatorZ(keras.Model):
    """D_z: z -> logit of "drawn from the uniform prior". Dense 64, 32, 16 with BN + ReLU, dense 1."""

    def __init__(self, hidden=(64, 32, 16), synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.fcs = [keras.layers.Dense(c, kernel_initializer=_dense_init(), name=f"D_z_fc{i}")
                    for i, c in enumerate(hidden)]
        self.bns = [_batch_norm(f"D_z_bn{i}", synchronized) for i in range(len(hidden))]
        self.out = keras.layers.Dense(1, kernel_initializer=_dense_init(), name=f"D_z_fc{len(hidden)}")
        layers.track_layers(self, self.fcs + self.bns)

    def call(self, z, training=True):
        x = z
        for fc, bn in zip(self.fcs, self.bns):
            x = tf.nn.relu(bn(fc(x), training=training))
        return self.out(x)


class DiscriminatorImg(keras.Model):
    """D_img: (image, age label, gender label) -> logit of "a real face of this age and gender".

    Conv 16 stride 2 + BN + ReLU, then the age label and the gender label tiled 5 times are broadcast over the map
    (16 + 10 + 10 channels); convs 32, 64, 128 stride 2 with BN + ReLU; dense 1024 with leaky ReLU 0.2; dense 1.
    """

    def __init__(self, hidden=(16, 32, 64, 128), synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.convs = [layers.Conv2D(c, KERNEL_SIZE, strides=2, padding="same", kernel_initializer=_conv_init(),
                                    name=f"D_img_conv{i}") for i, c in enumerate(hidden)]
        self.bns = [_batch_norm(f"D_img_bn{i}", synchronized) for i in range(len(hidden))]
        layers.track_layers(self, self.convs + self.bns)
        self.flatten = keras.layers.Flatten()
        self.fc1 = keras.layers.Dense(1024, kernel_initializer=_dense_init(), name="D_img_fc1")
        self.fc2 = keras.layers.Dense(1, kernel_initializer=_dense_init(), name="D_img_fc2")

    def call(self, images, age, gender, training=True):
        x = images
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = tf.nn.relu(bn(conv(x), training=training))
            if i == 0:
                x = broadcast_labels(x, age)
                x = broadcast_labels(x, tf.tile(tf.cast(gender, x.dtype), [1, NUM_AGE_GROUPS // NUM_GENDERS]))
        x = tf.nn.leaky_relu(self.fc1(self.flatten(x)), alpha=0.2)
        return self.fc2(x)


def build_encoder_generator(image_size=128, z_dim=50, enc_channels=64, gen_channels=1024):
    """E and G, built (weights created) for the given image size."""
    encoder = Encoder(image_size, z_dim, enc_channels, name="encoder")
    generator = Generator(image_size, z_dim, gen_channels, name="generator")
    encoder.build((None, image_size, image_size, 3))
    generator.build((None, z_dim), (None, NUM_AGE_GROUPS), (None, NUM_GENDERS))
    return encoder, generator


def build_networks(image_size=128, z_dim=50, enc_channels=64, gen_channels=1024, synchronized=False):
    """The four networks, built (weights created) for the given image size."""
    encoder, generator = build_encoder_generator(image_size, z_dim, enc_channels, gen_channels)
    d_z = DiscriminatorZ(synchronized=synchronized, name="discriminator_z")
    d_img = DiscriminatorImg(synchronized=synchronized, name="discriminator_img")
    d_z(tf.zeros([1, z_dim]), training=False)
    d_img(tf.zeros([1, image_size, image_size, 3]), tf.zeros([1, NUM_AGE_GROUPS]), tf.zeros([1, NUM_GENDERS]),
          training=False)
    return encoder, generator, d_z, d_img
