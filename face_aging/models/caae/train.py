"""CAAE's part of the one training loop (face_aging/training/loop.py): the original's schedule (pre-training epochs
first, samples and test grids every epoch, checkpoints every 5 epochs and at the end, TensorBoard every step), its
TF1 checkpoints as starting points, and the aging recipe's frozen age classifier, trained before the first step."""

import dataclasses
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from face_aging import images as imio
from face_aging.models.caae import age_classifier, synthetic_check, tf1_checkpoint
from face_aging.models.caae.model import CAAE
from face_aging.data import decode_check, holdout
from face_aging.data import labels as L
from face_aging.data.pipeline import FaceDataset, load_faces
from face_aging.training.rundir import SKIPPED_FILE, RunDir, write_text_atomic
from face_aging.training import loop
from face_aging.training.loop import TrainingError

SCALARS = ("EG_loss", "E_z_loss", "D_z_loss_z", "D_z_loss_prior", "D_img_loss_input", "D_img_loss_G", "G_img_loss",
           "tv_loss")
SHOWN = (("EG", "EG_loss"), ("Dz", "loss_Dz"), ("Di", "loss_Di"), ("Gi", "G_img_loss"))
# The aging recipe's terms, where its options are on (losses.recipe_losses).
RECIPE_SCALARS = ("G_age_loss", "G_age_accuracy", "id_loss", "E_z_age_loss", "D_age_loss")
RECIPE_SHOWN = (("Age", "G_age_loss"), ("AgeAcc", "G_age_accuracy"), ("Id", "id_loss"), ("Dage", "D_age_loss"))


def describe_model(config):
    return (f" ({config.image_size}x{config.image_size}, z_dim {config.z_dim}, enc_channels {config.enc_channels}, "
            f"gen_channels {config.gen_channels})")


def restore_or_initialise(model, job, directory):
    """Continue the run in job.run if it has a checkpoint (in `directory`: a multi-worker run's other workers resume
    from the chief's), else start one (optionally from an original TF1 model).

    Returns a sentence saying what was done.
    """
    options, run = job.options, job.run
    latest = loop.restore(job, model.checkpoint, directory, "CAAE", describe_model(options.config))
    if latest:
        if not options.use_trained_model and int(model.pretrain_epochs.numpy()) != options.pretrain_epochs:
            raise TrainingError(
                f"--use_trained_model=False trains from scratch, but {run.checkpoint} already holds a checkpoint "
                f"({os.path.basename(latest)}) of another run. Use another --savedir, or remove that folder.")
        return f"Resumed from {latest} (step {int(model.step.numpy())})"
    if not options.use_trained_model:
        model.pretrain_epochs.assign(options.pretrain_epochs)
        return f"Training from scratch, starting with {options.pretrain_epochs} epochs of pre-training"
    if options.use_init_model and options.init_checkpoint:
        if tf1_checkpoint.is_tf1_checkpoint(options.init_checkpoint):
            step = tf1_checkpoint.load_tf1_checkpoint(options.init_checkpoint, model.encoder, model.generator,
                                                      model.d_z, model.d_img)
            if step:
                model.set_step(step)
            return f"Initialised from the original TF1 checkpoint {options.init_checkpoint} (step {step or 0})"
        if options.init_checkpoint_explicit:
            tf1_checkpoint.resolve_tf1_prefix(options.init_checkpoint)  # raises a clear FileNotFoundError
            raise TrainingError(f"--init_checkpoint {options.init_checkpoint} is not an original CAAE checkpoint "
                                f"(it has no tensor E_conv0/w)")
        logging.info("No init model at %s; training from random initialisation", options.init_checkpoint)
    return "Training from random initialisation"


def adopt_tf1_checkpoint_in_savedir(run, options):
    """`--savedir` of an original TF1 run: import its latest checkpoint as the init model of this run.

    Its `checkpoint` state file is renamed to checkpoint.tf1 so the checkpoint manager never counts (and never deletes)
    the original's files.
    """
    state = os.path.join(run.checkpoint, "checkpoint")
    if os.path.exists(state) and tf1_checkpoint.is_tf1_checkpoint(run.checkpoint):
        prefix = tf1_checkpoint.resolve_tf1_prefix(run.checkpoint)
        os.replace(state, state + ".tf1")
        logging.info("%s holds an original TF1 checkpoint; continuing from %s", run.checkpoint, prefix)
        return dataclasses.replace(options, init_checkpoint=prefix, init_checkpoint_explicit=True,
                                   use_init_model=True, use_trained_model=True)
    return options


