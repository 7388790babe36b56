"""PAGAN test mode: every face in --testdir beside its progression to every cluster whose generator exists.

Inputs as in CAAE's test mode (face_aging/inference/testmode.py): face crops are used as they are, and with --align
auto|on every face in an ordinary photo is detected and aligned to PAGAN's eye-aligned crop (224x224 at the paper's
size); photos without a face are listed and skipped.

Writes to SAVEDIR/test/ (NAME = the file's stem, plus _faceK when a photo holds several faces); every per-face output
is at the face's own resolution up to --output_size (face_aging/inference/fullres.py):
- faces.json: each face's gender and age now, and where they came from (the name, a flag or the bundled estimator).
- NAME_progression.png per face (input, then clusters 1, 2, 3 left to right) and overview.png (one such row per face
  at the generators' size; pages of 20 rows for many faces); aligned/NAME.png, the crop the generators saw.
- --target_age N: NAME_age{N}.png, the face at N years: from its own age, the generators' changes blended between
  the clusters' ages (CLUSTER_YEARS); at or below its own age, the input itself (PAGAN only ages).
- --ages 37,45,60: NAME_ages.png, the input then the face at each age.
- --gif: NAME.gif, the face from its own age to the oldest trained cluster's age (60 for 51+), every 3 years (120 ms
  a frame, looping).
- --paste_back (with --target_age or --ages): PHOTO_age{N}_photo.jpg/.png, the photo with its faces aged.
Each generator is rebuilt from its run's options.json, so no architecture flag needs repeating. An age whose cluster
has no trained generator is an error naming the run to train.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from face_aging import images as imio
from face_aging.data.labels import AGE_CLUSTER_NAMES, NUM_AGE_CLUSTERS, age_to_cluster
from face_aging.inference.fullres import Lift
from face_aging.inference.faceinfo import describe_faces, say, write_faces_json
from face_aging.inference.testmode import (GIF_YEAR_MS, TestModeError, collect_test_faces, paste_back_photos, requested_ages,
                                           write_face_outputs)
from face_aging.pagan import bundled
from face_aging.pagan.config import PAGANConfig
from face_aging.pagan.model import build_generator
from face_aging.rundir import RunDir, cluster_run

ROWS_PER_PAGE = 20


def config_from_run(run):
    recorded = run.read_options()
    fields = {name: recorded[name] for name in PAGANConfig.ARCHITECTURE if name in recorded}
    return PAGANConfig(**fields)


def _restore(config, path, options_path):
    generator = build_generator(config)
    try:
        tf.train.Checkpoint(generator=generator).restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise TestModeError(f"Checkpoint {path} does not fit the generator described by {options_path}: "
                             f"{str(error).splitlines()[0]}") from None
    return generator


def load_generators(savedir, bundled_dir=bundled.DIRECTORY):
    """{cluster: (generator, config, where it came from)} for every SAVEDIR/clusterK with a checkpoint; when SAVEDIR
    has none, the generators bundled with the package (face_aging/pagan/bundled.py)."""
    found = {}
    for k in range(1, NUM_AGE_CLUSTERS):
        run = cluster_run(savedir, k)
        latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
        if latest:
            found[k] = (_restore(config_from_run(run), latest, run.path("options.json")), config_from_run(run), latest)
    if found:
        return found
    for k in bundled.available(bundled_dir):
        run = RunDir(bundled.cluster_dir(k, bundled_dir))
        config = config_from_run(run)
        found[k] = (_restore(config, bundled.prefix(k, bundled_dir), run.path("options.json")), config,
                    bundled.describe(k) if bundled_dir == bundled.DIRECTORY else bundled.prefix(k, bundled_dir))
    if not found:
        raise TestModeError(f"No PAGAN generator under {savedir}/cluster{{1,2,3}}/checkpoint and none bundled: train "
                             f"one first (python main.py --model pagan --is_train --target_cluster 1 --savedir "
                             f"{savedir})")
    return found


def face_template(generators):
    """The crop photos are aligned to for these generators: the one their runs recorded (the largest's)."""
    return max(generators.values(), key=lambda g: g[1].image_size)[1].template


def check_clusters(ages, generators, savedir):
    """Every age's cluster must be the input's (0) or have a generator; TestModeError naming the run otherwise."""
    for age in ages:
        k = int(age_to_cluster(age))
        if k and k not in generators:
            raise TestModeError(f"Age {age} is in cluster {k} ({AGE_CLUSTER_NAMES[k]}), which has no generator: "
                                 f"{cluster_run(savedir, k).checkpoint} holds no checkpoint. Train it (python main.py "
                                 f"--model pagan --is_train --target_cluster {k} --savedir {savedir}) or ask for "
                                 f"ages of the trained cluster(s) "
                                 f"{', '.join(AGE_CLUSTER_NAMES[c] for c in sorted(generators))}.")


def cluster_outputs(generators, faces, size):
    """{0: the faces, k: the faces through cluster k's generator} for every trained cluster, [N, size, size, 3] in
    [-1, 1] each (a generator trained at another size gets the faces resized to its own and back)."""
    by_cluster = {0: faces}
    for k, (generator, config, _) in sorted(generators.items()):
        inputs = tf.image.resize(faces, [config.image_size] * 2, antialias=True) if config.image_size != size else faces
        out = np.concatenate([generator(inputs[i:i + 16], training=False).numpy()
                              for i in range(0, len(faces), 16)])
        if config.image_size != size:
            out = tf.image.resize(out, [size, size]).numpy()
        by_cluster[k] = out
    return by_cluster


# The age each cluster's generator ages a face to, for ages in years: the middle of 31-40 and 41-50, and 60 for 51+
# (what the age judge gives UTKFace's real 51+ faces on average, docs/pagan_recipe.md). An age between two of these
# blends the two generators' changes; an age past the last gets the last cluster's face.
CLUSTER_YEARS = {1: 35.5, 2: 45.5, 3: 60.0}
# Where a face of unknown age (no name, no flag, no estimator) starts: the middle of the generators' input cluster.
UNKNOWN_INPUT_AGE = 25.0


def _curve(own, trained):
    """The knots (ages, cluster indices, 0 = no change) of one face's aging curve: its own age (or, for a face older
    than the first trained cluster, the middle of the input cluster 21-30) with no change, then each trained
    cluster's age."""
    centres = [CLUSTER_YEARS[k] for k in trained]
    start = own if own < centres[0] else 25.5
    return np.array([start] + centres), [0] + list(trained)


def change_weights(own, age, trained):
    """{cluster: weight} of the generators' changes that make a face of `own` years look `age` years: linear
    between the knots of _curve, minus the curve at the face's own age (no change at or below it: PAGAN only ages)."""
    xs, ks = _curve(own, trained)
    eye = np.eye(len(xs))

    def at(years):      # the knots' weights at `years` (np.interp clamps past either end)
        return np.array([np.interp(years, xs, eye[j]) for j in range(len(xs))])

    weights = at(max(age, own)) - at(own)
    return {k: float(w) for k, w in zip(ks, weights) if k and abs(w) > 1e-9}


def face_at_years(by_cluster, i, own, age):
    """Face i of `by_cluster` (cluster_outputs) at `age` years, from its own age `own` (NaN: UNKNOWN_INPUT_AGE)."""
    own = UNKNOWN_INPUT_AGE if not np.isfinite(own) else float(own)
    trained = sorted(k for k in by_cluster if k)
    face = by_cluster[0][i]
    change = sum(w * (by_cluster[k][i] - face) for k, w in change_weights(own, age, trained).items())
    return np.clip(face + change, -1.0, 1.0)


def gif_years(own, trained=(1, 2, 3)):
    """A face's GIF: from its own age (at least 20) to the oldest trained cluster's age, every 3 years."""
    own = UNKNOWN_INPUT_AGE if not np.isfinite(own) else float(own)
    first, last = max(20, int(np.ceil(own))), int(CLUSTER_YEARS[max(trained)])
    return list(range(first, last + 1, 3)) if first < last else [first]


def run_test(testdir, savedir, target_age=None, ages=(), gif=False, paste_back=False, align="auto", output_size=512,
             gender="auto", input_age="auto"):
    """Age every face in `testdir` with every trained generator; returns the paths written. `gender` and
    `input_age` as --gender and --input_age (test/faces.json; the age is where each face's aging starts)."""
    generators = load_generators(savedir)
    ages = list(ages or ())
    check_clusters(requested_ages(target_age, ages), generators, savedir)
    size = max(config.image_size for _, config, _ in generators.values())
    for k, (_, config, path) in sorted(generators.items()):
        print(f"\tCluster {k} ({AGE_CLUSTER_NAMES[k]}): {path} ({config.image_size}px)")
    missing = [k for k in range(1, NUM_AGE_CLUSTERS) if k not in generators]
    if missing:
        logging.warning("No generator for cluster(s) %s under %s; their columns are left out",
                        ", ".join(map(str, missing)), savedir)
    test_dir = os.path.join(savedir, "test")
    found = collect_test_faces(testdir, face_template(generators), size, align, test_dir, output_size=output_size)
    faces, names, crops = found.images, found.names, found.crops
    from face_aging.caae.infer import load_estimator
    infos = describe_faces(crops, faces, gender, input_age, load_estimator=load_estimator)
    say(infos, names)
    own = np.array([info.age for info in infos])
    by_cluster = cluster_outputs(generators, faces, size)
    rows = np.stack([by_cluster[k] for k in sorted(by_cluster)], axis=1)     # [N, 1 + clusters, S, S, 3]
    fulls = [crop.full for crop in crops]
    lift = Lift(fulls, faces)
    written = [write_faces_json(infos, test_dir)]
    for i, name in enumerate(names):
        out = os.path.join(test_dir, f"{name}_progression.png")
        imio.save_grid(lift.face(i, rows[i]), out, rows=1)          # at the face's own resolution
        written.append(out)
    for page, start in enumerate(range(0, len(rows), ROWS_PER_PAGE)):
        chunk = rows[start:start + ROWS_PER_PAGE]
        out = os.path.join(test_dir, "overview.png" if page == 0 else f"overview_p{page + 1:02d}.png")
        imio.save_grid(chunk.reshape((-1,) + chunk.shape[2:]), out, rows=len(chunk))
        written.append(out)

    def at(age, i):
        return face_at_years(by_cluster, i, own[i], age)

    def frames(i):
        return np.stack([at(age, i) for age in gif_years(own[i], sorted(generators))])

    pasted = requested_ages(target_age, ages) if paste_back else []
    paths, aged = write_face_outputs(test_dir, names, faces, at, frames, target_age, ages, gif, pasted, fulls,
                                     gif_ms=GIF_YEAR_MS)
    written += paths
    if pasted:
        written += paste_back_photos(crops, aged, pasted, test_dir, size)
    clusters = ", ".join(AGE_CLUSTER_NAMES[k] for k in sorted(generators))
    print(f"\tDone! {len(faces)} face(s) aged to {clusters}; results in {test_dir}/ (NAME_progression.png, "
          f"overview.png: input, then one column per cluster)")
    return written
