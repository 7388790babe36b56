"""PAGAN's part of the one training loop (face_aging/training/loop.py): one generator (one target cluster), in the
CAAE run layout under SAVEDIR/clusterK: summary/ (every loss term, the learning rate, images), samples/ (training
inputs and outputs), test/ (fixed validation faces and their outputs), checkpoint/ (every --save_every iterations,
every few minutes, on SIGINT/SIGTERM and at the end; a restart continues from the latest step with the same data
order)."""

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from face_aging.training import checkpointing
from face_aging import images as imio
from face_aging.data import prepare
from face_aging.data.labels import AGE_CLUSTER_NAMES
from face_aging.models.pagan import data as pdata
from face_aging.models.pagan import estimator_judge, frozen
from face_aging.models.pagan.model import PAGAN
from face_aging.training.rundir import RunDir, cluster_run
from face_aging.training import loop
from face_aging.training.loop import TrainingError

SCALARS = ("L_D", "L_G", "L_G_age", "L_ide", "L_pix", "L_chroma", "D_old", "D_generated", "D_young", "pixel_on")
SHOWN = (("D", "L_D"), ("G", "L_G"), ("age", "L_G_age"), ("ide", "L_ide"), ("pix", "L_pix"), ("chroma", "L_chroma"))
ESTIMATOR_SCALARS, ESTIMATOR_SHOWN = ("L_est", "est_age"), (("est", "est_age"),)   # with L_est on
FINE_SCALARS, FINE_SHOWN = ("L_fine",), (("fine", "L_fine"),)                       # with L_fine on
NUM_VIS = 8


def visualisation_faces(train, val, image_size, seed, target_cluster=1, source_ages=()):
    """Fixed input faces for test/ (young ones; for target cluster 0, older ones): from the validation split where it
    has some, else from training."""
    for split in (val, train):
        try:
            paths = pdata.pair_paths(split, target_cluster, "", source_ages)[0]
        except pdata.PAGANDataError:
            continue
        chosen = np.random.RandomState(seed).permutation(len(paths))[:NUM_VIS]
        return pdata.load_images([paths[i] for i in sorted(chosen)], image_size)
    raise pdata.PAGANDataError("No input faces for this generator in the prepared data "
                               + ("(faces of 31 and over)" if target_cluster == 0 else "(young faces, cluster 0)"))


def restore(model, job, directory):
    """Resume from the checkpoint in `directory` (a multi-worker run's other workers resume from the chief's);
    returns a sentence saying what was done."""
    options, run = job.options, job.run
    if not options.use_trained_model and checkpointing.has_checkpoint(run.checkpoint):
        raise TrainingError(f"--use_trained_model=False trains from scratch, but {run.checkpoint} already "
                            f"holds a checkpoint; use another --savedir or remove that folder")
    c = options.config
    latest = loop.restore(
        job, model.checkpoint, directory, "PAGAN",
        f" (generator width {c.gen_channels}, {c.res_blocks} residual blocks, head width {c.head_width:g}, "
        f"phi_age {model.phi_age.image_size}px)")
    if latest:
        return f"Resumed from {latest} (iteration {int(model.step.numpy())})"
    if options.init_generator:
        return f"Generator started from {warm_start(model.generator, c, options.init_generator)}; discriminator " \
               f"from random initialisation"
    return "Training from random initialisation"


