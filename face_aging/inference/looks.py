"""How old each aged face looks, and saying so where it is far from the age asked
(docs/photos.md#how-old-the-faces-look).

Neither model makes every face every age: the guarded CAAE hardly makes an old face young, PAGAN makes no face
younger and its faces stop in the 60s (docs/photos.md). Asked to make an 83-year-old 10, 25, 45 and 65, the pair
gives four faces that the estimator reads 79-81, near-copies of the photo; without a word a user cannot tell that from
a fault. So test mode and the page read every face they make with the bundled age estimator
(face_aging/models/estimator, trained here; not one of --eval's judges), write the readings to test/faces.json and
say where one is far from its age.

A face "looks" its reading by the same single view that age steering (steering.py) reads, so that for
`--model combined` the reading is the one steering chose the face by.
"""

import numpy as np

# Twice the estimator's mean error on held-out real faces (5.1 years, its model card): a face read further than this
# from the age asked does not look that age.
MISS_YEARS = 10.0


def read(estimator, faces):
    """Years [N] (numpy float64): `estimator`'s reading of faces [N, S, S, 3] in [-1, 1] (any size)."""
    from face_aging.models.estimator.network import age_reader
    faces = np.asarray(faces, np.float32)
    if not len(faces):
        return np.zeros(0)
    return np.asarray(age_reader(estimator)(faces), np.float64)


def misses(ages, looks, years=MISS_YEARS):
    """[(age, look)] of the ages whose face reads more than `years` from the age."""
    return [(age, float(look)) for age, look in zip(ages, looks) if abs(float(look) - age) > years]


def _ages_said(ages):
    ages = [str(a) for a in ages]
    return ages[0] if len(ages) == 1 else ", ".join(ages[:-1]) + " and " + ages[-1]


def _span(values):
    low, high = round(min(values)), round(max(values))
    return f"{low}" if low == high else f"{low}-{high}"


def said(ages, looks, years=MISS_YEARS):
    """What to tell of one face's outputs ("" when each looks within `years` of its age): e.g. "asked for 10, 25
    and 45 years, it looks 79-81, more than 10 years older than asked"."""
    parts = []
    for younger, word in ((True, "older"), (False, "younger")):
        missed = [(a, look) for a, look in misses(ages, looks, years) if (look > a) == younger]
        if missed:
            unit = "year" if [a for a, _ in missed] == [1] else "years"
            parts.append(f"asked for {_ages_said([a for a, _ in missed])} {unit}, it looks "
                         f"{_span([look for _, look in missed])}, more than {years:g} years {word} than asked")
    return "; ".join(parts)


def record(ages, looks):
    """faces.json's "outputs" of one face: [{"age": years asked, "looks": the estimator's reading}]."""
    return [{"age": int(a), "looks": round(float(look), 1)} for a, look in zip(ages, looks)]


def say(names, records, shown=10):
    """Print the faces that do not look the age asked (at most `shown` lines, then a count); `records`: each face's
    record() or None (not read)."""
    lines = []
    for name, outputs in zip(names, records):
        text = said([o["age"] for o in outputs], [o["looks"] for o in outputs]) if outputs else ""
        if text:
            lines.append(f"\t{name}: {text}")
    for line in lines[:shown]:
        print(line)
    if len(lines) > shown:
        print(f"\t... and {len(lines) - shown} more face(s) that do not look an age asked")
    if lines:
        print("\tHow old each aged face looks is the bundled age estimator's reading (every one: test/faces.json); "
              "such a face is as near the age asked as the model comes (docs/photos.md#how-old-the-faces-look)")


def estimator_or_none():
    """The bundled estimator, or None where it is not installed (then nothing is read or said)."""
    from face_aging.inference.faceinfo import bundled_estimator
    try:
        return bundled_estimator()
    except FileNotFoundError:
        return None
