"""phi_age: a VGG-16 trained to classify PAGAN's four age clusters, the feature extractor of the pyramid
discriminator. `python main.py --model age --is_train` runs this, its part of the one training loop
(face_aging/training/loop.py).

Run layout (resumable) in SAVEDIR: summary/ (loss, accuracy, validation accuracy overall and per cluster, learning
rate), checkpoint/, options.json. The classifier with the best balanced validation accuracy so far is exported to
checkpoints/age_classifier (what PAGAN loads). Classes are weighted by inverse frequency: real data is dominated by
young faces, and an unweighted classifier would see little of the oldest cluster.
"""

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from face_aging.training import checkpointing
from face_aging.data import prepare
from face_aging.data.labels import AGE_CLUSTER_NAMES, NUM_AGE_CLUSTERS
from face_aging.data.pipeline import decode_and_resize
from face_aging.models.pagan import data as pdata
from face_aging.models.pagan import frozen
from face_aging.models.pagan.vgg import CONV_LAYERS, FC_LAYERS, VGG16, scaled_channels
from face_aging.training.rundir import RunDir
from face_aging.training import loop
from face_aging.training.loop import TrainingError
from face_aging.training.optimizer import Adam


def class_weights(clusters):
    """Inverse-frequency weights, mean 1 over the training faces; 0 for an absent cluster."""
    counts = np.bincount(clusters, minlength=NUM_AGE_CLUSTERS).astype(np.float64)
    weights = np.where(counts > 0, len(clusters) / (NUM_AGE_CLUSTERS * np.maximum(counts, 1)), 0.0)
    present = counts > 0
    weights[present] *= len(clusters) / np.sum(weights[clusters])
    return weights.astype(np.float32)


def initialise_from(model, source):
    """Copy every layer whose shapes match from a converted VGG-Face (the convolutions, usually fc6 and fc7; never
    the classes of fc8). Returns the names copied."""
    face = frozen.load_identity_network(source)
    copied = []
    for name in CONV_LAYERS + FC_LAYERS:
        ours, theirs = model.layer(name).get_weights(), face.layer(name).get_weights()
        if all(a.shape == b.shape for a, b in zip(ours, theirs)):
            model.layer(name).set_weights(theirs)
            copied.append(name)
    return copied


class AgeClassifierTrainer:
    def __init__(self, options, class_weight, from_vgg_face):
        self.options = options
        self.model = VGG16(NUM_AGE_CLUSTERS, options.image_size, scaled_channels(options.width), options.fc_units,
                           input_scale=1.0 if from_vgg_face else 1 / 127.5, name="phi_age")
        self.optimizer = Adam(options.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.best = tf.Variable(-1.0, dtype=tf.float32, trainable=False, name="best_balanced_accuracy")
        self.class_weight = tf.constant(class_weight)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step,
                                              best=self.best)

    @tf.function
    def train_step(self, images, labels):
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            per_face = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.reduce_mean(per_face * tf.gather(self.class_weight, labels))
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.step.assign_add(1)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))
        return loss, accuracy

    @tf.function(reduce_retracing=True)
    def predict(self, images):
        return tf.argmax(self.model(images, training=False), -1, output_type=tf.int32)


