"""--strategy: tf.distribute for data-parallel training across local devices or machines.

default       one device (the first GPU if there is one, else the CPU)
mirrored      MirroredStrategy: every local GPU (or CPU if none) holds a replica; gradients are all-reduced
multiworker   MultiWorkerMirroredStrategy across the machines named in TF_CONFIG (each runs the same command)

The global batch (--batch_size) is split evenly across replicas; each replica's losses are means over its share,
divided by the number of replicas, so the all-reduced (summed) gradients equal those of one device on the whole
batch.

Workers of a multi-worker run: worker 0 (the chief) writes the run directory; the others write theirs under
SAVEDIR/workers/workerN but resume from the chief's checkpoint where they can see it (one machine, or a shared file
system), and all must resume at the same step. A worker that dies makes the others' next collective op fail (at
once when its connections close, within --worker_timeout seconds when it hangs): they stop with WorkerLostError
instead of a traceback or a wait without end, and the same command on every worker resumes the run.
"""

import contextlib
import dataclasses
import json
import logging
import os

import tensorflow as tf

from face_aging.errors import FaceAgingError

STRATEGIES = ("default", "mirrored", "multiworker")
WORKER_TIMEOUT = 300.0  # seconds a collective op waits for the other workers (--worker_timeout)
# What a collective op raises when a peer is gone: its connection closed (Unavailable), the timeout (DeadlineExceeded),
# or TensorFlow aborting every collective after one failed (Cancelled, Aborted).
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                tf.errors.AbortedError)


class StrategyError(FaceAgingError, ValueError):
    """The strategy cannot be set up as asked (TF_CONFIG, batch size)."""


class WorkerLostError(FaceAgingError, RuntimeError):
    """Another worker of a multi-worker run stopped answering; this one stopped too."""


def make_strategy(name, worker_timeout=WORKER_TIMEOUT):
    """The tf.distribute strategy for --strategy `name`. Create it before any other TensorFlow work: collective
    ops (multiworker) must be configured at program start. `worker_timeout`: seconds a multi-worker collective op
    waits for the others before it fails (without one, a hung worker makes the others wait for ever)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG")
        if config:
            try:
                cluster = json.loads(config)["cluster"]["worker"]
            except (ValueError, KeyError, TypeError) as error:
                raise StrategyError(f"TF_CONFIG is not a valid tf.distribute cluster description ({error}); e.g. "
                                    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                                    '"task": {"type": "worker", "index": 0}}') from None
            logging.info("Multi-worker training across %d machine(s): %s", len(cluster), ", ".join(cluster))
        else:
            logging.warning("--strategy multiworker without TF_CONFIG: one worker, this machine's devices only")
        if not worker_timeout or worker_timeout <= 0:
            raise StrategyError(f"--worker_timeout={worker_timeout}: must be a number of seconds above 0")
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout))
    raise StrategyError(f"--strategy={name}: allowed values are {', '.join(STRATEGIES)}")


def worker_index():
    """This machine's index among the workers in TF_CONFIG (0 without one): worker 0 is the chief."""
    try:
        return int(json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def num_workers(strategy):
    """How many workers (machines) train together: the workers in TF_CONFIG for a multi-worker strategy, else 1."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    try:
        return len(json.loads(os.environ.get("TF_CONFIG", "{}"))["cluster"]["worker"])
    except (ValueError, KeyError, TypeError):
        return 1


def restore_dir(strategy, own, chief):
    """The checkpoint folder this worker resumes from: the chief's (`chief`) when this is another worker and the
    chief's state file is visible here, so that every worker restores the same checkpoint; else its own (`own`)."""
    if num_workers(strategy) > 1 and worker_index() > 0 and os.path.isfile(os.path.join(chief, "checkpoint")):
        return chief
    return own


def check_same_step(strategy, step, unit="step"):
    """StrategyError unless every worker resumed at `step` (workers that see different checkpoints, e.g. on
    machines without a shared file system, must not train on from different weights)."""
    if num_workers(strategy) <= 1:
        return
    # Only SUM and MEAN reduce across workers: the steps are all equal when the sum of their squares says so (every
    # worker reaches the same verdict, so none goes on alone). Steps below 2**26: float64 sums of squares are exact.
    value = tf.constant([1.0, float(step), float(step) ** 2], tf.float64)
    n, total, squares = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(value)),
                                        axis=None).numpy()   # over every replica of every worker
    if n * squares != total * total:
        raise StrategyError(
            f"The workers resumed at different {unit}s (this one, worker {worker_index()}, at {step}; {total / n:g} "
            f"on average): each restored the checkpoint it sees in its own --savedir. Copy the chief's (worker 0's) "
            f"SAVEDIR/checkpoint into every worker's SAVEDIR/workers/workerN/checkpoint, or put --savedir on a file "
            f"system all workers share, and start them again.")


def _peer_reason(error):
    """The line of a collective op's error that says what happened ("Collective ops is aborted by: Socket closed"),
    without the graph-execution preamble and the traceback of where the op was defined."""
    noise = ("Graph execution error", "Detected at node", "File ", "[[", "The error could be", "Additional GRPC", ":")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith(noise)), lines[0] if lines else "no message")


@contextlib.contextmanager
def lost_workers(strategy, where):
    """Inside the block, the error of a collective op whose peer is gone becomes WorkerLostError; `where()` says
    (as text) where the run stood and which checkpoint the restart resumes from."""
    try:
        yield
    except _PEER_ERRORS as error:
        if num_workers(strategy) <= 1:
            raise
        what = f"{type(error).__name__}: {_peer_reason(error)}"
        raise WorkerLostError(
            f"Lost another worker of this {num_workers(strategy)}-worker run ({what}); worker {worker_index()} stopped "
            f"{where()}. Start every worker again with the same command: the run resumes from the chief's last "
            f"checkpoint.") from None


def replicas(strategy):
    return strategy.num_replicas_in_sync if strategy is not None else 1


def check_batch(strategy, batch_size):
    n = replicas(strategy)
    if batch_size % n:
        raise StrategyError(f"--batch_size={batch_size} does not split evenly across {n} replicas; use a multiple "
                            f"of {n}")


def worker_options(strategy, options):
    """Training options (with `batch_size` and `savedir`) for this worker: the batch checked against the replicas;
    a multi-worker run's non-chief workers save under SAVEDIR/workers/workerN. Every worker must save (saving reads
    the replicated variables collectively); only worker 0's run directory is the run."""
    check_batch(strategy, options.batch_size)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and worker_index() > 0:
        return dataclasses.replace(options, savedir=os.path.join(options.savedir, "workers",
                                                                 f"worker{worker_index()}"))
    return options


def replica_share(*tensors):
    """Inside a replica: this replica's consecutive slice of each global-batch tensor (the whole tensor on one)."""
    context = tf.distribute.get_replica_context()
    n = context.num_replicas_in_sync
    if n == 1:
        return tensors
    per = tf.shape(tensors[0])[0] // n
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * per
    return tuple(t[start:start + per] for t in tensors)
