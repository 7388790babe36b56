"""PAGAN training of one generator (one target cluster), in the CAAE run layout under SAVEDIR/clusterK:
summary/ (every loss term, the learning rate, images), samples/ (training inputs and outputs), test/ (fixed
validation faces and their outputs), checkpoint/ (every --save_every iterations, every few minutes, on SIGINT/SIGTERM
and at the end; a restart continues from the latest step with the same data order)."""

import dataclasses
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from face_aging import checkpointing, distribute, runlock, summaries
from face_aging import images as imio
from face_aging.data import prepare
from face_aging.data.labels import AGE_CLUSTER_NAMES
from face_aging.errors import FaceAgingError
from face_aging.pagan import data as pdata
from face_aging.pagan import judges
from face_aging.pagan.model import PAGAN, PAGANConfig
from face_aging.progress import Progress
from face_aging.rundir import RunDir
from face_aging.signals import StopRequest

SCALARS = ("L_D", "L_G", "L_G_age", "L_ide", "L_pix", "D_old", "D_generated", "D_young", "pixel_on")
SHOWN = (("D", "L_D"), ("G", "L_G"), ("age", "L_G_age"), ("ide", "L_ide"), ("pix", "L_pix"))
NUM_VIS = 8


@dataclasses.dataclass
class PAGANTrainOptions:
    savedir: str = os.path.join("save", "pagan")
    prepared_dir: str = os.path.join("data", "prepared")
    iterations: int = 50000
    batch_size: int = 8
    age_classifier: str = judges.AGE_CLASSIFIER_DIR
    identity: str = judges.VGG_FACE_DIR          # a converted VGG-Face folder, or "random"
    use_trained_model: bool = True
    sample_every: int = 500
    save_every: int = 2000
    checkpoint_minutes: float = 10.0
    summary_every: int = 10
    max_to_keep: int = 3
    on_bad_checkpoint: str = "error"  # or "fallback": continue from the newest checkpoint that restores
    config: PAGANConfig = dataclasses.field(default_factory=PAGANConfig)


class PAGANTrainingError(FaceAgingError, RuntimeError):
    """Training cannot start or continue; the message says why and what to do."""


class BadCheckpointError(PAGANTrainingError, checkpointing.BadCheckpointError):
    """The run's checkpoint cannot be restored: damaged, or written by another model or width."""


def cluster_run(savedir, cluster):
    return RunDir(os.path.join(savedir, f"cluster{cluster}"))


def visualisation_faces(train, val, image_size, seed):
    """Fixed young faces for test/: from the validation split where it has young faces, else from training."""
    for split in (val, train):
        paths = [p for p, c in zip(split.paths, split.clusters) if c == 0]
        if paths:
            chosen = np.random.RandomState(seed).permutation(len(paths))[:NUM_VIS]
            return pdata.load_images([paths[i] for i in sorted(chosen)], image_size)
    raise pdata.PAGANDataError("No young faces (cluster 0) in the prepared data")


def checkpoint_variables(model):
    """Every variable a PAGAN checkpoint holds that can go non-finite."""
    variables = [v for net in (model.generator, model.discriminator) for v in net.weights]
    return variables + [v for optimizer in model.optimizers.values() for v in optimizer.variables]


def restore(model, options, run, directory=None):
    """Resume from the checkpoint in `directory` (default run.checkpoint; a multi-worker run's other workers resume
    from the chief's); returns a sentence saying what was done."""
    directory = directory or run.checkpoint
    if not options.use_trained_model and checkpointing.has_checkpoint(run.checkpoint):
        raise PAGANTrainingError(f"--use_trained_model=False trains from scratch, but {run.checkpoint} already "
                                 f"holds a checkpoint; use another --savedir or remove that folder")
    c = options.config
    # Only the owner of a checkpoint folder may set its bad checkpoints aside.
    on_bad = options.on_bad_checkpoint if directory == run.checkpoint else "error"
    latest = checkpointing.restore(
        model.checkpoint, directory, "PAGAN", on_bad,
        f" (generator width {c.gen_channels}, {c.res_blocks} residual blocks, head width {c.head_width:g}, "
        f"phi_age {model.phi_age.image_size}px)", error=BadCheckpointError, unit="iteration")
    if latest:
        return f"Resumed from {latest} (iteration {int(model.step.numpy())})"
    return "Training from random initialisation"


def write_images(model, run, name, young, generated, vis, writer, step):
    """samples/NAME: the batch's inputs (top row) over their outputs; test/NAME: the same for the fixed faces."""
    train_grid = imio.save_grid(np.concatenate([young, generated]), os.path.join(run.samples, name), rows=2)
    vis_out = model.generate(tf.constant(vis)).numpy()
    test_grid = imio.save_grid(np.concatenate([vis, vis_out]), os.path.join(run.test, name), rows=2)
    with writer.as_default(step=step):
        tf.summary.image("samples", train_grid[None], description="Top: training inputs; bottom: G(x)")
        tf.summary.image("test", test_grid[None], description="Top: fixed validation faces; bottom: G(x)")


def train(options, strategy=None):
    """Train the generator of options.config.target_cluster; returns the PAGAN model.

    `strategy`: a tf.distribute strategy from distribute.make_strategy (None: one device).
    """
    chief = cluster_run(options.savedir, options.config.target_cluster)
    options = distribute.worker_options(strategy, options)
    run = cluster_run(options.savedir, options.config.target_cluster)
    with runlock.training_lock(run.root):  # first: a second training here must not even clean "stale" files
        run.make()
        return _train(options, strategy, run, distribute.restore_dir(strategy, run.checkpoint, chief.checkpoint))


