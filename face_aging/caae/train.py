"""CAAE training: the original's loop (samples and test grids every epoch, checkpoints every 5 epochs and at the
end, TensorBoard every step) made resumable: checkpoints also every few minutes, and a restart continues from the
latest step, mid-epoch included."""

import dataclasses
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from face_aging import checkpointing, distribute, runlock, summaries
from face_aging import images as imio
from face_aging.caae import age_classifier, losses, synthetic_check, tf1_checkpoint
from face_aging.caae.model import CAAE, CAAEConfig
from face_aging.data import decode_check, holdout
from face_aging.data import labels as L
from face_aging.data.pipeline import FaceDataset, load_faces
from face_aging.errors import FaceAgingError
from face_aging.progress import Progress
from face_aging.rundir import SKIPPED_FILE, RunDir, write_text_atomic
from face_aging.signals import StopRequest

SCALARS = ("EG_loss", "E_z_loss", "D_z_loss_z", "D_z_loss_prior", "D_img_loss_input", "D_img_loss_G", "G_img_loss",
           "tv_loss")
SHOWN = (("EG", "EG_loss"), ("Dz", "loss_Dz"), ("Di", "loss_Di"), ("Gi", "G_img_loss"))
# The aging recipe's terms, where its options are on (losses.recipe_losses).
RECIPE_SCALARS = ("G_age_loss", "G_age_accuracy", "id_loss", "E_z_age_loss", "D_age_loss")
RECIPE_SHOWN = (("Age", "G_age_loss"), ("AgeAcc", "G_age_accuracy"), ("Id", "id_loss"), ("Dage", "D_age_loss"))


@dataclasses.dataclass
class TrainOptions:
    savedir: str = "save"
    dataset: str = "UTKFace"
    epoch: int = 50
    batch_size: int = 100
    weights: tuple = losses.DEFAULT_WEIGHTS
    use_trained_model: bool = True
    use_init_model: bool = True
    init_checkpoint: str = ""
    init_checkpoint_explicit: bool = False   # given on the command line: a missing file is then an error
    pretrain_epochs: int = 10
    num_synthetic: int = 6000
    num_vis: int = 100
    save_every_epochs: int = 5
    checkpoint_minutes: float = 10.0
    summary_every: int = 1
    max_to_keep: int = 3
    data_root: str = "data"
    on_bad_checkpoint: str = "error"  # or "fallback": continue from the newest checkpoint that restores
    holdout: bool = False              # leave out the held-out faces (data/holdout.py: test and val sets)
    flip: bool = False                 # mirror each training face with probability 1/2 (the recipe's augmentation)
    age_classifier_epochs: int = 5     # training of the recipe's age classifier C (with config.age_loss > 0)
    recipe: str = "none"               # --recipe: the named flag set this run started from (cli.RECIPES)
    config: CAAEConfig = dataclasses.field(default_factory=CAAEConfig)


class TrainingError(FaceAgingError, RuntimeError):
    """Training cannot start or continue; the message says why and what to do."""


class BadCheckpointError(TrainingError, checkpointing.BadCheckpointError):
    """The run's checkpoint cannot be restored: damaged, or written by another model or size."""


def describe_model(config):
    return (f" ({config.image_size}x{config.image_size}, z_dim {config.z_dim}, enc_channels {config.enc_channels}, "
            f"gen_channels {config.gen_channels})")


def checkpoint_variables(model):
    """Every variable a CAAE checkpoint holds that can go non-finite."""
    variables = [v for net in (model.encoder, model.generator, model.d_z, model.d_img, model.d_age) if net is not None
                 for v in net.weights]
    return variables + [v for optimizer in model.optimizers.values() for v in optimizer.variables]


def restore_or_initialise(model, run, options, directory=None):
    """Continue the run in `run` if it has a checkpoint (in `directory`, when not run.checkpoint: a multi-worker
    run's other workers resume from the chief's), else start one (optionally from an original TF1 model).

    Returns a sentence saying what was done.
    """
    directory = directory or run.checkpoint
    # Only the owner of a checkpoint folder may set its bad checkpoints aside.
    on_bad = options.on_bad_checkpoint if directory == run.checkpoint else "error"
    latest = checkpointing.restore(model.checkpoint, directory, "CAAE", on_bad, describe_model(options.config),
                                   error=BadCheckpointError)
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


def train(options, strategy=None):
    """Train CAAE as `options` say; returns the model (for callers such as tests and evaluations).

    `strategy`: a tf.distribute strategy from distribute.make_strategy (None: one device).
    """
    chief = RunDir(options.savedir)
    options = distribute.worker_options(strategy, options)
    run = RunDir(options.savedir)
    with runlock.training_lock(run.root):  # first: a second training here must not even clean "stale" files
        run.make()
        return _train(options, strategy, run, distribute.restore_dir(strategy, run.checkpoint, chief.checkpoint))