def warm_start(generator, config, run_folder):
    """Load the generator of another run (SAVEDIR/clusterK) into `generator`; returns the checkpoint's path.

    Only G: the discriminator of another cluster has learnt another boundary, and this run's step, learning rate
    and Adam moments start afresh. Why at all: a cluster with few training faces (41-50) learns a weaker change
    than its neighbours on the same budget (docs/pagan_recipe.md)."""
    run = RunDir(run_folder)
    latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
    if not latest and os.path.isfile(os.path.join(run_folder, "generator.index")):
        # A bundled generator's folder (face_aging/pretrained/pagan_utkface128/clusterK): the generator alone.
        latest = os.path.join(run_folder, "generator")
    if not latest:
        raise TrainingError(f"--init_generator {run_folder}: no checkpoint in {run.checkpoint}; train that generator "
                            f"first (--recipe utkface128 starts cluster 2 from cluster 3), or give --init_generator= "
                            f"to start from random weights")
    recorded = run.read_options()
    # A bundled generator's change_split is applied after its weights, not learnt: training continues the weights.
    differ = [f"{name} {recorded[name]!r} (this run: {getattr(config, name)!r})"
              for name in config.ARCHITECTURE
              if name != "change_split" and name in recorded and recorded[name] != getattr(config, name)]
    if differ:
        raise TrainingError(f"--init_generator {run_folder}: its generator is not this run's: " + "; ".join(differ))
    try:
        tf.train.Checkpoint(generator=generator).restore(latest).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise TrainingError(f"--init_generator {run_folder}: {latest} does not fit this run's generator: "
                            f"{str(error).splitlines()[0]}") from None
    return latest


def write_images(model, run, name, young, generated, vis, writer, step):
    """samples/NAME: the batch's inputs (top row) over their outputs; test/NAME: the same for the fixed faces."""
    train_grid = imio.save_grid(np.concatenate([young, generated]), os.path.join(run.samples, name), rows=2)
    vis_out = model.generate(tf.constant(vis)).numpy()
    test_grid = imio.save_grid(np.concatenate([vis, vis_out]), os.path.join(run.test, name), rows=2)
    with writer.as_default(step=step):
        tf.summary.image("samples", train_grid[None], description="Top: training inputs; bottom: G(x)")
        tf.summary.image("test", test_grid[None], description="Top: fixed validation faces; bottom: G(x)")


