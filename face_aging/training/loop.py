"""The one training loop of every model here (CAAE, a PAGAN cluster's generator, PAGAN's phi_age): what happens
when a run starts, steps, saves and stops is written once, and each model supplies only what differs (a `Job`).

A run: take the run directory's lock (a second training there is refused), clear what a killed run left half-written,
let the job load its data, build and restore its model, record options.json, then step until the job's total,
checking every loss term for NaN/Inf (nothing non-finite is ever saved), writing summaries and a status line, and
saving a checkpoint when the job asks (end of an epoch, every N iterations), every --checkpoint_minutes, on
SIGINT/SIGTERM (then the process exits: the same command resumes) and at the end.
"""

import time

from face_aging.training import checkpointing, distribute, runlock, summaries
from face_aging.errors import FaceAgingError
from face_aging.training.progress import Progress
from face_aging.training.rundir import RunDir
from face_aging.training.signals import StopRequest


class TrainingError(FaceAgingError, RuntimeError):
    """Training cannot start or continue; the message says why and what to do."""


class BadCheckpointError(TrainingError, checkpointing.BadCheckpointError):
    """The run's checkpoint cannot be restored: damaged, or written by another model or size."""


class Job:
    """What one model's training supplies to `train`: a static `run_dir(options)` (its RunDir), the methods below,
    and the attributes `setup` sets: `checkpoint` (tf.train.Checkpoint), `variables` (those that must be finite to be
    saved), `total` (steps of the whole run) and `batch_size`. The options have `checkpoint_minutes`,
    `summary_every` and `on_bad_checkpoint`."""

    unit = "step"            # how the job names its steps in messages ("iteration" for PAGAN)

    def __init__(self, options, run, strategy=None):
        self.options, self.run, self.strategy = options, run, strategy

    @property
    def max_to_keep(self):
        """Checkpoints kept: options.max_to_keep where the options have it."""
        return getattr(self.options, "max_to_keep", 3)

    # -- before the loop ---------------------------------------------------------------------------------------------
    def setup(self, restore_from):
        """Load the data, build the model, restore it from `restore_from` (a checkpoint folder) or initialise it;
        returns the sentence saying which."""
        raise NotImplementedError

    @property
    def step(self):
        """The step the model is at (what the checkpoint restored)."""
        raise NotImplementedError

    def options_record(self):
        """options.json's content."""
        raise NotImplementedError

    def nothing_to_do(self, step):
        """The sentence for a run that already reached its total."""
        return f"This run already trained {step} {self.unit}s; nothing to do."

    def begin(self, writer, step):
        """Work between the restore and the first step (fixed visualisation faces, a frozen helper network)."""

    # -- the loop ----------------------------------------------------------------------------------------------------
    def batches(self, step):
        """The batches from step `step` on, in the order an uninterrupted run would have seen them."""
        raise NotImplementedError

    def train_step(self, batch, step):
        """One step on `batch` (`step` steps done before it); returns the loss terms {name: scalar tensor}."""
        raise NotImplementedError

    def write_summaries(self, writer, step, terms):
        raise NotImplementedError

    def status(self, step, values):
        """The status line's (label, position, out of, {shown name: value})."""
        raise NotImplementedError

    def after_step(self, step, writer, progress):
        """Images, evaluations; returns why to save a checkpoint now (e.g. "epoch 5"), or None."""
        return None

    # -- after the loop ----------------------------------------------------------------------------------------------
    def finish(self, step):
        """Work after the last checkpoint (reports, the closing line)."""

    def result(self):
        """What training returns to its caller."""
        return None


