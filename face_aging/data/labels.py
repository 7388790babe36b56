"""Labels of face-aging data: UTKFace file names, CAAE's ten age groups, PAGAN's four age clusters and the
"-1/+1 one-hot" encoding.

UTKFace names its aligned chips `AGE_GENDER_RACE_DATETIME.jpg.chip.jpg` (gender 0 = male, 1 = female; race 0-4).
A handful of the real files are malformed (a missing field, a stray space, `jpg` without its dot); those are
reported and skipped rather than guessed at, because a wrong age label silently poisons an age-conditioned model.
"""

import re

import numpy as np

# Inclusive upper bounds of the ten groups: 0-5, 6-10, 11-15, 16-20, 21-30, 31-40, 41-50, 51-60, 61-70, 71+.
AGE_GROUP_UPPER = (5, 10, 15, 20, 30, 40, 50, 60, 70)
AGE_GROUP_NAMES = ("0-5", "6-10", "11-15", "16-20", "21-30", "31-40", "41-50", "51-60", "61-70", "71+")
NUM_AGE_GROUPS = len(AGE_GROUP_NAMES)
# PAGAN's clusters: 0 = 30 and under (the young inputs), 1 = 31-40, 2 = 41-50, 3 = 51 and over.
AGE_CLUSTER_UPPER = (30, 40, 50)
AGE_CLUSTER_NAMES = ("30-", "31-40", "41-50", "51+")
NUM_AGE_CLUSTERS = len(AGE_CLUSTER_NAMES)
GENDER_NAMES = ("male", "female")
NUM_GENDERS = len(GENDER_NAMES)
MAX_AGE = 120  # oldest plausible label; UTKFace's oldest is 116

_UTKFACE_NAME = re.compile(
    r"^(?P<age>\d{1,3})_(?P<gender>\d+)_(?P<race>\d+)_(?P<stamp>\d+)\.(?:jpe?g|png)(?:\.chip\.(?:jpe?g|png))?$",
    re.IGNORECASE)


class LabelError(ValueError):
    """A file name that does not carry valid UTKFace labels."""


def parse_utkface_name(name):
    """(age, gender, race) from a UTKFace file name, or LabelError saying what is wrong with it."""
    match = _UTKFACE_NAME.match(name)
    if not match:
        fields = name.split("_")
        if len(fields) < 4:
            raise LabelError(f"expected AGE_GENDER_RACE_DATETIME.jpg, found {len(fields)} '_'-separated fields")
        raise LabelError("not of the form AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg] (digits only, no spaces)")
    age, gender, race = int(match["age"]), int(match["gender"]), int(match["race"])
    if age > MAX_AGE:
        raise LabelError(f"age {age} is outside 0-{MAX_AGE}")
    if gender not in (0, 1):
        raise LabelError(f"gender {gender} is not 0 (male) or 1 (female)")
    if race > 4:
        raise LabelError(f"race {race} is not 0-4")
    return age, gender, race


def age_to_group(age):
    """Index 0-9 of the CAAE age group holding `age` years (scalar or array)."""
    return np.searchsorted(AGE_GROUP_UPPER, np.asarray(age), side="left").astype(np.int32)


def age_to_cluster(age):
    """Index 0-3 of the PAGAN age cluster holding `age` years (scalar or array)."""
    return np.searchsorted(AGE_CLUSTER_UPPER, np.asarray(age), side="left").astype(np.int32)


def group_centre_age(group):
    """A representative age of a group (its middle; 80 for 71+), e.g. for rendering the truth of a synthetic face."""
    lower = (0,) + tuple(u + 1 for u in AGE_GROUP_UPPER)
    upper = AGE_GROUP_UPPER + (90,)
    return (lower[group] + upper[group]) / 2.0


def group_position(ages):
    """Where `ages` (years, float [N]) lie on the age groups' scale: g + t between group g's centre
    (group_centre_age) and group g + 1's, clipped to [0, NUM_AGE_GROUPS - 1]. Ages in years, not groups: 37 is
    0.15 of the way from 31-40 (35.5) to 41-50 (45.5)."""
    centres = np.array([group_centre_age(g) for g in range(NUM_AGE_GROUPS)])
    return np.interp(np.asarray(ages, np.float64), centres, np.arange(NUM_AGE_GROUPS, dtype=np.float64))


def interpolated_group_labels(ages):
    """CAAE's age label for ages in years: the +-1 coding of plus_minus_one_hot, blended linearly between the two
    groups whose centres enclose each age (exactly a group's label at its centre). float32 [N, NUM_AGE_GROUPS]."""
    position = group_position(np.asarray(ages, np.float64).reshape(-1))
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, NUM_AGE_GROUPS - 1)
    t = (position - low)[:, None]
    weights = (1 - t) * np.eye(NUM_AGE_GROUPS)[low] + t * np.eye(NUM_AGE_GROUPS)[high]
    return (2.0 * weights - 1.0).astype(np.float32)


def plus_minus_one_hot(indices, depth):
    """The original's label encoding: every entry -1, the true class +1. float32 [N, depth]."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    labels = -np.ones((indices.size, depth), dtype=np.float32)
    labels[np.arange(indices.size), indices] = 1.0
    return labels
