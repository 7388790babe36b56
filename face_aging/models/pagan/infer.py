"""PAGAN's trained generators and its aging in years: the generators of a run directory (SAVEDIR/clusterK, each
rebuilt from its run's options.json, so no architecture flag needs repeating) or the bundled ones, and the weights of
their changes that make a face of one age look another (pagan/ager.py ages faces with them). An age whose cluster has
no trained generator is an error naming the run to train.
"""

import os

import numpy as np
import tensorflow as tf

from face_aging.data.labels import AGE_CLUSTER_NAMES, NUM_AGE_CLUSTERS, age_to_cluster
from face_aging.models.ager import AgerError
from face_aging.models.pagan import bundled
from face_aging.models.pagan.config import config_from_run
from face_aging.models.pagan.model import build_generator
from face_aging.training.rundir import RunDir, cluster_run


def _restore(config, path, options_path):
    generator = build_generator(config)
    try:
        tf.train.Checkpoint(generator=generator).restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise AgerError(f"Checkpoint {path} does not fit the generator described by {options_path}: "
                         f"{str(error).splitlines()[0]}") from None
    return generator


def load_generators(savedir, bundled_dir=bundled.DIRECTORY):
    """{cluster: (generator, config, where it came from)} for every SAVEDIR/clusterK with a checkpoint; when SAVEDIR
    has none, the generators bundled with the package (face_aging/models/pagan/bundled.py)."""
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
        raise AgerError(f"No PAGAN generator under {savedir}/cluster{{1,2,3}}/checkpoint and none bundled: train "
                         f"one first (python main.py --model pagan --is_train --target_cluster 1 --savedir "
                         f"{savedir})")
    return found


def face_template(generators):
    """The crop photos are aligned to for these generators: the one their runs recorded (the largest's)."""
    return max(generators.values(), key=lambda g: g[1].image_size)[1].template


def check_clusters(ages, generators, savedir):
    """Every age's cluster must be the input's (0) or have a generator; AgerError naming the run otherwise."""
    for age in ages:
        k = int(age_to_cluster(age))
        if k and k not in generators:
            raise AgerError(f"Age {age} is in cluster {k} ({AGE_CLUSTER_NAMES[k]}), which has no generator: "
                            f"{cluster_run(savedir, k).checkpoint} holds no checkpoint. Train it (python main.py "
                            f"--model pagan --is_train --target_cluster {k} --savedir {savedir}) or ask for "
                            f"ages of the trained cluster(s) "
                            f"{', '.join(AGE_CLUSTER_NAMES[c] for c in sorted(generators))}.")


# The years each cluster's generator adds to a face, on average: what the age judge read on the 121 young held-out
# val faces (estimated 20.0 years) through the bundled generators, 29.2 / 40.4 / 53.8 (docs/photos.md; 41-50's and
# 51+'s are the passes with the age estimator and L_fine, the 51+ change split, docs/pagan_recipe.md). A face of
# `own` years asked to look `age` blends the generators whose rises enclose age - own; past the last one, that
# generator's change is scaled up along the same line, at most MAX_WEIGHT times (1.5 painted purple-grey patches on
# the cheeks of the astronaut at 80).
AGING_RISE = {1: 9.2, 2: 20.4, 3: 33.8}
MAX_WEIGHT = 1.25
# Where a face of unknown age (no name, no flag, no estimator) starts: the middle of the generators' input cluster.
UNKNOWN_INPUT_AGE = 25.0
# The youngest face PAGAN ages well: it saw few children in training, and gives a baby adult folds on a grey smear and
# a ghost moustache (docs/photos.md). --model combined gives it no younger face as it is; --model pagan says so.
MIN_INPUT_AGE = 13


def _curve(own, trained):
    """The knots (ages, cluster indices, 0 = no change) of one face's aging curve: its own age with no change, then
    its own age plus each trained cluster's rise."""
    return np.array([own] + [own + AGING_RISE[k] for k in trained]), [0] + list(trained)


def change_weights(own, age, trained):
    """{cluster: weight} of the generators' changes that make a face of `own` years look `age` years: linear
    between the knots of _curve; past the last, its generator's change scaled on (at most MAX_WEIGHT); nothing at
    or below the face's own age (PAGAN only ages)."""
    xs, ks = _curve(own, trained)
    if age <= own:
        return {}
    if age >= xs[-1]:
        return {ks[-1]: float(min((age - own) / (xs[-1] - own), MAX_WEIGHT))}
    eye = np.eye(len(xs))
    weights = np.array([np.interp(age, xs, eye[j]) for j in range(len(xs))])
    return {k: float(w) for k, w in zip(ks, weights) if k and abs(w) > 1e-9}


def face_at_years(by_cluster, i, own, age, trained=None):
    """Face i of `by_cluster` ({0: the faces, k: the faces through cluster k's generator}) at `age` years, from its
    own age `own` (NaN: UNKNOWN_INPUT_AGE); `trained`: the clusters with a generator (default: by_cluster's), of
    which by_cluster needs only those whose change the age takes."""
    own = UNKNOWN_INPUT_AGE if not np.isfinite(own) else float(own)
    trained = sorted(k for k in by_cluster if k) if trained is None else trained
    face = by_cluster[0][i]
    change = sum(w * (by_cluster[k][i] - face) for k, w in change_weights(own, age, trained).items())
    return np.clip(face + change, -1.0, 1.0)


def gif_years(own, trained=(1, 2, 3)):
    """A face's GIF: from its own age to the oldest trained cluster's rise above it, every 3 years."""
    own = UNKNOWN_INPUT_AGE if not np.isfinite(own) else float(own)
    first, last = int(np.ceil(own)), int(own + AGING_RISE[max(trained)])
    return list(range(first, last + 1, 3)) if first < last else [first]