class PAGANJob(loop.Job):
    """PAGAN's part of the training loop: pairs of young and target-cluster faces, images every --sample_every
    iterations, checkpoints every --save_every."""

    unit = "iteration"

    @staticmethod
    def run_dir(options):
        return cluster_run(options.savedir, options.config.target_cluster)

    def setup(self, restore_from):
        options, run = self.options, self.run
        config = options.config
        k = config.target_cluster
        splits = {name: prepare.read_split(options.prepared_dir, name) for name in ("train", "val")}
        splits = pdata.drop_undecodable(splits, config.image_size, run)
        self.train_split, self.val_split = splits["train"], splits["val"]
        inputs, targets = pdata.pair_paths(self.train_split, k, "train", options.source_ages, options.target_ages)
        self.young_n, self.old_n = len(inputs), len(targets)
        narrowed = [f"{side} aged {ages[0]}-{ages[1]}" for side, ages in
                    (("inputs", options.source_ages), ("targets", options.target_ages)) if ages]
        if k == 0:
            print(f"\tData: {self.young_n} faces of 31 and over to make younger, {self.old_n} young faces "
                  f"(cluster 0) to make them like" + (f" ({', '.join(narrowed)})" if narrowed else "")
                  + f", from {options.prepared_dir}")
        else:
            print(f"\tData: {self.young_n} young faces (cluster 0) and {self.old_n} faces of cluster {k} "
                  f"({AGE_CLUSTER_NAMES[k]})" + (f" ({', '.join(narrowed)})" if narrowed else "")
                  + f" from {options.prepared_dir}")
        uses_estimator = options.age_classifier == estimator_judge.ESTIMATOR or config.weights.estimator > 0
        with (self.strategy or tf.distribute.get_strategy()).scope():  # every replica holds the judges
            try:
                estimator, where = estimator_judge.load(options.estimator_dir) if uses_estimator else (None, "")
            except estimator_judge.EstimatorError as error:
                raise TrainingError(str(error)) from None
            if options.age_classifier == estimator_judge.ESTIMATOR:
                phi_age = estimator_judge.EstimatorPhi(estimator, where)
            else:
                phi_age = frozen.load_age_classifier(options.age_classifier)
            phi_id = frozen.load_identity_network(options.identity, config.image_size, config.seed)
        self.identity_text = phi_id.info.get("source", options.identity)
        if options.identity == frozen.RANDOM_IDENTITY:
            logging.warning("Identity loss on a small RANDOMLY INITIALISED network, not VGG-Face: identity "
                            "preservation will be weak. Convert VGG-Face with --model import for the paper's setting.")
        phi_text = (phi_age.info["source"] if isinstance(phi_age, estimator_judge.EstimatorPhi)
                    else options.age_classifier)
        print(f"\tJudges: phi_age from {phi_text} ({phi_age.image_size}px), identity from {self.identity_text}")
        if config.weights.estimator > 0:
            print(f"\tL_est: G(x) read by the age estimator ({where}), pulled up to "
                  f"{config.weights.estimator_target:g} years, weight {config.weights.estimator:g}")
        keras.utils.set_random_seed(config.seed)
        self.model = model = PAGAN(config, phi_age, phi_id, self.strategy, estimator)
        if model.describe_step(options.batch_size, "pairs"):
            print("\t" + model.describe_step(options.batch_size, "pairs"))
        said = restore(model, self, restore_from)
        self.checkpoint, self.variables = model.checkpoint, model.checkpoint_variables()
        self.total, self.batch_size = options.iterations, options.batch_size
        return said

    @property
    def step(self):
        return int(self.model.step.numpy())

    def options_record(self):
        return options_record(self.options, self.young_n, self.old_n, self.identity_text)

    def nothing_to_do(self, step):
        return f"This run already trained {step} iterations; nothing to do. Pass a larger --iterations to go on."

    def begin(self, writer, step):
        config = self.options.config
        self.vis = visualisation_faces(self.train_split, self.val_split, config.image_size, config.seed,
                                       config.target_cluster, self.options.source_ages)
        imio.save_grid(self.vis, os.path.join(self.run.test, "input.png"), rows=1)

    def batches(self, step):
        options, config = self.options, self.options.config
        return pdata.training_pairs(self.train_split, config.target_cluster, config.image_size, options.batch_size,
                                    config.seed, step, options.iterations, options.source_ages, options.target_ages)

    def train_step(self, batch, step):
        self.young, _ = batch
        terms, self.generated = self.model.train_step(*batch)
        return terms

    def write_summaries(self, writer, step, terms):
        with writer.as_default(step=step):
            for name in SCALARS + FINE_SCALARS + ESTIMATOR_SCALARS:
                if name in terms:
                    tf.summary.scalar(name, terms[name])
            tf.summary.scalar("learning_rate", self.model.learning_rate)

    def status(self, step, values):
        return (f"[cluster {self.options.config.target_cluster}]", step, self.total,
                {label: values[name] for label, name in SHOWN + FINE_SHOWN + ESTIMATOR_SHOWN
                 if name in values})

    def after_step(self, step, writer, progress):
        if step % self.options.sample_every == 0 or step == self.total:
            write_images(self.model, self.run, f"{step:06d}.png", self.young.numpy(), self.generated.numpy(),
                         self.vis, writer, step)
        if step % self.options.save_every == 0 and step < self.total:
            return f"iteration {step}"
        return None

    def finish(self, step):
        print(f"\tDone: cluster {self.options.config.target_cluster}, iteration {step}. Outputs in "
              f"{self.run.root}/{{summary,samples,test,checkpoint}}")

    def result(self):
        return self.model


def train(options, strategy=None):
    """Train the generator of options.config.target_cluster; returns the PAGAN model.

    `strategy`: a tf.distribute strategy from distribute.make_strategy (None: one device).
    """
    return loop.train(PAGANJob, options, strategy)


def options_record(options, young_n, old_n, identity_text):
    record = dataclasses.asdict(options)
    config = record.pop("config")
    record.update(config)
    record["model"] = "pagan"
    record["num_young"] = young_n
    record["num_target"] = old_n
    record["identity_source"] = identity_text
    return record
