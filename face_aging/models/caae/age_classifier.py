"""C, the frozen age-group classifier of the aging recipe's G_age_loss (losses.py, docs/caae_recipe.md).

Trained first, on the run's own training faces (the visualisation set held out), then frozen: the generator is
then asked to make faces that C puts in their target group, as IPCGAN and HRFAE do with their age classifiers.
It trains through the one training loop (face_aging/training/loop.py: resumable, NaN-checked, saved on signals) in a
run directory of its own, SAVEDIR/age_classifier/ (checkpoint/, summary/, options.json), apart from the CAAE
checkpoint (whose layout stays the original's), and a resumed run restores it instead of training it again. It is a
training aid only: test mode never needs it, and
the figures of docs/caae_recipe.md come from other judges (--eval), never from C.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from face_aging import layers
from face_aging.models.caae import losses
from face_aging.data import labels as L
from face_aging.training import loop
from face_aging.training.rundir import RunDir
from face_aging.training.optimizer import Adam

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


@dataclasses.dataclass
class ClassifierOptions:
    savedir: str                         # SAVEDIR/age_classifier
    epochs: int
    batch_size: int = 64
    seed: int = 2017
    learning_rate: float = 1e-3
    checkpoint_minutes: float = 10.0
    summary_every: int = 10
    on_bad_checkpoint: str = "error"


class ClassifierJob(loop.Job):
    """C's part of the training loop: the CAAE run's training faces (`data`, a FaceDataset, set on the class by
    train_or_restore), epochs of them, the visualisation faces' accuracy after each."""
    data = None
    caae_writer = None                   # the CAAE run's summaries, which show C's curves beside its own

    @staticmethod
    def run_dir(options):
        return RunDir(options.savedir)

    def setup(self, restore_from):
        options, data = self.options, self.data
        self.spe = data.steps_per_epoch
        self.classifier = build(data.image_size)
        keras.utils.set_random_seed(options.seed + 1)
        self.optimizer = Adam(keras.optimizers.schedules.CosineDecay(
            options.learning_rate, decay_steps=max(1, options.epochs * self.spe)))
        self.step_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(classifier=self.classifier, optimizer=self.optimizer,
                                              step=self.step_variable)
        self.variables = self.classifier.weights
        self.total, self.batch_size = options.epochs * self.spe, data.batch_size
        self.epoch_loss = []
        latest = loop.restore(self, self.checkpoint, restore_from, "age classifier",
                              f" ({data.image_size}px, width {WIDTH})")
        self._step = tf.function(self._train_step)
        if latest:
            return f"Restored the age classifier of the aging recipe from {latest}"
        return f"Training the age classifier of the aging recipe ({options.epochs} epochs of {self.spe} steps)"

    @property
    def step(self):
        return int(self.step_variable)

    def options_record(self):
        return dict(dataclasses.asdict(self.options), model="caae_age_classifier", width=WIDTH,
                    image_size=self.data.image_size, steps_per_epoch=self.spe)

    def nothing_to_do(self, step):
        return "The age classifier of the aging recipe is trained; it is used as it is"

    def batches(self, step):
        for epoch in range(step // self.spe, self.options.epochs):
            yield from self.data.epoch(epoch, max(0, step - epoch * self.spe))

    def _train_step(self, images, age_labels):
        groups = tf.argmax(age_labels, -1, output_type=tf.int32)
        with tf.GradientTape() as tape:
            loss = losses.age_classification_loss(self.classifier(images, training=True), groups)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.classifier.trainable_variables),
                                           self.classifier.trainable_variables))
        self.step_variable.assign_add(1)
        return loss

    def train_step(self, batch, step):
        images, ages, _ = batch
        loss = self._step(images, ages)
        self.epoch_loss.append(float(loss))
        return {"loss": loss}

    def write_summaries(self, writer, step, terms):
        with writer.as_default(step=step):
            tf.summary.scalar("loss", terms["loss"])

    def status(self, step, values):
        epoch = (step - 1) // self.spe
        return (f"[age classifier epoch {epoch + 1}/{self.options.epochs}]", step - epoch * self.spe, self.spe,
                {"loss": values["loss"]})

    def after_step(self, step, writer, progress):
        if step % self.spe:
            return None
        progress.newline()
        epoch = step // self.spe
        vis_images, vis_ages, _ = self.data.visualisation_set()
        exact, within_one = _accuracy(self.classifier, vis_images, np.argmax(vis_ages, -1))
        loss = float(np.mean(self.epoch_loss)) if self.epoch_loss else float("nan")
        self.epoch_loss = []
        print(f"\t[age classifier epoch {epoch}/{self.options.epochs}] loss {loss:.3f}, held-out visualisation "
              f"faces: {exact:.0%} in their group, {within_one:.0%} within one group", flush=True)
        for out in (writer, self.caae_writer):
            if out is None:
                continue
            with out.as_default(step=epoch):
                tf.summary.scalar("age_classifier/loss", loss)
                tf.summary.scalar("age_classifier/vis_accuracy", exact)
                tf.summary.scalar("age_classifier/vis_accuracy_within_one_group", within_one)
        return f"epoch {epoch}"

    def finish(self, step):
        print(f"\tTrained the age classifier of the aging recipe ({self.options.epochs} epochs), saved in "
              f"{self.run.checkpoint}")

    def result(self):
        self.classifier.trainable = False
        return self.classifier


def train_or_restore(folder, data, epochs, writer, seed=2017, learning_rate=1e-3, checkpoint_minutes=10.0,
                     on_bad_checkpoint="error"):
    """C from `folder` (its run directory) if it finished there, else trained (or resumed) for `epochs` on `data`
    (a FaceDataset: its training faces, with its flips) through the training loop. `writer`: the CAAE run's
    summaries, which get C's curves per epoch too. Returns the frozen classifier."""
    legacy = tf.train.latest_checkpoint(folder) if os.path.isfile(os.path.join(folder, "checkpoint")) else None
    if legacy:                           # a run made before C had a run directory of its own: folder/ckpt-N
        classifier = build(data.image_size)
        tf.train.Checkpoint(classifier=classifier).restore(legacy).assert_existing_objects_matched().expect_partial()
        classifier.trainable = False
        print(f"\tRestored the age classifier of the aging recipe from {legacy}")
        return classifier
    job = type("CAAEAgeClassifierJob", (ClassifierJob,), {"data": data, "caae_writer": writer})
    return loop.train(job, ClassifierOptions(savedir=folder, epochs=epochs, batch_size=data.batch_size, seed=seed,
                                             learning_rate=learning_rate, checkpoint_minutes=checkpoint_minutes,
                                             on_bad_checkpoint=on_bad_checkpoint))
