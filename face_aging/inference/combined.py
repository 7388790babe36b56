"""Both models as one Ager (`--model combined`, docs/photos.md#5-which-model-for-photos): PAGAN ages a face of 13 or
over above its own age, the CAAE makes it younger or keeps it (at or below its own age) and ages children up to a
young adult of CHAIN_AGE, whom PAGAN ages on. PAGAN's residual generators change the face itself and keep it the same
person, but only age; the CAAE reaches every age from 0 to 80, and with its residual aging and ghost guard makes the
younger faces. On the 373 held-out UTKFace test faces the pair, steered, ages far more faithfully than the CAAE alone:
per-face Spearman median 0.92 against 0.69, 16-20 to 71+ +33.4 years against +8.0, 95.6% verified at dlib < 0.5 one
or two groups from the face's own age, age error to target 10.2 years over 21-70.

Each model runs at its own size; what it changes is carried to the faces' side (face_aging/inference/fullres.py),
which is the larger of the two models' sizes. Both must align faces the same way (UTKFace's chip convention for the
bundled ones).

With the bundled age estimator at hand, each face is steered to look the age asked for (face_aging/inference/
steering.py): made at a grid of ages by the pair, and given the one the estimator reads nearest. (Stronger ways
were tried, and left out: docs/photos.md#age-steering.) A video's frames are not steered (unsteered()).
"""

import copy

import numpy as np
import tensorflow as tf

from face_aging.faces.align import template_for
from face_aging.inference import steering
from face_aging.inference.fullres import carry_change
from face_aging.models.ager import GIF_YEARS, Ager, AgerError, eval_targets
from face_aging.data import labels as L
from face_aging.models.estimator.network import age_reader
from face_aging.models.pagan import infer as pagan_infer


# Children (of 12 and under) are not given to PAGAN as they are (pagan.infer.MIN_INPUT_AGE). The CAAE ages them,
# cleanly but little ...
PAGAN_MIN_AGE = pagan_infer.MIN_INPUT_AGE
# ... so past CHAIN_AGE years a child is first made a young adult of CHAIN_AGE by the CAAE, and PAGAN ages that face on
# as a face of CHAIN_AGE: the guarded CAAE alone left children near 22 years at every older age (held-out test faces:
# age error over 21-70 11.7 -> 10.2 years; docs/photos.md). None: children stay with the CAAE at every age.
CHAIN_AGE = 25.0
# --nosteer (set for the run by face_aging/cli/commands.py): each model's average rise, no estimator read.
STEER = True
# Age steering: the faces steered at once (each is made at steering.GRID's ten ages).
STEER_BATCH = 32
PAGAN_SUBDIR = "pagan"         # PAGAN's default run directory (save/pagan) beside the CAAE's (save)


def _at_size(faces, size):
    if faces.shape[1] == size:
        return faces
    return tf.image.resize(faces, [size, size], antialias=True).numpy()


