"""PAGAN test mode: every face in --testdir beside its progression to every cluster whose generator exists.

Writes SAVEDIR/test/NAME_progression.png per input (input, then clusters 1, 2, 3 left to right) and
SAVEDIR/test/overview.png (one such row per input; pages of 20 rows for many inputs). Each generator is rebuilt from
its run's options.json, so no architecture flag needs repeating.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from face_aging import images as imio
from face_aging.caae.infer import load_test_images
from face_aging.data.labels import AGE_CLUSTER_NAMES, NUM_AGE_CLUSTERS
from face_aging.errors import FaceAgingError
from face_aging.pagan.model import PAGANConfig, build_generator
from face_aging.pagan.train import cluster_run

ROWS_PER_PAGE = 20


class PAGANTestError(FaceAgingError, RuntimeError):
    """Test mode cannot run; the message names the folder and what to do."""


def config_from_run(run):
    recorded = run.read_options()
    fields = {name: recorded[name] for name in PAGANConfig.ARCHITECTURE if name in recorded}
    return PAGANConfig(**fields)


def load_generators(savedir):
    """{cluster: (generator, config, checkpoint path)} for every SAVEDIR/clusterK with a checkpoint."""
    found = {}
    for k in range(1, NUM_AGE_CLUSTERS):
        run = cluster_run(savedir, k)
        latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
        if not latest:
            continue
        config = config_from_run(run)
        generator = build_generator(config)
        try:
            tf.train.Checkpoint(generator=generator).restore(latest).expect_partial().assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise PAGANTestError(f"Checkpoint {latest} does not fit the generator described by "
                                 f"{run.path('options.json')}: {str(error).splitlines()[0]}") from None
        found[k] = (generator, config, latest)
    if not found:
        raise PAGANTestError(f"No PAGAN generator under {savedir}/cluster{{1,2,3}}/checkpoint: train one first "
                             f"(python main.py --model pagan --is_train --target_cluster 1 --savedir {savedir})")
    return found


def run_test(testdir, savedir):
    """Age every face in `testdir` with every trained generator; returns the paths written."""
    generators = load_generators(savedir)
    size = max(config.image_size for _, config, _ in generators.values())
    for k, (_, config, path) in sorted(generators.items()):
        print(f"\tCluster {k} ({AGE_CLUSTER_NAMES[k]}): {path} ({config.image_size}px)")
    missing = [k for k in range(1, NUM_AGE_CLUSTERS) if k not in generators]
    if missing:
        logging.warning("No generator for cluster(s) %s under %s; their columns are left out",
                        ", ".join(map(str, missing)), savedir)
    faces, paths = load_test_images(testdir, size)
    columns = [faces]
    for k, (generator, config, _) in sorted(generators.items()):
        inputs = tf.image.resize(faces, [config.image_size] * 2, antialias=True) if config.image_size != size else faces
        out = np.concatenate([generator(inputs[i:i + 16], training=False).numpy()
                              for i in range(0, len(faces), 16)])
        if config.image_size != size:
            out = tf.image.resize(out, [size, size]).numpy()
        columns.append(out)
    rows = np.stack(columns, axis=1)            # [N, 1 + clusters, S, S, 3]
    test_dir = os.path.join(savedir, "test")
    written = []
    for path, row in zip(paths, rows):
        stem = os.path.basename(path).split(".")[0]
        out = os.path.join(test_dir, f"{stem}_progression.png")
        imio.save_grid(row, out, rows=1)
        written.append(out)
    for page, start in enumerate(range(0, len(rows), ROWS_PER_PAGE)):
        chunk = rows[start:start + ROWS_PER_PAGE]
        out = os.path.join(test_dir, "overview.png" if page == 0 else f"overview_p{page + 1:02d}.png")
        imio.save_grid(chunk.reshape((-1,) + chunk.shape[2:]), out, rows=len(chunk))
        written.append(out)
    clusters = ", ".join(AGE_CLUSTER_NAMES[k] for k in sorted(generators))
    print(f"\tDone! {len(faces)} face(s) aged to {clusters}; results in {test_dir}/ (NAME_progression.png, "
          f"overview.png: input, then one column per cluster)")
    return written
