"""--strategy: tf.distribute for data-parallel training across local devices or machines.

default       one device (the first GPU if there is one, else the CPU)
mirrored      MirroredStrategy: every local GPU (or CPU if none) holds a replica; gradients are all-reduced
multiworker   MultiWorkerMirroredStrategy across the machines named in TF_CONFIG (each runs the same command)

The global batch (--batch_size) is split evenly across replicas; each replica's losses are means over its share,
divided by the number of replicas, so the all-reduced (summed) gradients equal those of one device on the whole
batch.
"""

import dataclasses
import json
import logging
import os

import tensorflow as tf

from face_aging.errors import FaceAgingError

STRATEGIES = ("default", "mirrored", "multiworker")


class StrategyError(FaceAgingError, ValueError):
    """The strategy cannot be set up as asked (TF_CONFIG, batch size)."""


def make_strategy(name):
    """The tf.distribute strategy for --strategy `name`. Create it before any other TensorFlow work: collective
    ops (multiworker) must be configured at program start."""
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
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise StrategyError(f"--strategy={name}: allowed values are {', '.join(STRATEGIES)}")


def worker_index():
    """This machine's index among the workers in TF_CONFIG (0 without one): worker 0 is the chief."""
    try:
        return int(json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


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
