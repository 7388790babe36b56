"""Training the instance-discrimination identity network (`python main.py --model identity --is_train`), its part of
the one training loop (face_aging/training/loop.py): epochs over the prepared train split's faces (no labels used),
two augmented views of each, NT-Xent (network.py); after each epoch the validation faces' views are matched the same
way, a checkpoint is saved and the network is written to --identity (OUT_DIR), where PAGAN reads it.

Run layout in SAVEDIR: summary/ (loss, accuracy of finding the partner view, learning rate; validation accuracy),
checkpoint/, options.json.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from face_aging.data import prepare
from face_aging.models.estimator.train import load_faces
from face_aging.models.identity import network, store
from face_aging.models.identity.config import IdentityOptions  # noqa: F401 (the options train_identity takes)
from face_aging.models.pagan import data as pdata
from face_aging.training import loop
from face_aging.training.loop import TrainingError
from face_aging.training.optimizer import Adam

MARGIN = 7 / 6      # faces are kept at 7/6 of the network's side, so that a view can be a crop of 75-100% of it


def view(image, seed, size):
    """An augmented view of a uint8 face [M, M, 3] (M = MARGIN x size) as float32 [size, size, 3] in [-1, 1]: a
    random square crop of 75-100% of the side, mirrored half the time, brightness, contrast, saturation and hue
    jittered, grey one time in five. What is left the same between two views of one face is who it is."""
    s = tf.random.experimental.stateless_split(seed, 8)
    side = image.shape[0]
    crop = tf.random.stateless_uniform([], s[0], int(side * 0.75), side + 1, tf.int32)
    x = tf.image.stateless_random_crop(tf.cast(image, tf.float32) / 255.0, tf.stack([crop, crop, 3]), s[1])
    x = tf.image.resize(x, [size, size])
    x = tf.image.stateless_random_flip_left_right(x, s[2])
    x = tf.image.stateless_random_brightness(x, 0.3, s[3])
    x = tf.image.stateless_random_contrast(x, 0.6, 1.4, s[4])
    x = tf.image.stateless_random_saturation(x, 0.4, 1.6, s[5])
    x = tf.image.stateless_random_hue(x, 0.05, s[6])
    grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(x))
    x = tf.where(tf.random.stateless_uniform([], s[7]) < 0.2, grey, x)
    return tf.clip_by_value(x, 0.0, 1.0) * 2.0 - 1.0


def two_views(faces, positions, indices, seed, size):
    """A tf.data dataset of (view A, view B) of faces[indices] (uint8 in memory); `positions` number the draws so
    that a resumed run sees the same views."""
    faces = tf.constant(faces)

    def both(position, i):
        face = tf.gather(faces, i)
        return (view(face, tf.stack([tf.constant(seed, tf.int64), 2 * position]), size),
                view(face, tf.stack([tf.constant(seed, tf.int64), 2 * position + 1]), size))
    return tf.data.Dataset.from_tensor_slices((positions, indices)).map(both, num_parallel_calls=tf.data.AUTOTUNE)


class IdentityJob(loop.EpochJob):
    """The identity network's part of the training loop."""

    status_terms = {"loss": "loss", "acc": "accuracy"}

    def setup(self, restore_from):
        options = self.options
        splits = {name: prepare.read_split(options.prepared_dir, name) for name in ("train", "val")}
        splits = pdata.drop_undecodable(splits, options.image_size, self.run)
        train, val = splits["train"], splits["val"]
        self.spe = spe = len(train) // options.batch_size
        if spe < 1:
            raise TrainingError(f"{len(train)} training faces is less than one batch of --batch_size="
                                f"{options.batch_size}")
        if len(val) < 2:
            raise TrainingError(f"{options.prepared_dir}/val.csv holds {len(val)} face(s): the identity network's "
                                f"validation matches views among at least 2 (prepare with a --val_fraction above 0)")
        stored = int(round(options.image_size * MARGIN))
        print(f"\tData: {len(train)} training faces, {len(val)} validation faces (no labels used); decoding them "
              f"once at {stored}px ...")
        self.train_faces, self.num_train = load_faces(train, stored), len(train)
        self.val_faces = load_faces(val, stored)
        keras.utils.set_random_seed(options.seed)
        self.model = network.build(options.image_size, options.width)
        self.total, self.batch_size, self.figures = options.epochs * spe, options.batch_size, None
        schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=self.total, alpha=0.05)
        self.optimizer = Adam(schedule)
        self.optimizer.build(self.model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.variables = self.model.weights + self.optimizer.variables
        latest = loop.restore(self, self.checkpoint, restore_from, "identity network",
                              f" ({options.image_size}px, width {options.width})")
        return f"Resumed from {latest} (step {self.step})" if latest else "Training from random initialisation"

    def options_record(self):
        record = dataclasses.asdict(self.options)
        record.update(model="identity", num_train=self.num_train, temperature=network.TEMPERATURE)
        return record

    def batches(self, step):
        options = self.options
        indices = pdata.stream_indices(self.num_train, options.batch_size, options.seed, step, self.total).reshape(-1)
        first = step * options.batch_size
        positions = np.arange(first, first + len(indices), dtype=np.int64)
        return (two_views(self.train_faces, positions, indices, options.seed, options.image_size)
                .batch(options.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))

    @tf.function
    def _step(self, view_a, view_b):
        with tf.GradientTape() as tape:
            z = self.model(tf.concat([view_a, view_b], axis=0), training=True)
            n = tf.shape(view_a)[0]
            loss, accuracy = network.nt_xent(z[:n], z[n:])
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "accuracy": accuracy}

    def validate(self):
        """(loss, accuracy) of NT-Xent on fixed views of the validation faces (at most 256: one batch)."""
        faces = self.val_faces[:256]
        n = len(faces)
        views = next(iter(two_views(faces, np.arange(n, dtype=np.int64), np.arange(n), self.options.seed + 1,
                                    self.options.image_size).batch(n)))
        z = self.model(tf.concat(views, axis=0), training=False)
        loss, accuracy = network.nt_xent(z[:n], z[n:])
        return float(loss), float(accuracy), n

    def after_step(self, step, writer, progress):
        if step % self.spe:
            return None
        progress.newline()
        epoch = step // self.spe
        loss, accuracy, n = self.validate()
        self.figures = {"val_loss": loss, "val_accuracy": accuracy, "epoch": epoch}
        with writer.as_default(step=step):
            tf.summary.scalar("val_loss", loss)
            tf.summary.scalar("val_accuracy", accuracy)
        store.save(self.model, self.options.out_dir,
                   {"source": f"instance discrimination on {self.options.prepared_dir} ({self.options.savedir}, "
                              f"epoch {epoch})", "epoch": epoch, "val_accuracy": accuracy})
        print(f"\tEpoch {epoch}: validation views matched {accuracy:.1%} (of {n} faces), loss {loss:.3f}; "
              f"written to {self.options.out_dir}")
        return f"epoch {epoch}"

    def finish(self, step):
        print(f"\tDone; PAGAN uses it with --identity {self.options.out_dir}")

    def result(self):
        return self.figures


def train_identity(options):
    """Train the identity network on the prepared train split; returns the last validation figures."""
    return loop.train(IdentityJob, options)