def epoch_image_name(epoch, pretrain_epochs):
    """samples/NN.png numbering as in the original; pre-training epochs get their own names."""
    if epoch < pretrain_epochs:
        return f"pretrain_{epoch + 1:02d}.png"
    return f"{epoch - pretrain_epochs + 1:02d}.png"


def write_epoch_images(model, run, vis, name, writer, step):
    """samples/NAME: reconstructions of the visualisation set; test/NAME: its first faces at every age group."""
    images, ages, genders = vis
    recon = model.reconstruct(images, ages, genders).numpy()
    sample_grid = imio.save_grid(recon, os.path.join(run.samples, name))
    faces = images[:L.NUM_AGE_GROUPS]
    progression = model.age_progression(faces, genders[:L.NUM_AGE_GROUPS])
    test_grid = imio.save_grid(progression.reshape((-1,) + faces.shape[1:]), os.path.join(run.test, name),
                               rows=L.NUM_AGE_GROUPS, cols=len(faces))
    with writer.as_default(step=step):
        tf.summary.image("samples", sample_grid[None], description="Reconstructions of the visualisation set")
        tf.summary.image("test", test_grid[None], description="Rows: age groups 0-5 ... 71+, young at the top")


class CAAEJob(loop.Job):
    """CAAE's part of the training loop: the original's epochs (pre-training first), samples and test grids every
    epoch, checkpoints every --save_every_epochs."""

    @staticmethod
    def run_dir(options):
        return RunDir(options.savedir)

    def setup(self, restore_from):
        self.options = options = adopt_tf1_checkpoint_in_savedir(self.run, self.options)
        config, run = options.config, self.run
        faces = load_faces(options.dataset, config.image_size, config.seed, options.num_synthetic,
                           options.data_root, decode_cache=run.path(decode_check.CACHE_FILE))
        self.num_held_out = 0
        if options.holdout:
            keep = holdout.training_mask(faces)
            self.num_held_out = int((~keep).sum())
            faces = faces.subset(keep)
            print(f"\tHeld out {self.num_held_out} faces (the test and val sets of docs/caae_recipe.md); never "
                  f"trained on")
        if faces.skipped:
            write_text_atomic(run.path(SKIPPED_FILE), "".join(f"{p}\t{why}\n" for p, why in faces.skipped))
        self.faces = faces
        self.data = data = FaceDataset(faces, config.image_size, options.batch_size, config.seed, options.num_vis,
                                       options.flip)
        print(f"\tData: {len(faces)} faces from {faces.source}; {data.steps_per_epoch} batches of "
              f"{options.batch_size} an epoch; {len(data.vis_index)} held out for samples/ and test/")
        keras.utils.set_random_seed(config.seed)  # the initial weights too, so the same command makes the same run
        self.model = model = CAAE(config, data.steps_per_epoch, self.strategy)
        if model.describe_step(options.batch_size, "faces"):
            print("\t" + model.describe_step(options.batch_size, "faces"))
        said = restore_or_initialise(model, self, restore_from)
        self.checkpoint, self.variables = model.checkpoint, model.checkpoint_variables()
        self.batch_size, self.spe = options.batch_size, data.steps_per_epoch
        self.pretrain = int(model.pretrain_epochs.numpy())
        self.total_epochs = self.pretrain + options.epoch
        self.total = self.total_epochs * self.spe
        return said

    @property
    def step(self):
        return int(self.model.step.numpy())

    def options_record(self):
        self.record = options_record(self.options, self.faces, self.num_held_out)
        return self.record

    def nothing_to_do(self, step):
        return (f"This run already trained {step // self.spe} epochs (step {step}); nothing to do. "
                f"Pass a larger --epoch to train further.")

    def begin(self, writer, step):
        config, options = self.options.config, self.options
        self.vis = self.data.visualisation_set()
        imio.save_grid(np.tile(self.vis[0][:L.NUM_AGE_GROUPS], (L.NUM_AGE_GROUPS, 1, 1, 1)),
                       os.path.join(self.run.test, "input.png"), rows=L.NUM_AGE_GROUPS)
        with writer.as_default(step=step):
            # How the run was made, recipe options included, beside its curves.
            tf.summary.text("options", "    " + json.dumps(self.record, indent=1, sort_keys=True).replace("\n",
                                                                                                         "\n    "))
        if config.age_loss > 0:
            self.model.age_classifier = age_classifier.train_or_restore(
                self.run.path("age_classifier"), self.data, options.age_classifier_epochs, writer, config.seed,
                checkpoint_minutes=options.checkpoint_minutes)
        self.main_weights = tf.constant(tuple(options.weights) + (config.age_loss, config.id_loss,
                                                                  config.z_age_loss), tf.float32)
        self.no_weights = tf.zeros([6], tf.float32)

    def batches(self, step):
        for epoch in range(step // self.spe, self.total_epochs):
            yield from self.data.epoch(epoch, max(0, step - epoch * self.spe))

    def train_step(self, batch, step):
        images, ages, genders = batch
        training = step // self.spe >= self.pretrain
        terms, self.histograms = self.model.train_step(images, ages, genders,
                                                       self.main_weights if training else self.no_weights, training)
        return terms

    def write_summaries(self, writer, step, terms):
        write_step_summaries(writer, step, terms, self.histograms, self.model.learning_rate)

    def status(self, step, values):
        epoch = (step - 1) // self.spe
        pretraining = epoch < self.pretrain
        text = (f"[{'pre-train ' if pretraining else ''}epoch "
                f"{epoch + 1 if pretraining else epoch - self.pretrain + 1}/"
                f"{self.pretrain if pretraining else self.options.epoch}]")
        return text, step - epoch * self.spe, self.spe, {k: values[t] for k, t in SHOWN + RECIPE_SHOWN if t in values}

    def after_step(self, step, writer, progress):
        if step % self.spe:
            return None
        epoch = step // self.spe - 1
        progress.newline()
        write_epoch_images(self.model, self.run, self.vis, epoch_image_name(epoch, self.pretrain), writer, step)
        if (epoch + 1) % self.options.save_every_epochs == 0 and epoch + 1 < self.total_epochs:
            return f"epoch {epoch + 1}"
        return None

    def finish(self, step):
        config = self.options.config
        if self.options.dataset == "synthetic":
            report = synthetic_check.aging_check(self.model, config.image_size, config.seed)
            synthetic_check.write_report(report, self.run.path("synthetic_aging.json"))
            print("\tAging of unseen synthetic persons (mean |output - true rendering|; see synthetic_aging.json):\n"
                  + "\n".join("\t" + line for line in synthetic_check.format_table(report).splitlines()))
        print(f"\tDone: {self.total_epochs} epochs, step {step}. Outputs in "
              f"{self.run.root}/{{summary,samples,test,checkpoint}}")

    def result(self):
        return self.model


def train(options, strategy=None):
    """Train CAAE as `options` say; returns the model (for callers such as tests and evaluations).

    `strategy`: a tf.distribute strategy from distribute.make_strategy (None: one device).
    """
    return loop.train(CAAEJob, options, strategy)


def write_step_summaries(writer, step, terms, histograms, learning_rate):
    with writer.as_default(step=step):
        for name in SCALARS + tuple(n for n in RECIPE_SCALARS if n in terms):
            tf.summary.scalar(name, terms[name])
        tf.summary.scalar("EG_learning_rate", learning_rate)
        for name, values in histograms.items():
            tf.summary.histogram(name, values)


def options_record(options, faces, num_held_out=0):
    record = dataclasses.asdict(options)
    config = record.pop("config")
    record.update(config)
    record["weights"] = list(options.weights)
    record["model"] = "caae"
    record["num_faces"] = len(faces)
    record["num_skipped"] = len(faces.skipped)
    record["num_held_out"] = num_held_out
    record["data_source"] = faces.source
    return record
