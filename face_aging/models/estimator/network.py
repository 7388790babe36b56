"""The estimator's network: a face in [-1, 1] -> (gender logit, logits over ages 0..MAX_YEARS).

Age is read as the expected value of a distribution over years (DEX, Rothe et al. 2015), trained against a Gaussian
of `AGE_SIGMA` years around the labelled age: neighbouring years share what they teach, and the expectation gives
ages between bins, which a single regression output trained on UTKFace's skewed ages does less well.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from face_aging import layers

MAX_YEARS = 100          # the last bin holds 100 and over (UTKFace's oldest faces are 116)
AGE_SIGMA = 3.0          # years: the width of the label distribution


class AgeGenderEstimator(keras.Model):
    """Stages of (3x3 conv, 3x3 stride-2 conv), each with batch norm and ReLU, widths doubling from `width` (at most
    8x) until the map is 4x4 or smaller; global average pooling, dropout, then two heads."""

    def __init__(self, image_size=64, width=32, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.width = int(image_size), int(width)
        self.blocks = layers.conv_stages(self.image_size, self.width, "est")
        layers.track_layers(self, [layer for block in self.blocks for layer in block])
        self.dropout = keras.layers.Dropout(0.3)
        self.gender_head = keras.layers.Dense(1, name="est_gender")
        self.age_head = keras.layers.Dense(MAX_YEARS + 1, name="est_age")

    def build(self, images_shape):
        channels = layers.build_conv_stages(self.blocks, images_shape[-1])
        self.gender_head.build((None, channels))
        self.age_head.build((None, channels))

    def stages(self, images, count=None, training=False):
        """The output of each of the first `count` convolutions (None: all), after batch norm and ReLU; PAGAN's
        `--age_classifier estimator` reads them as phi_age's features (pagan/estimator_judge.py)."""
        x, outputs = tf.cast(images, self.compute_dtype), []
        for conv, bn in self.blocks[:count]:
            x = tf.nn.relu(bn(conv(x), training=training))
            outputs.append(x)
        return outputs

    def call(self, images, training=False):
        x = self.stages(images, training=training)[-1]
        x = self.dropout(tf.reduce_mean(x, axis=[1, 2]), training=training)
        return tf.cast(self.gender_head(x)[:, 0], tf.float32), tf.cast(self.age_head(x), tf.float32)


def build(image_size=64, width=32):
    model = AgeGenderEstimator(image_size, width, name="estimator")
    model.build((None, image_size, image_size, 3))
    return model


_YEARS = tf.range(MAX_YEARS + 1, dtype=tf.float32)


def expected_age(age_logits):
    """Years [N]: the expectation of the age distribution."""
    return tf.reduce_sum(tf.nn.softmax(age_logits, -1) * _YEARS, -1)


def age_targets(ages):
    """The label distribution [N, MAX_YEARS + 1]: a Gaussian of AGE_SIGMA years around each age (clipped to the
    bins), normalised."""
    ages = tf.clip_by_value(tf.cast(ages, tf.float32), 0.0, float(MAX_YEARS))
    weights = tf.exp(-0.5 * tf.square((_YEARS[tf.newaxis] - ages[:, tf.newaxis]) / AGE_SIGMA))
    return weights / tf.reduce_sum(weights, -1, keepdims=True)


def losses(gender_logit, age_logits, genders, ages):
    """(gender loss, age loss) per face: binary cross-entropy (1 = female) and the cross-entropy against the label
    distribution."""
    gender = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(genders, tf.float32), gender_logit)
    age = tf.nn.softmax_cross_entropy_with_logits(age_targets(ages), age_logits)
    return gender, age


@functools.lru_cache(maxsize=4)
def age_reader(model, batch_size=128):
    """A function faces [N, S, S, 3] in [-1, 1] (any size) -> ages in years [N] (numpy): one view each, traced once,
    for callers that read many faces per face they make (inference/steering.py: 3 ms a face against estimate()'s 7).
    One per model: steering and inference/looks.py share its trace."""
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def read(x):
        return expected_age(model(tf.image.resize(x, [model.image_size] * 2, antialias=True), training=False)[1])

    def ages(faces):
        faces = np.asarray(faces, np.float32)
        return np.concatenate([read(faces[i:i + batch_size]).numpy() for i in range(0, len(faces), batch_size)]
                              or [np.zeros(0, np.float32)])
    return ages


def estimate(model, faces, batch_size=64):
    """(probability of female [N], age in years [N]) of faces [N, S, S, 3] in [-1, 1] (any size: resized to the
    model's), averaged over the face and its mirror image."""
    faces = np.asarray(faces, np.float32)
    female, years = [], []
    for start in range(0, len(faces), batch_size):
        batch = tf.convert_to_tensor(faces[start:start + batch_size])
        if batch.shape[1] != model.image_size:
            batch = tf.image.resize(batch, [model.image_size] * 2, antialias=True)
        both = tf.concat([batch, batch[:, :, ::-1]], 0)
        gender_logit, age_logits = model(both, training=False)
        n = batch.shape[0]
        female.append(tf.reduce_mean(tf.reshape(tf.sigmoid(gender_logit), [2, n]), 0).numpy())
        years.append(tf.reduce_mean(tf.reshape(expected_age(age_logits), [2, n]), 0).numpy())
    if not female:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(female), np.concatenate(years)