def labelled_stream(manifest, image_size, batch_size, seed, start_step, end_step):
    indices = pdata.stream_indices(len(manifest), batch_size, seed, start_step, end_step).reshape(-1)
    paths = tf.constant(manifest.paths)
    labels = tf.constant(manifest.clusters.astype(np.int32))
    return (tf.data.Dataset.from_tensor_slices(indices)
            .map(lambda i: (decode_and_resize(tf.io.read_file(tf.gather(paths, i)), image_size),
                            tf.gather(labels, i)), num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def evaluate(trainer, manifest, image_size, batch_size=32):
    """Accuracy overall, per cluster, and balanced (mean of the per-cluster accuracies of present clusters)."""
    data = (tf.data.Dataset.from_tensor_slices((manifest.paths, manifest.clusters.astype(np.int32)))
            .map(lambda p, c: (decode_and_resize(tf.io.read_file(p), image_size), c),
                 num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE))
    predicted, truth = [], []
    for images, labels in data:
        predicted.append(trainer.predict(images).numpy())
        truth.append(labels.numpy())
    predicted, truth = np.concatenate(predicted), np.concatenate(truth)
    per_cluster = {}
    for k in range(NUM_AGE_CLUSTERS):
        mask = truth == k
        if mask.any():
            per_cluster[k] = float(np.mean(predicted[mask] == k))
    return {"accuracy": float(np.mean(predicted == truth)), "per_cluster": per_cluster,
            "balanced_accuracy": float(np.mean(list(per_cluster.values()))), "num_faces": int(len(truth))}


def validation_subset(manifest, limit, seed):
    if len(manifest) <= limit:
        return manifest
    return manifest.select(np.sort(np.random.RandomState(seed).permutation(len(manifest))[:limit]))


class AgeJob(loop.Job):
    """phi_age's part of the training loop: epochs over the prepared train split, a validation after each (the best
    classifier so far exported to --age_classifier) and a checkpoint."""

    max_to_keep = 2

    @staticmethod
    def run_dir(options):
        return RunDir(options.savedir)

    def setup(self, restore_from):
        options, run = self.options, self.run
        splits = {name: prepare.read_split(options.prepared_dir, name) for name in ("train", "val")}
        splits = pdata.drop_undecodable(splits, options.image_size, run)
        self.train_split, val_split = splits["train"], splits["val"]
        if len(val_split) == 0:
            raise TrainingError(f"{options.prepared_dir}/val.csv is empty: the age classifier needs validation "
                                f"faces (prepare with a --val_fraction above 0)")
        self.val_split = validation_subset(val_split, options.val_limit, options.seed)
        self.spe = spe = len(self.train_split) // options.batch_size
        if spe < 1:
            raise TrainingError(f"{len(self.train_split)} training faces is less than one batch of "
                                f"--batch_size={options.batch_size}")
        self.class_weight = weights = class_weights(self.train_split.clusters)
        counts = np.bincount(self.train_split.clusters, minlength=NUM_AGE_CLUSTERS)
        print("\tData: " + ", ".join(f"{AGE_CLUSTER_NAMES[k]}: {counts[k]}" for k in range(NUM_AGE_CLUSTERS))
              + f" training faces; {len(self.val_split)} validation faces; {spe} batches of {options.batch_size} "
                f"an epoch")

        keras.utils.set_random_seed(options.seed)
        previous = run.read_options()
        has_vgg_face = bool(options.init) and os.path.exists(os.path.join(options.init, "vgg_face.json"))
        # A resumed run keeps the input scaling it started with, whether or not VGG-Face has appeared since.
        resuming = checkpointing.has_checkpoint(run.checkpoint)
        self.from_vgg_face = previous.get("from_vgg_face", has_vgg_face) if resuming else has_vgg_face
        self.trainer = trainer = AgeClassifierTrainer(options, weights, self.from_vgg_face)
        latest = loop.restore(self, trainer.checkpoint, restore_from, "age",
                              f" ({options.image_size}px, --vgg_width {options.width:g}, --fc_units "
                              f"{options.fc_units})")
        self.checkpoint = trainer.checkpoint
        self.variables = trainer.model.weights + trainer.optimizer.variables
        self.total, self.batch_size, self.figures = options.epochs * spe, options.batch_size, None
        if latest:
            # Adam's learning rate is a variable the checkpoint restored; --learning_rate applies to the rest of the
            # run (as in CAAE and PAGAN, whose schedules are not checkpointed), e.g. a lower one after a divergence.
            trainer.optimizer.learning_rate.assign(options.learning_rate)
            return f"Resumed from {latest} (step {int(trainer.step)})"
        if self.from_vgg_face:
            copied = initialise_from(trainer.model, options.init)
            return f"Initialised {len(copied)} layers from VGG-Face ({options.init}): {', '.join(copied) or 'none'}"
        return f"Training from random initialisation (no VGG-Face at {options.init or '(none)'})"

    @property
    def step(self):
        return int(self.trainer.step)

    def options_record(self):
        record = dataclasses.asdict(self.options)
        record.update(model="age", num_train=len(self.train_split), class_weights=self.class_weight.tolist(),
                      from_vgg_face=self.from_vgg_face)
        return record

    def nothing_to_do(self, step):
        return f"Already trained {step // self.spe} epochs; pass a larger --epoch to go on."

    def batches(self, step):
        options = self.options
        return labelled_stream(self.train_split, options.image_size, options.batch_size, options.seed, step,
                               self.total)

    def train_step(self, batch, step):
        loss, accuracy = self.trainer.train_step(*batch)
        return {"loss": loss, "train_accuracy": accuracy}

    def write_summaries(self, writer, step, terms):
        with writer.as_default(step=step):
            tf.summary.scalar("loss", terms["loss"])
            tf.summary.scalar("train_accuracy", terms["train_accuracy"])
            tf.summary.scalar("learning_rate", float(self.trainer.optimizer.learning_rate))

    def status(self, step, values):
        epoch = (step - 1) // self.spe
        return (f"[epoch {epoch + 1}/{self.options.epochs}]", step - epoch * self.spe, self.spe,
                {"loss": values["loss"], "acc": values["train_accuracy"]})

    def after_step(self, step, writer, progress):
        if step % self.spe:
            return None
        progress.newline()
        epoch = step // self.spe - 1
        self.figures = end_of_epoch(self.trainer, self.val_split, self.options, writer, step, epoch)
        return f"epoch {epoch + 1}"

    def finish(self, step):
        print(f"\tDone: best balanced validation accuracy {float(self.trainer.best):.3f}; phi_age is in "
              f"{self.options.out_dir}")

    def result(self):
        return self.figures


def train_age_classifier(options):
    """Train phi_age on the prepared train split; returns the final validation figures (None when the run had
    already finished)."""
    return loop.train(AgeJob, options)


def end_of_epoch(trainer, val_split, options, writer, step, epoch):
    figures = evaluate(trainer, val_split, options.image_size)
    with writer.as_default(step=step):
        tf.summary.scalar("val_accuracy", figures["accuracy"])
        tf.summary.scalar("val_balanced_accuracy", figures["balanced_accuracy"])
        for k, value in figures["per_cluster"].items():
            tf.summary.scalar(f"val_accuracy_cluster{k}", value)
    per = "  ".join(f"{AGE_CLUSTER_NAMES[k]} {v:.2f}" for k, v in figures["per_cluster"].items())
    print(f"\tEpoch {epoch + 1}: validation accuracy {figures['accuracy']:.3f}, balanced "
          f"{figures['balanced_accuracy']:.3f} ({per})")
    if figures["balanced_accuracy"] > float(trainer.best):
        trainer.best.assign(figures["balanced_accuracy"])
        frozen.save_age_classifier(trainer.model, options.out_dir,
                                   {"source": f"python main.py --model age (run {os.path.abspath(options.savedir)})",
                                    "epoch": epoch + 1, "step": step, "validation": figures})
        logging.info("Exported phi_age (balanced accuracy %.3f) to %s", figures["balanced_accuracy"], options.out_dir)
    return figures
