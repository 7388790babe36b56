"""One way to age a face, whatever the model (docs/layout.md#the-inference-interface).

An Ager is a trained model ready to age faces: loaded from a run directory or from the weights bundled with the
package, it describes itself, says which ages it can do, and ages a batch of aligned faces to ages in years. Test
mode, --eval, --export, --serve and videos (face_aging/inference/, face_aging/eval/) use only this; CAAE's and
PAGAN's implementations live in their packages (caae/ager.py, pagan/ager.py), and face_aging/inference/agers.py is
the one place that picks one by --model. The models never import face_aging.inference.

Faces are float32 [N, S, S, 3] in [-1, 1] at the ager's `size`, aligned to its `template` (face_aging.faces.align);
genders are 0 (male) / 1 (female) per face; own ages are years per face, NaN where unknown.
"""

import dataclasses

import numpy as np

from face_aging.data.labels import MAX_AGE
from face_aging.errors import FaceAgingError

# A GIF through the years: a frame every 3 years from 3 to 81 (the CAAE's range).
GIF_YEARS = tuple(range(3, 82, 3))


class AgerError(FaceAgingError, RuntimeError):
    """A model cannot be loaded or cannot do what was asked; the message names the run or flag and what to do."""


def requested_age(low, high):
    """The age in years a target of ages low-high stands for: its middle, and for an open-ended one (51+, 71+) the
    middle of its first ten years (60.5, 80.5)."""
    return (low + (low + 19 if high >= MAX_AGE else high)) / 2.0


@dataclasses.dataclass
class EvalTarget:
    """One column of --eval's table: its name ("31-40") and the ages it stands for (inclusive)."""
    name: str
    low: int
    high: int

    @property
    def age(self):
        """The age in years the outputs are asked to look."""
        return requested_age(self.low, self.high)


def eval_targets(uppers, names):
    """[EvalTarget] of consecutive groups given their upper ages (the last is open-ended): labels.AGE_GROUP_UPPER
    and AGE_GROUP_NAMES give the CAAE's ten, AGE_CLUSTER_* PAGAN's four clusters."""
    lows = (0,) + tuple(u + 1 for u in uppers)
    highs = tuple(uppers) + (MAX_AGE,)
    return [EvalTarget(name, int(low), int(high)) for name, low, high in zip(names, lows, highs)]


@dataclasses.dataclass
class EvalOutputs:
    """What an ager gives --eval: the faces at each target ([T] float32 [N, S, S, 3] in [-1, 1]) and what the report
    records of how they were made."""
    outputs: list
    source: str                               # where the weights came from
    residual: dict = None                     # CAAE: the residual aging strength and own-age rule
    reconstructed: tuple = None               # CAAE: (bool [N], G's faces at those faces' own groups)


@dataclasses.dataclass
class ExportParts:
    """What an ager wrote into an export folder, for export.json and README.txt (face_aging/inference/export.py)."""
    record: dict                              # export.json's model-specific part
    title: str                                # README.txt's model line
    usage: str                                # README.txt's Python lines
    size: str                                 # the size images are resized to inside the graph
    said: str                                 # what the console says was written


class Ager:
    """The interface; each model overrides what it does differently. Attributes every ager sets:
    name (as the console and the page name it), key (its --model value), size, template."""
    name = ""
    key = ""
    size = 0
    template = "caae"
    takes_gender = False                      # the gender changes the faces (the page shows its field)
    reads_own_age = False                     # --input_age estimate: the model reads each face's age itself (NaN)
    default_ages = (20, 40, 60, 80)           # the ages the page starts with
    sheets = ""                               # what overview() writes, as test mode's last line names it
    target_word = "group"                     # --eval: what its targets are called
    reconstructs = False                      # --eval: EvalOutputs.reconstructed (the CAAE's G) applies
    comparison = None                         # --eval: (another model's key, {own target: its target}) to run beside

    def describe(self, input_age="auto"):
        """Lines for the console (the first is the page's): what was loaded, from where, how it ages (`input_age`
        as --input_age)."""
        raise NotImplementedError

    def check_ages(self, ages):
        """AgerError naming what to do if any of `ages` (years) cannot be made; nothing otherwise."""

    def caveats(self, own_ages, ages):
        """Sentences for the console and the page: what the model does not do for these faces (ages now, NaN where
        unknown) at these ages (years), which a user would otherwise take for a fault. None by default."""
        return []

    def age(self, faces, genders, own_ages, ages):
        """float32 [A, N, S, S, 3] in [-1, 1]: every face at every age of `ages` (years)."""
        raise NotImplementedError

    def age_each(self, faces, genders, own_ages, ages_per_face):
        """[per face: float32 [A_i, S, S, 3]]: face i at each age of ages_per_face[i] (test mode's GIFs run through
        each face's own years). By default the faces asking for the same ages are aged together."""
        groups = {}
        for i, ages in enumerate(ages_per_face):
            groups.setdefault(tuple(ages), []).append(i)
        out = [None] * len(faces)
        for ages, members in groups.items():
            aged = self.age(faces[members], np.asarray(genders)[members], np.asarray(own_ages)[members], list(ages))
            for j, i in enumerate(members):
                out[i] = aged[:, j]
        return out

    def unsteered(self):
        """The ager without per-face choices that depend on each call's faces: the one a video's frames are aged with
        (a face must be aged the same way from frame to frame). The combined model's age steering returns a copy that
        does not steer; the others are themselves."""
        return self

    def own_ages(self, faces, genders):
        """Each face's age now as the model reads it (years; NaN where it cannot), for faces nothing else dates."""
        return np.full(len(faces), np.nan)

    def gif_years(self, own_age):
        """The ages of a face's GIF, young to old."""
        return list(GIF_YEARS)

    def overview(self, faces, genders, own_ages, names, lift, out_dir):
        """The model's own sheets in test mode (CAAE: every face at every group; PAGAN: a row per face); `lift`
        (face_aging.inference.fullres.Lift) carries a face's outputs to its own resolution. Returns the paths."""
        return []

    # --- --eval ---------------------------------------------------------------------------------------------------

    def eval_targets(self):
        """[EvalTarget]: the columns --eval ages every face to."""
        raise NotImplementedError

    def eval_ages(self, real_ages):
        """bool [N]: which faces of the set the model ages (the others are only real faces of the targets)."""
        return np.ones(len(real_ages), bool)

    def eval_outputs(self, faces, real_ages, genders, input_age="auto"):
        """EvalOutputs for faces whose labels give `real_ages` (NaN unknown) and `genders` (-1 unknown): by default
        each face at each target's requested age through age()."""
        ages = [t.age for t in self.eval_targets()]
        own = np.asarray(real_ages, np.float64)
        aged = self.age(faces, np.where(np.asarray(genders) < 0, 0, genders), own, ages)
        return EvalOutputs(outputs=list(aged), source="; ".join(self.describe()))

    # --- --export -------------------------------------------------------------------------------------------------

    def export(self, folder, path):
        """Write the model's SavedModel(s) into `folder` (to be moved to `path`); ExportParts."""
        raise AgerError(f"--export: {self.name} cannot be exported as a SavedModel; export its models one by one")
