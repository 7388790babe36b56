"""C, the frozen age-group classifier of the aging recipe's G_age_loss (losses.py, docs/caae_recipe.md).

Trained first, on the run's own training faces (the visualisation set held out), then frozen: the generator is
then asked to make faces that C puts in their target group, as IPCGAN and HRFAE do with their age classifiers.
It lives in SAVEDIR/age_classifier/, apart from the CAAE checkpoint (whose layout stays the original's), and a
resumed run restores it instead of training it again. It is a training aid only: test mode never needs it, and
the figures of docs/caae_recipe.md come from other judges (--eval), never from C.
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from face_aging import layers
from face_aging.caae import losses
from face_aging.data import labels as L

WIDTH = 32


class AgeGroupClassifier(keras.Model):
    """Face in [-1, 1] -> logits of the ten age groups: stages of (3x3 conv, 3x3 stride-2 conv), each with batch
    norm and ReLU, widths doubling from 32 until the map is 4x4; global average pooling, dropout, dense 10."""

    def __init__(self, image_size=64, width=WIDTH, **kwargs):
        super().__init__(**kwargs)
        self.blocks = layers.conv_stages(image_size, width, "C")
        # Layers kept in a list are no checkpoint dependencies of their own in Keras 3 (see layers.track_layers).
        layers.track_layers(self, [layer for block in self.blocks for layer in block])
        self.dropout = keras.layers.Dropout(0.3)
        self.out = keras.layers.Dense(L.NUM_AGE_GROUPS)

    def call(self, images, training=False):
        x = tf.cast(images, self.compute_dtype)
        for conv, bn in self.blocks:
            x = tf.nn.relu(bn(conv(x), training=training))
        x = tf.reduce_mean(x, axis=[1, 2])
        return tf.cast(self.out(self.dropout(x, training=training)), tf.float32)


def build(image_size):
    classifier = AgeGroupClassifier(image_size, name="age_classifier")
    classifier(tf.zeros([1, image_size, image_size, 3]))
    return classifier


def _accuracy(classifier, images, groups):
    predicted = np.concatenate([np.argmax(classifier(images[i:i + 256], training=False).numpy(), -1)
                                for i in range(0, len(images), 256)])
    return float(np.mean(predicted == groups)), float(np.mean(np.abs(predicted - groups) <= 1))


def train_or_restore(folder, data, epochs, writer, seed=2017, learning_rate=1e-3):
    """C from `folder` if a finished one is there, else trained for `epochs` on `data` (a FaceDataset: its training
    faces, with its flips) and saved there. Returns (classifier, sentence)."""
    classifier = build(data.image_size)
    checkpoint = tf.train.Checkpoint(classifier=classifier)
    latest = tf.train.latest_checkpoint(folder)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched().expect_partial()
        classifier.trainable = False
        return classifier, f"Restored the age classifier of the aging recipe from {latest}"
    keras.utils.set_random_seed(seed + 1)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, epochs * data.steps_per_epoch)))

    @tf.function
    def step(images, age_labels):
        groups = tf.argmax(age_labels, -1, output_type=tf.int32)
        with tf.GradientTape() as tape:
            loss = losses.age_classification_loss(classifier(images, training=True), groups)
        optimizer.apply_gradients(zip(tape.gradient(loss, classifier.trainable_variables),
                                      classifier.trainable_variables))
        return loss

    vis_images, vis_ages, _ = data.visualisation_set()
    vis_groups = np.argmax(vis_ages, -1)
    start, n = time.time(), 0
    for epoch in range(epochs):
        total, count = 0.0, 0
        for images, ages, _ in data.epoch(epoch):
            total += float(step(images, ages))
            count += 1
            n += len(images)
        exact, within_one = _accuracy(classifier, vis_images, vis_groups)
        print(f"\t[age classifier epoch {epoch + 1}/{epochs}] loss {total / count:.3f}, held-out visualisation faces: "
              f"{exact:.0%} in their group, {within_one:.0%} within one group ({n / (time.time() - start):.0f} "
              f"img/s)", flush=True)
        with writer.as_default(step=epoch + 1):
            tf.summary.scalar("age_classifier/loss", total / count)
            tf.summary.scalar("age_classifier/vis_accuracy", exact)
            tf.summary.scalar("age_classifier/vis_accuracy_within_one_group", within_one)
    os.makedirs(folder, exist_ok=True)
    tf.train.CheckpointManager(checkpoint, folder, max_to_keep=1).save()
    classifier.trainable = False
    return classifier, f"Trained the age classifier of the aging recipe ({epochs} epochs), saved in {folder}"
