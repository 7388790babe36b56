"""PAGAN as an Ager (face_aging/models/ager.py): the trained generators of a run directory (SAVEDIR/clusterK) or the
ones bundled with the package, one per target age cluster. An age in years blends the generators' changes between
the clusters' ages from the face's own age (pagan.infer.change_weights); PAGAN only ages, so at or below a face's own
age the face is its input."""

import hashlib
import logging
import os

import numpy as np
import tensorflow as tf

from face_aging import colour, images as imio
from face_aging.models.caae.model import checkpoint_value
from face_aging.data import labels as L
from face_aging.models.ager import Ager, EvalOutputs, eval_targets
from face_aging.models.pagan import infer
from face_aging.models.tracing import TracedAfter

ROWS_PER_PAGE = 20           # overview.png: faces (rows) per sheet
BATCH = 16                   # faces a generator takes at once
# The page's first ages, in years: the three clusters'.
DEFAULT_AGES = (35, 45, 60)
# PAGAN's --eval beside the bundled CAAE: the CAAE age group holding each cluster's span (31-40, 41-50); for 51+,
# 61-70, which holds the median age (61) of UTKFace's 51+ faces.
CAAE_GROUP_OF_CLUSTER = {1: 5, 2: 6, 3: 8}


class PAGANAger(Ager):
    name = "PAGAN"
    key = "pagan"
    sheets = "NAME_progression.png, overview.png: the input, then one column per cluster"
    target_word = "cluster"

    def __init__(self, generators, savedir):
        self.generators, self.savedir = generators, savedir
        self.template = infer.face_template(generators)
        self.size = max(config.image_size for _, config, _ in generators.values())
        self.trained = sorted(generators)
        self.default_ages = tuple(a for a in DEFAULT_AGES if int(L.age_to_cluster(a)) in [0] + self.trained)
        # Eager for a generator's first calls, then one trace for any batch size (test mode calls each once a run).
        self.run_generator = {k: TracedAfter(lambda x, g=generator: g(x, training=False), input_signature=[
                                  tf.TensorSpec([None, config.image_size, config.image_size, 3], tf.float32)])
                              for k, (generator, config, _) in generators.items()}
        self.comparison = ("caae", {t: CAAE_GROUP_OF_CLUSTER[k] for t, k in enumerate(self.trained)})
        self._last = (None, {})

    @classmethod
    def load(cls, savedir, **unused):
        """The generators under SAVEDIR/clusterK, else the bundled ones; each rebuilt from its run's options.json."""
        generators = infer.load_generators(savedir)
        missing = [k for k in range(1, L.NUM_AGE_CLUSTERS) if k not in generators]
        if missing:
            logging.warning("No generator for cluster(s) %s under %s; their columns are left out",
                            ", ".join(map(str, missing)), savedir)
        return cls(generators, savedir)

    def describe(self, input_age="auto"):
        parts = []
        for k, (_, config, path) in sorted(self.generators.items()):
            step = checkpoint_value(path, "step") if os.path.exists(str(path) + ".index") else None
            parts.append(f"cluster {k} ({L.AGE_CLUSTER_NAMES[k]}): {path} ({config.image_size}px"
                         + (f", step {step})" if step is not None else ")"))
        return ["PAGAN: " + "; ".join(parts)]

    def check_ages(self, ages):
        infer.check_clusters(ages, self.generators, self.savedir)

    def cluster_outputs(self, faces, clusters=None):
        """{k: faces through cluster k's generator} for `clusters` (default: every trained one), [N, S, S, 3] in
        [-1, 1] at the ager's size (a generator trained at another size gets the faces resized and back)."""
        # Test mode asks twice for the same faces (its sheets, then the ages): the last batch's outputs are kept.
        key = (faces.shape, hashlib.sha1(np.ascontiguousarray(faces).tobytes()).digest())
        if self._last[0] != key:
            self._last = (key, {})
        out = self._last[1]
        for k in self.trained if clusters is None else clusters:
            if k in out:
                continue
            _, config, _ = self.generators[k]
            inputs = faces if config.image_size == self.size else tf.image.resize(
                faces, [config.image_size] * 2, antialias=True).numpy()
            aged = np.concatenate([self.run_generator[k](tf.constant(inputs[i:i + BATCH], tf.float32)).numpy()
                                   for i in range(0, len(faces), BATCH)])
            if config.image_size != self.size:
                aged = tf.image.resize(aged, [self.size] * 2).numpy()
            # A black-and-white face stays so (face_aging/colour.py).
            out[k] = np.clip(faces + colour.in_the_faces_colours(faces, aged - faces).numpy(), -1.0, 1.0)
        return {k: out[k] for k in (self.trained if clusters is None else clusters)}

    def age(self, faces, genders, own_ages, ages):
        """Only the generators the ages need are run: a face aged to 70 needs the 51+ one alone."""
        if not len(ages) or not len(faces):
            return np.empty((len(ages),) + tuple(faces.shape), np.float32)
        return np.stack(self.age_each(faces, genders, own_ages, [list(ages)] * len(faces)), axis=1)

    def age_each(self, faces, genders, own_ages, ages_per_face):
        """The generators once for the whole batch, then each face blended at its own ages only."""
        own = [infer.UNKNOWN_INPUT_AGE if not np.isfinite(a) else float(a) for a in own_ages]
        needed = sorted({k for i, ages in enumerate(ages_per_face) for age in ages
                         for k in infer.change_weights(own[i], age, self.trained)})
        by_cluster = {0: faces, **self.cluster_outputs(faces, needed)}
        return [np.stack([infer.face_at_years(by_cluster, i, own_ages[i], age, self.trained) for age in ages]
                         ).astype(np.float32).reshape((len(ages),) + tuple(faces.shape[1:]))
                for i, ages in enumerate(ages_per_face)]

    def caveats(self, own_ages, ages):
        own = np.asarray(own_ages, np.float64)
        known = np.isfinite(own)
        one = len(own) == 1
        lines = []
        if len(ages) and known.any():
            # PAGAN only ages: at or below a face's own age the output is the input (age_each).
            kept = [i for i in np.flatnonzero(known) if min(ages) <= own[i]]
            if kept:
                what = (f"at {', '.join(str(a) for a in sorted(ages) if a <= own[0])} years, not above the face's "
                        f"age now ({own[0]:.0f}), the face is left as it is" if one else
                        f"{len(kept)} of {len(own)} faces were asked for ages not above their age now "
                        f"(test/faces.json) and are left as they are there")
                lines.append(f"PAGAN only ages: {what}; --model combined also makes faces younger.")
        children = int(np.sum(own[known] < infer.MIN_INPUT_AGE))
        if children:
            who = (f"this face is {own[0]:.0f} years old" if one else
                   f"{children} of {len(own)} faces are under {infer.MIN_INPUT_AGE} years old")
            lines.append(f"{who[0].upper()}{who[1:]}: PAGAN saw few children in training and paints an adult's "
                         f"folds and shading over a child's face; --model combined first makes a child a young adult "
                         f"(docs/photos.md).")
        return lines

    def own_ages(self, faces, genders):
        """PAGAN cannot read an age: a face nothing dates starts in the middle of its input cluster."""
        return np.full(len(faces), infer.UNKNOWN_INPUT_AGE)

    def gif_years(self, own_age):
        return infer.gif_years(own_age, self.trained)

    def overview(self, faces, genders, own_ages, names, lift, out_dir):
        """NAME_progression.png per face (input, then each trained cluster, at the face's own resolution) and
        overview.png (one such row per face at the generators' size; pages of 20 rows)."""
        by_cluster = self.cluster_outputs(faces)
        rows = np.stack([faces] + [by_cluster[k] for k in self.trained], axis=1)     # [N, 1 + clusters, S, S, 3]
        written = []
        for i, name in enumerate(names):
            out = os.path.join(out_dir, f"{name}_progression.png")
            imio.save_grid(lift.face(i, rows[i]), out, rows=1)
            written.append(out)
        for page, start in enumerate(range(0, len(rows), ROWS_PER_PAGE)):
            chunk = rows[start:start + ROWS_PER_PAGE]
            out = os.path.join(out_dir, "overview.png" if page == 0 else f"overview_p{page + 1:02d}.png")
            imio.save_grid(chunk.reshape((-1,) + chunk.shape[2:]), out, rows=len(chunk))
            written.append(out)
        return written

    def eval_targets(self):
        every = eval_targets(L.AGE_CLUSTER_UPPER, L.AGE_CLUSTER_NAMES)
        return [every[k] for k in self.trained]

    def eval_ages(self, real_ages):
        """PAGAN ages young faces (cluster 0, or unlabelled) only; the older faces are the clusters' real faces."""
        return ~(np.asarray(real_ages) > L.AGE_CLUSTER_UPPER[0])

    def eval_outputs(self, faces, real_ages, genders, input_age="auto"):
        """Each face through each trained cluster's generator, as the paper judges them."""
        by_cluster = self.cluster_outputs(faces)
        return EvalOutputs(outputs=[by_cluster[k] for k in self.trained],
                           source=", ".join(str(path) for _, _, path in
                                            (self.generators[k] for k in self.trained)))

    def export(self, folder, path):
        from face_aging.models.pagan.serving import export_parts
        return export_parts(self.generators, folder, path)