class EpochJob(Job):
    """A small network trained by epochs with one optimiser (the estimator, the identity network): its step is the
    optimiser's, its run directory SAVEDIR itself. `setup` also sets `optimizer`, `spe` (steps an epoch) and
    `_step(*batch)` (the compiled step); `status_terms` names the terms the status line shows."""

    max_to_keep = 2
    status_terms = {"loss": "loss"}

    @staticmethod
    def run_dir(options):
        return RunDir(options.savedir)

    @property
    def step(self):
        return int(self.optimizer.iterations)

    def nothing_to_do(self, step):
        return f"Already trained {step // self.spe} epochs; pass a larger --epoch to go on."

    def train_step(self, batch, step):
        return self._step(*batch)

    def write_summaries(self, writer, step, terms):
        import tensorflow as tf
        with writer.as_default(step=step):
            for name, value in terms.items():
                tf.summary.scalar(name, value)
            tf.summary.scalar("learning_rate", float(self.optimizer.learning_rate))

    def status(self, step, values):
        epoch = (step - 1) // self.spe
        return (f"[epoch {epoch + 1}/{self.options.epochs}]", step - epoch * self.spe, self.spe,
                {shown: values[name] for shown, name in self.status_terms.items()})


def restore(job, checkpoint, directory, kind, describe):
    """checkpointing.restore for `job`: its checkpoint from `directory`, bad ones set aside only when
    --on_bad_checkpoint fallback and the folder is the job's own (another worker's folder belongs to that worker)."""
    on_bad = job.options.on_bad_checkpoint if directory == job.run.checkpoint else "error"
    return checkpointing.restore(checkpoint, directory, kind, on_bad, describe, error=BadCheckpointError,
                                 unit=job.unit)


def train(make_job, options, strategy=None):
    """Run the job `make_job(options, run, strategy)` makes for this worker; returns its result.

    `make_job.run_dir(options)` is the run directory of `options`. A multi-worker run's non-chief workers write under
    SAVEDIR/workers/workerN (distribute.worker_options) and resume from the chief's checkpoint.
    """
    chief = make_job.run_dir(options)
    options = distribute.worker_options(strategy, options)
    run = make_job.run_dir(options)
    with runlock.training_lock(run.root):  # first: a second training here must not even clean "stale" files
        run.make()
        job = make_job(options, run, strategy)
        _loop(job, distribute.restore_dir(strategy, run.checkpoint, chief.checkpoint))
        return job.result()


def _loop(job, restore_from):
    run, options, unit = job.run, job.options, job.unit
    checkpointing.clean_stale_files(run.checkpoint, (run.root, run.samples, run.test))
    print("\t" + job.setup(restore_from))
    step = job.step
    distribute.check_same_step(job.strategy, step, unit=unit)
    manager = checkpointing.make_manager(job.checkpoint, run.checkpoint, job.max_to_keep)
    run.write_options(job.options_record())
    if step >= job.total:
        print("\t" + job.nothing_to_do(step))
        return
    # Marks where this session starts: TensorBoard drops the points a killed session wrote from there on.
    writer = summaries.session_writer(run.summary, step + 1)
    progress = Progress(job.total, step, job.batch_size)
    last_save = time.time()

    def save(reason):
        checkpointing.save(manager, step, reason, job.variables, unit=unit)

    def where():
        return f"at {unit} {step} (its last checkpoint: {manager.latest_checkpoint or 'none yet'})"

    try:
        job.begin(writer, step)
        with distribute.lost_workers(job.strategy, where), StopRequest() as stop:
            for batch in job.batches(step):
                terms = job.train_step(batch, step)
                step += 1
                # Every loss term, every step: a NaN stops the run here, before anything can save it.
                values = {name: float(value) for name, value in terms.items()}
                checkpointing.check_finite(values, step, manager.latest_checkpoint, unit=unit)
                if step % options.summary_every == 0 or step == job.total:
                    job.write_summaries(writer, step, terms)
                progress.update(step, *job.status(step, values))
                if stop.signal:
                    progress.newline()
                    save(f"stopped by {stop.signal}")
                    raise SystemExit(f"Stopped by {stop.signal} at {unit} {step}; the checkpoint is saved and the "
                                     f"same command resumes the run.")
                reason = job.after_step(step, writer, progress)
                if reason is None and time.time() - last_save > options.checkpoint_minutes * 60:
                    reason = f"every {options.checkpoint_minutes:g} minutes"
                if reason is not None:
                    save(reason)
                    last_save = time.time()
        progress.newline()
        with distribute.lost_workers(job.strategy, where):
            save("end of training")  # nothing new when the last step was just saved
    except BaseException:
        progress.newline()  # the error starts on its own line
        raise
    finally:
        writer.close()
    job.finish(step)
