"""PAGAN's input: endless shuffled streams of young faces (cluster 0) and of target-cluster faces, from a prepared
split (see face_aging.data.prepare).

Each stream's order is a pure function of (seed, position): stream position p = step * batch + j is face
permutation(seed, p // n)[p % n]. A run restarted at step s therefore continues with exactly the faces it would have
seen, without replaying anything.
"""

import os

import numpy as np
import tensorflow as tf

from face_aging.data.decode_check import CACHE_FILE, undecodable
from face_aging.data.labels import AGE_CLUSTER_NAMES
from face_aging.data.pipeline import decode_and_resize, printable, read_face, warn_skipped
from face_aging.errors import FaceAgingError
from face_aging.training.rundir import SKIPPED_FILE, write_text_atomic


class PAGANDataError(FaceAgingError, ValueError):
    """The prepared data cannot feed PAGAN; the message says which split/cluster and what to do."""


def stream_indices(n, batch_size, seed, start_step, end_step):
    """Face indices [end_step - start_step, batch_size] of a stream over n faces, from step start_step on."""
    positions = np.arange(start_step * batch_size, end_step * batch_size, dtype=np.int64)
    epochs = positions // n
    out = np.empty_like(positions)
    for epoch in np.unique(epochs):
        mask = epochs == epoch
        out[mask] = np.random.RandomState([seed, int(epoch)]).permutation(n)[positions[mask] % n]
    return out.reshape(-1, batch_size)


def load_images(paths, image_size):
    """Decode a list of image files into [N, S, S, 3] in [-1, 1] (for fixed visualisation sets and evaluation).

    The files were checked when the data was prepared; one that has since gone or changed is a PAGANDataError
    naming it (the result must stay aligned with `paths`, so it is not skipped)."""
    images = []
    for path in paths:
        image, reason = read_face(path, image_size)
        if image is not None:
            images.append(image)
            continue
        raise PAGANDataError(f"{printable(path)}: {reason}. It is listed in the prepared data; it was usable when "
                             f"the data was prepared, so it has changed since: restore it, or prepare the data again "
                             f"(python main.py --model prepare ...), which leaves out unusable files.")
    return np.stack(images)


def drop_undecodable(splits, image_size, run):
    """`splits` ({name: prepared Manifest}) without the faces whose files no longer decode (changed since they were
    prepared, which decoded every file): each is named in one warning and in RUN/skipped_files.txt, and the run goes
    on without it. Files that decoded are cached in the run directory, so a resumed run checks only what changed."""
    paths = sorted({p for manifest in splits.values() for p in manifest.paths})
    failed = undecodable(paths, image_size, run.path(CACHE_FILE))
    if not failed:
        return splits
    skipped = sorted(failed.items())
    warn_skipped(skipped, "the prepared data", full_list=run.path(SKIPPED_FILE))
    write_text_atomic(run.path(SKIPPED_FILE), "".join(f"{printable(p)}\t{why}\n" for p, why in skipped))
    return {name: manifest.select([p not in failed for p in manifest.paths]) for name, manifest in splits.items()}


def cluster_paths(manifest, cluster, split_name):
    paths = [p for p, c in zip(manifest.paths, manifest.clusters) if c == cluster]
    if not paths:
        raise PAGANDataError(f"The {split_name} split has no faces of cluster {cluster} ({AGE_CLUSTER_NAMES[cluster]}); "
                             f"PAGAN needs young faces (cluster 0) and faces of the target cluster. Prepare data "
                             f"that has them (python main.py --model prepare --dataset ...).")
    return paths


def face_stream(paths, image_size, batch_size, seed, start_step, end_step):
    """tf.data batches [batch, S, S, 3] of the faces in `paths`, steps start_step .. end_step - 1."""
    indices = stream_indices(len(paths), batch_size, seed, start_step, end_step).reshape(-1)
    table = tf.constant([os.fsencode(p) for p in paths])  # bytes: any file name becomes a tf.string
    return (tf.data.Dataset.from_tensor_slices(indices)
            .map(lambda i: decode_and_resize(tf.io.read_file(tf.gather(table, i)), image_size),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True))


def _ages_text(ages):
    return f"aged {ages[0]}-{ages[1]}" if ages else "of any age"


def pair_paths(manifest, target_cluster, split_name, source_ages=(), target_ages=()):
    """(G's input faces, D's real faces): the young faces (cluster 0) and the target cluster's; for target cluster 0
    (a generator that makes faces younger), the faces of 31 and over and the young ones. `source_ages` and
    `target_ages` ((LO, HI) years, inclusive; () = all) narrow each; an empty side is a PAGANDataError."""
    ages = np.asarray(manifest.ages)
    clusters = np.asarray(manifest.clusters)
    source = clusters != 0 if target_cluster == 0 else clusters == 0
    sides = []
    for name, mask, bounds in (("input", source, source_ages), ("target", clusters == target_cluster, target_ages)):
        if bounds:
            mask = mask & (ages >= bounds[0]) & (ages <= bounds[1])
        paths = [p for p, keep in zip(manifest.paths, mask) if keep]
        if not paths:
            what = ("faces of 31 and over" if target_cluster == 0 else "young faces (cluster 0)") \
                if name == "input" else f"faces of cluster {target_cluster} ({AGE_CLUSTER_NAMES[target_cluster]})"
            raise PAGANDataError(f"The {split_name} split has no {name} faces for this generator: {what} "
                                 f"{_ages_text(bounds)}. Prepare data that has them (python main.py --model prepare "
                                 f"--dataset ...), or widen --{'source' if name == 'input' else 'target'}_ages.")
        sides.append(paths)
    return tuple(sides)


def training_pairs(manifest, target_cluster, image_size, batch_size, seed, start_step, end_step, source_ages=(),
                   target_ages=()):
    """Batches of (input x, target-cluster y) for steps start_step .. end_step - 1, prefetched (pair_paths)."""
    inputs, targets = pair_paths(manifest, target_cluster, "train", source_ages, target_ages)
    young = face_stream(inputs, image_size, batch_size, seed, start_step, end_step)
    # The target stream's own seed (the input stream's, for target cluster 0, moved off by 500).
    target_seed = seed + (1000 * target_cluster if target_cluster else 500)
    old = face_stream(targets, image_size, batch_size, target_seed, start_step, end_step)
    return tf.data.Dataset.zip((young, old)).prefetch(tf.data.AUTOTUNE)
