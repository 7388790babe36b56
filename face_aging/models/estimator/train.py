"""Training the age-and-gender estimator (`python main.py --model estimator --is_train`), its part of the one
training loop (face_aging/training/loop.py): epochs over the prepared train split (`--model prepare`), the
validation faces measured after each, a checkpoint, TensorBoard summaries; re-running the command resumes.

Run layout in SAVEDIR: summary/ (losses, learning rate, validation age error and gender accuracy), checkpoint/,
options.json. `python -m face_aging.models.estimator.bundled SAVEDIR` makes the run's model the bundled one.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from face_aging.data import prepare
from face_aging.data.pipeline import decode_and_resize
from face_aging.models.estimator import network
from face_aging.models.estimator.config import EstimatorOptions  # noqa: F401 (the options train_estimator takes)
from face_aging.models.pagan import data as pdata
from face_aging.training import loop
from face_aging.training.loop import TrainingError
from face_aging.training.optimizer import Adam


def load_faces(manifest, image_size, batch_size=256):
    """uint8 [N, S, S, 3] of every face of `manifest` (decoded once: the training set of a small model fits in
    memory many times over, and decoding JPEGs every epoch would be most of the work)."""
    data = (tf.data.Dataset.from_tensor_slices(manifest.paths)
            .map(lambda p: decode_and_resize(tf.io.read_file(p), image_size), num_parallel_calls=tf.data.AUTOTUNE)
            .map(lambda x: tf.cast(tf.round((x + 1.0) * 127.5), tf.uint8)).batch(batch_size))
    return np.concatenate([batch.numpy() for batch in data]) if len(manifest) else np.zeros((0, image_size,
                                                                                             image_size, 3), np.uint8)


# Texture jitter (--estimator_texture): photos come sharpened by a camera's pipeline, softened or grainy, and a small
# estimator trained on clean chips reads sharpening and grain as age: an unsharp mask (2 px, 200%) on the val faces
# made the first bundled estimator read them 4.8 years older, --eval's judge 1.5 (MODEL_CARD.md). A share of the
# training views gets a random unsharp mask or softening (Gaussians of these sigmas, in pixels at the training size)
# and grain.
TEXTURE_SIGMAS = (0.7, 1.4)
TEXTURE_AMOUNT = (-0.8, 2.0)     # the detail x - blur(x) added this many times: below 0 softens, above sharpens
TEXTURE_GRAIN = 0.06             # at most this standard deviation of grey grain, in [-1, 1] units (7.6 / 255)


def texture_jitter(x, seed):
    """`x` [S, S, 3] in [-1, 1] with a random unsharp mask or softening and grain (not clipped)."""
    from face_aging.models.caae.residual import smooth
    seeds = tf.random.experimental.stateless_split(seed, 4)
    wide = tf.random.stateless_uniform([], seeds[0]) < 0.5
    detail = x - tf.where(wide, smooth(x, TEXTURE_SIGMAS[1]), smooth(x, TEXTURE_SIGMAS[0]))
    x = x + tf.random.stateless_uniform([], seeds[1], *TEXTURE_AMOUNT) * detail
    grain = tf.random.stateless_uniform([], seeds[2], 0.0, TEXTURE_GRAIN)
    return x + grain * tf.random.stateless_normal(tf.concat([tf.shape(x)[:2], [1]], 0), seeds[3])


def augment(image, seed, texture=0.0):
    """A training view of a uint8 face: mirrored half the time, shifted by up to 1/16 of its side (mirrored edges),
    brightness and contrast jittered, and with probability `texture` texture_jitter; float32 in [-1, 1]. `seed` [2]
    makes it the same on a resumed run."""
    size = image.shape[0]
    pad = max(1, size // 16)
    seeds = tf.random.experimental.stateless_split(seed, 5)
    x = tf.cast(image, tf.float32) / 127.5 - 1.0
    x = tf.image.stateless_random_flip_left_right(x, seeds[0])
    x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]], "REFLECT")
    x = tf.image.stateless_random_crop(x, [size, size, 3], seeds[1])
    x = x + tf.random.stateless_uniform([], seeds[2], -0.15, 0.15)
    mean = tf.reduce_mean(x)
    x = (x - mean) * tf.random.stateless_uniform([], seeds[3], 0.75, 1.25) + mean
    if texture > 0:
        chance, jitter = tf.unstack(tf.random.experimental.stateless_split(seeds[4], 2))
        x = tf.cond(tf.random.stateless_uniform([], chance) < texture, lambda: texture_jitter(x, jitter), lambda: x)
    return tf.clip_by_value(x, -1.0, 1.0)


def evaluate(model, faces, ages, genders):
    """estimator.evaluate.figures of uint8 faces with known labels (gender -1: not counted)."""
    from face_aging.models.estimator.evaluate import figures
    female, years = network.estimate(model, faces.astype(np.float32) / 127.5 - 1.0)
    return figures(female, years, ages.astype(np.float64), genders)


class EstimatorJob(loop.EpochJob):
    """The estimator's part of the training loop."""

    status_terms = {"loss": "loss", "mae": "age_mae"}

    def setup(self, restore_from):
        options, run = self.options, self.run
        splits = {name: prepare.read_split(options.prepared_dir, name) for name in ("train", "val")}
        splits = pdata.drop_undecodable(splits, options.image_size, run)
        train, val = (splits[name].select(splits[name].ages >= 0) for name in ("train", "val"))
        if len(val) == 0:
            raise TrainingError(f"{options.prepared_dir}/val.csv holds no face with a known age: the estimator needs "
                                f"validation faces (prepare with a --val_fraction above 0)")
        self.spe = spe = len(train) // options.batch_size
        if spe < 1:
            raise TrainingError(f"{len(train)} training faces is less than one batch of --batch_size="
                                f"{options.batch_size}")
        print(f"\tData: {len(train)} training faces ({np.mean(train.genders == 1):.0%} female, ages "
              f"{train.ages.min()}-{train.ages.max()}), {len(val)} validation faces; decoding them once ...")
        self.train_faces = load_faces(train, options.image_size)
        self.train_ages, self.train_genders = train.ages, train.genders
        self.val = (load_faces(val, options.image_size), val.ages, val.genders)
        self.num_train = len(train)
        keras.utils.set_random_seed(options.seed)
        self.model = network.build(options.image_size, options.width)
        self.total, self.batch_size, self.figures = options.epochs * spe, options.batch_size, None
        schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=self.total, alpha=0.02)
        self.optimizer = Adam(schedule)
        self.optimizer.build(self.model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.variables = self.model.weights + self.optimizer.variables
        latest = loop.restore(self, self.checkpoint, restore_from, "estimator",
                              f" ({options.image_size}px, --estimator_width {options.width})")
        if latest:
            return f"Resumed from {latest} (step {self.step})"
        return "Training from random initialisation"

    def options_record(self):
        record = dataclasses.asdict(self.options)
        record.update(model="estimator", num_train=self.num_train, max_years=network.MAX_YEARS,
                      age_sigma=network.AGE_SIGMA)
        return record

    def batches(self, step):
        options = self.options
        indices = pdata.stream_indices(self.num_train, options.batch_size, options.seed, step, self.total)
        faces = tf.constant(self.train_faces)
        ages, genders = tf.constant(self.train_ages), tf.constant(self.train_genders)
        first = step * options.batch_size

        def view(position, i):
            seed = tf.stack([tf.constant(options.seed, tf.int64), position])
            return augment(tf.gather(faces, i), seed, options.texture), tf.gather(ages, i), tf.gather(genders, i)

        flat = indices.reshape(-1)
        return (tf.data.Dataset.from_tensor_slices((np.arange(first, first + len(flat), dtype=np.int64), flat))
                .map(view, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(options.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))

    @tf.function
    def _step(self, images, ages, genders):
        known = tf.cast(genders >= 0, tf.float32)
        with tf.GradientTape() as tape:
            gender_logit, age_logits = self.model(images, training=True)
            gender_loss, age_loss = network.losses(gender_logit, age_logits, tf.maximum(genders, 0), ages)
            gender_loss = tf.reduce_sum(gender_loss * known) / tf.maximum(tf.reduce_sum(known), 1.0)
            age_loss = tf.reduce_mean(age_loss)
            loss = gender_loss + age_loss
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        error = tf.reduce_mean(tf.abs(network.expected_age(age_logits) - tf.cast(ages, tf.float32)))
        return {"loss": loss, "gender_loss": gender_loss, "age_loss": age_loss, "age_mae": error}

    def after_step(self, step, writer, progress):
        if step % self.spe:
            return None
        progress.newline()
        epoch = step // self.spe
        self.figures = figures = evaluate(self.model, *self.val)
        with writer.as_default(step=step):
            tf.summary.scalar("val_age_mae", figures["age_mae"])
            tf.summary.scalar("val_gender_accuracy", figures["gender_accuracy"])
        print(f"\tEpoch {epoch}: validation age error {figures['age_mae']:.2f} years, gender right "
              f"{figures['gender_accuracy']:.1%} ({figures['num_faces']} faces)")
        return f"epoch {epoch}"

    def finish(self, step):
        print(f"\tDone; make it the bundled estimator with: python -m face_aging.models.estimator.bundled "
              f"{self.options.savedir}")

    def result(self):
        return self.figures


def train_estimator(options):
    """Train the estimator on the prepared train split; returns the last validation figures."""
    return loop.train(EstimatorJob, options)