def _train(options, strategy, run, restore_from):
    config = options.config
    k = config.target_cluster
    checkpointing.clean_stale_files(run.checkpoint, (run.root, run.samples, run.test))
    splits = {name: prepare.read_split(options.prepared_dir, name) for name in ("train", "val")}
    splits = pdata.drop_undecodable(splits, config.image_size, run)
    train_split, val_split = splits["train"], splits["val"]
    young_n = int(np.sum(train_split.clusters == 0))
    old_n = int(np.sum(train_split.clusters == k))
    print(f"\tData: {young_n} young faces (cluster 0) and {old_n} faces of cluster {k} ({AGE_CLUSTER_NAMES[k]}) "
          f"from {options.prepared_dir}")

    with (strategy or tf.distribute.get_strategy()).scope():  # every replica holds the judges
        phi_age = judges.load_age_classifier(options.age_classifier)
        phi_id = judges.load_identity_network(options.identity, config.image_size, config.seed)
    identity_text = phi_id.info.get("source", options.identity)
    if options.identity == judges.RANDOM_IDENTITY:
        logging.warning("Identity loss on a small RANDOMLY INITIALISED network, not VGG-Face: identity preservation "
                        "will be weak. Convert VGG-Face with --model import for the paper's setting.")
    print(f"\tJudges: phi_age from {options.age_classifier} ({phi_age.image_size}px), identity from {identity_text}")

    keras.utils.set_random_seed(config.seed)
    model = PAGAN(config, phi_age, phi_id, strategy)
    if strategy is not None or config.precision != "float32" or config.xla:
        print(f"\tPrecision {config.precision}, {model.replicas} replica(s) of {options.batch_size // model.replicas} "
              f"pairs{', XLA' if config.xla else ''}")
    print("\t" + restore(model, options, run, restore_from))
    distribute.check_same_step(strategy, int(model.step.numpy()), unit="iteration")
    manager = checkpointing.make_manager(model.checkpoint, run.checkpoint, options.max_to_keep)
    run.write_options(options_record(options, young_n, old_n, identity_text))
    step = int(model.step.numpy())
    if step >= options.iterations:
        print(f"\tThis run already trained {step} iterations; nothing to do. Pass a larger --iterations to go on.")
        return model

    vis = visualisation_faces(train_split, val_split, config.image_size, config.seed)
    imio.save_grid(vis, os.path.join(run.test, "input.png"), rows=1)
    stream = pdata.training_pairs(train_split, k, config.image_size, options.batch_size, config.seed, step,
                                  options.iterations)
    # Marks where this session starts: TensorBoard drops the points a killed session wrote from there on.
    writer = summaries.session_writer(run.summary, step + 1)
    progress = Progress(options.iterations, step, options.batch_size)
    last_save = time.time()
    variables = checkpoint_variables(model)

    def save(reason):
        checkpointing.save(manager, int(model.step.numpy()), reason, variables, unit="iteration")

    def where():
        return f"at iteration {step} (its last checkpoint: {manager.latest_checkpoint or 'none yet'})"

    try:
        with distribute.lost_workers(strategy, where), StopRequest() as stop:
            for young, old in stream:
                terms, generated = model.train_step(young, old)
                step += 1
                # Every loss term, every iteration: a NaN stops the run here, before anything can save it.
                values = {name: float(value) for name, value in terms.items()}
                checkpointing.check_finite(values, step, manager.latest_checkpoint, unit="iteration")
                if step % options.summary_every == 0 or step == options.iterations:
                    with writer.as_default(step=step):
                        for name in SCALARS:
                            tf.summary.scalar(name, terms[name])
                        tf.summary.scalar("learning_rate", model.learning_rate)
                progress.update(step, f"[cluster {k}]", step, options.iterations,
                                {label: values[name] for label, name in SHOWN})
                if step % options.sample_every == 0 or step == options.iterations:
                    write_images(model, run, f"{step:06d}.png", young.numpy(), generated.numpy(), vis, writer, step)
                if stop.signal:
                    progress.newline()
                    save(f"stopped by {stop.signal}")
                    raise SystemExit(f"Stopped by {stop.signal} at iteration {step}; the checkpoint is saved and the "
                                     f"same command resumes the run.")
                if step % options.save_every == 0 and step < options.iterations:
                    save(f"iteration {step}")
                    last_save = time.time()
                elif time.time() - last_save > options.checkpoint_minutes * 60:
                    save(f"every {options.checkpoint_minutes:g} minutes")
                    last_save = time.time()
        progress.newline()
        with distribute.lost_workers(strategy, where):
            save("end of training")
    except BaseException:
        progress.newline()  # the error starts on its own line
        raise
    finally:
        writer.close()
    print(f"\tDone: cluster {k}, iteration {step}. Outputs in {run.root}/{{summary,samples,test,checkpoint}}")
    return model


def options_record(options, young_n, old_n, identity_text):
    record = dataclasses.asdict(options)
    config = record.pop("config")
    record.update(config)
    record["model"] = "pagan"
    record["num_young"] = young_n
    record["num_target"] = old_n
    record["identity_source"] = identity_text
    return record