def _train(options, strategy, run, restore_from):
    options = adopt_tf1_checkpoint_in_savedir(run, options)
    checkpointing.clean_stale_files(run.checkpoint, (run.root, run.samples, run.test))
    config = options.config
    faces = load_faces(options.dataset, config.image_size, config.seed, options.num_synthetic, options.data_root,
                       decode_cache=run.path(decode_check.CACHE_FILE))
    num_held_out = 0
    if options.holdout:
        keep = holdout.training_mask(faces)
        num_held_out = int((~keep).sum())
        faces = faces.subset(keep)
        print(f"\tHeld out {num_held_out} faces (the test and val sets of docs/caae_recipe.md); never trained on")
    if faces.skipped:
        write_text_atomic(run.path(SKIPPED_FILE), "".join(f"{p}\t{why}\n" for p, why in faces.skipped))
    data = FaceDataset(faces, config.image_size, options.batch_size, config.seed, options.num_vis, options.flip)
    print(f"\tData: {len(faces)} faces from {faces.source}; {data.steps_per_epoch} batches of {options.batch_size} "
          f"an epoch; {len(data.vis_index)} held out for samples/ and test/")

    keras.utils.set_random_seed(config.seed)  # the initial weights too, so the same command makes the same run
    model = CAAE(config, data.steps_per_epoch, strategy)
    if strategy is not None or config.precision != "float32" or config.xla:
        print(f"\tPrecision {config.precision}, {model.replicas} replica(s) of {options.batch_size // model.replicas} "
              f"faces{', XLA' if config.xla else ''}")
    print("\t" + restore_or_initialise(model, run, options, restore_from))
    distribute.check_same_step(strategy, int(model.step.numpy()))
    manager = checkpointing.make_manager(model.checkpoint, run.checkpoint, options.max_to_keep)
    record = options_record(options, faces, num_held_out)
    run.write_options(record)

    pretrain = int(model.pretrain_epochs.numpy())
    total_epochs = pretrain + options.epoch
    spe = data.steps_per_epoch
    step = int(model.step.numpy())
    total_steps = total_epochs * spe
    if step >= total_steps:
        print(f"\tThis run already trained {step // spe} epochs (step {step}); nothing to do. "
              f"Pass a larger --epoch to train further.")
        return model

    vis = data.visualisation_set()
    imio.save_grid(np.tile(vis[0][:L.NUM_AGE_GROUPS], (L.NUM_AGE_GROUPS, 1, 1, 1)), os.path.join(run.test, "input.png"),
                   rows=L.NUM_AGE_GROUPS)
    # Marks where this session starts: TensorBoard drops the points a killed session wrote from there on.
    writer = summaries.session_writer(run.summary, step + 1)
    with writer.as_default(step=step):
        # How the run was made, recipe options included, beside its curves.
        tf.summary.text("options", "    " + json.dumps(record, indent=1, sort_keys=True).replace("\n", "\n    "))
    if config.age_loss > 0:
        model.age_classifier, said = age_classifier.train_or_restore(
            run.path("age_classifier"), data, options.age_classifier_epochs, writer, config.seed)
        print("\t" + said)
    main_weights = tf.constant(tuple(options.weights) + (config.age_loss, config.id_loss, config.z_age_loss),
                               tf.float32)
    no_weights = tf.zeros([6], tf.float32)
    progress = Progress(total_steps, step, options.batch_size)
    last_save = time.time()
    variables = checkpoint_variables(model)

    def save(reason):
        return checkpointing.save(manager, int(model.step.numpy()), reason, variables)

    def where():
        return f"at step {step} (its last checkpoint: {manager.latest_checkpoint or 'none yet'})"

    try:
        with distribute.lost_workers(strategy, where), StopRequest() as stop:
            for epoch in range(step // spe, total_epochs):
                weights = no_weights if epoch < pretrain else main_weights
                phase = "pre-train " if epoch < pretrain else ""
                epoch_text = (f"[{phase}epoch {epoch + 1 if epoch < pretrain else epoch - pretrain + 1}/"
                              f"{pretrain if epoch < pretrain else options.epoch}]")
                first_batch = step - epoch * spe
                for batch, (images, ages, genders) in enumerate(data.epoch(epoch, first_batch),
                                                                start=first_batch + 1):
                    terms, histograms = model.train_step(images, ages, genders, weights, epoch >= pretrain)
                    step += 1
                    # Every loss term, every step: a NaN stops the run here, before anything can save it.
                    values = {name: float(value) for name, value in terms.items()}
                    checkpointing.check_finite(values, step, manager.latest_checkpoint)
                    if step % options.summary_every == 0 or step == total_steps:
                        write_step_summaries(writer, step, terms, histograms, model.learning_rate)
                    progress.update(step, epoch_text, batch, spe,
                                    {k: values[t] for k, t in SHOWN + RECIPE_SHOWN if t in values})
                    if stop.signal:
                        break
                    if time.time() - last_save > options.checkpoint_minutes * 60:
                        save(f"every {options.checkpoint_minutes:g} minutes")
                        last_save = time.time()
                progress.newline()
                if stop.signal:
                    save(f"stopped by {stop.signal}")
                    raise SystemExit(f"Stopped by {stop.signal} at step {step}; the checkpoint is saved and the same "
                                     f"command resumes the run.")
                write_epoch_images(model, run, vis, epoch_image_name(epoch, pretrain), writer, step)
                if (epoch + 1) % options.save_every_epochs == 0 and epoch + 1 < total_epochs:
                    save(f"epoch {epoch + 1}")
                    last_save = time.time()
        with distribute.lost_workers(strategy, where):
            save("end of training")
    except BaseException:
        progress.newline()  # the error starts on its own line
        raise
    finally:
        writer.close()
    if options.dataset == "synthetic":
        report = synthetic_check.aging_check(model, config.image_size, config.seed)
        synthetic_check.write_report(report, run.path("synthetic_aging.json"))
        print("\tAging of unseen synthetic persons (mean |output - true rendering|; see synthetic_aging.json):\n"
              + "\n".join("\t" + line for line in synthetic_check.format_table(report).splitlines()))
    print(f"\tDone: {total_epochs} epochs, step {step}. Outputs in {run.root}/{{summary,samples,test,checkpoint}}")
    return model


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