class CombinedAger(Ager):
    name = "CAAE + PAGAN"
    key = "combined"
    takes_gender = True                  # the CAAE's younger faces take it
    default_ages = (10, 35, 45, 60)

    def __init__(self, caae, pagan, estimator=None):
        if template_for(caae.template) != template_for(pagan.template):
            raise AgerError(f"--model combined needs both models to align faces alike: the CAAE's crops are "
                            f"{caae.template!r}, PAGAN's {pagan.template!r}; train PAGAN with --template utkface")
        self.caae, self.pagan = caae, pagan
        self.size = max(caae.size, pagan.size)
        self.template = caae.template
        # Steering needs the age estimator; without it the pair ages as it is.
        self.estimator, self.steered, self._reader = estimator, estimator is not None, None

    @classmethod
    def load(cls, savedir, init_checkpoint="", residual=None, architecture=None):
        """The CAAE of SAVEDIR and the PAGAN generators of SAVEDIR/pagan -- with the default --savedir save, where
        `--model caae` and `--model pagan` train -- each the bundled one where there is none."""
        import os
        from face_aging.models.caae.ager import CAAEAger
        from face_aging.models.pagan.ager import PAGANAger
        from face_aging.inference.faceinfo import bundled_estimator
        from face_aging.models.estimator.bundled import EstimatorUnavailable
        estimator = None
        if STEER:
            try:
                estimator = bundled_estimator()
            except EstimatorUnavailable:
                pass
        return cls(CAAEAger.load(savedir, init_checkpoint, residual, architecture),
                   PAGANAger.load(os.path.join(savedir, PAGAN_SUBDIR)), estimator)

    def describe(self, input_age="auto"):
        children = ("ages children" if CHAIN_AGE is None else
                    f"ages children to {CHAIN_AGE:g}, from where PAGAN ages them on")
        return ([f"{self.name}: PAGAN ages faces of {PAGAN_MIN_AGE} and over above their own age, the CAAE makes "
                 f"the younger faces and {children} ({self.size}x{self.size} faces; docs/photos.md)",
                 "Age steering: " + ("each face made to look the age asked for, as the bundled age estimator reads "
                                     "it (face_aging/inference/steering.py)" if self.steered else
                                     "off (--nosteer, or no age estimator): each model's average rise")]
                + self.caae.describe(input_age) + self.pagan.describe(input_age))

    def check_ages(self, ages):
        self.pagan.check_ages(ages)

    def _by(self, ager, faces, genders, own, ages):
        """[A, N, S, S, 3]: `ager`'s faces at its size, its change carried to the faces' side."""
        if not ages:
            return np.empty((0,) + tuple(faces.shape), np.float32)
        small = _at_size(faces, ager.size)
        out = ager.age(small, genders, own, ages)
        return out if small is faces else np.stack([carry_change(faces, small, aged) for aged in out])

    def _own(self, faces, genders, own_ages):
        own = np.asarray(own_ages, np.float64).copy()
        unknown = ~np.isfinite(own)
        if unknown.any():           # where to switch models: the CAAE's reading of the face
            own[unknown] = self.caae.own_ages(_at_size(faces[unknown], self.caae.size), np.asarray(genders)[unknown])
        return own

    def _plain(self, faces, genders, own, ages):
        """Each (face, age) by the model that should make it, as it makes it (no steering)."""
        older = np.array([[age > own[i] >= PAGAN_MIN_AGE for i in range(len(faces))] for age in ages],
                         bool).reshape(len(ages), -1)
        child = own < PAGAN_MIN_AGE
        chained = (np.array([[child[i] and age > CHAIN_AGE for i in range(len(faces))] for age in ages], bool)
                   .reshape(len(ages), -1) if CHAIN_AGE is not None else np.zeros_like(older))
        caae_ages = [a for a, row, chain in zip(ages, older, chained) if not (row | chain).all()]
        pagan_ages = [a for a, row in zip(ages, older) if row.any()]
        by_caae = dict(zip(caae_ages, self._by(self.caae, faces, genders, own, caae_ages)))
        by_pagan = dict(zip(pagan_ages, self._by(self.pagan, faces, genders, own, pagan_ages)))
        by_chain, chain_ages = {}, [a for a, row in zip(ages, chained) if row.any()]
        if chain_ages:
            # The children's young adults, then PAGAN from there (its own age: the one the CAAE was asked for).
            young = self._by(self.caae, faces[child], genders[child], own[child], [CHAIN_AGE])[0]
            by_chain = dict(zip(chain_ages, self._by(self.pagan, young, genders[child],
                                                     np.full(len(young), CHAIN_AGE), chain_ages)))
        row_among_children = np.cumsum(child) - 1
        out = np.empty((len(ages),) + tuple(faces.shape), np.float32)
        for a, age in enumerate(ages):
            for i in range(len(faces)):
                if chained[a, i]:
                    out[a, i] = by_chain[age][row_among_children[i]]
                else:
                    out[a, i] = by_pagan[age][i] if older[a, i] else by_caae[age][i]
        return out

    def age(self, faces, genders, own_ages, ages):
        genders = np.asarray(genders)
        own = self._own(faces, genders, own_ages)
        if not self.steered or not len(ages) or not len(faces):
            return self._plain(faces, genders, own, ages)
        out = np.empty((len(ages),) + tuple(faces.shape), np.float32)
        for start in range(0, len(faces), STEER_BATCH):
            part = slice(start, start + STEER_BATCH)
            out[:, part] = steering.steer(
                lambda grid, p=part: self._plain(faces[p], genders[p], own[p], grid), self._read, list(ages))
        return out

    # --- Age steering (face_aging/inference/steering.py) ------------------------------------------------------------

    def _read(self, images):
        """The estimator's age of each face (years [N]); one view, not the face and its mirror image as test mode
        reads a face's own age: steering reads ten faces for every face it ages (BENCHMARKS.md)."""
        if self._reader is None:
            self._reader = age_reader(self.estimator)
        return self._reader(images)

    def unsteered(self):
        """A copy that does not steer: a clip's face must not switch ages from frame to frame as the readings waver."""
        frames = copy.copy(self)
        frames.steered = False
        return frames

    def own_ages(self, faces, genders):
        return self.caae.own_ages(_at_size(faces, self.caae.size), genders)

    def gif_years(self, own_age):
        return list(GIF_YEARS)

    def eval_targets(self):
        return eval_targets(L.AGE_GROUP_UPPER, L.AGE_GROUP_NAMES)
