"""The estimator's figures against labels (its training's validation and `--model estimator --eval`,
face_aging/eval/estimator.py)."""

import numpy as np

AGE_BANDS = ((0, 12), (13, 20), (21, 35), (36, 50), (51, 65), (66, 120))


def _gender_right(female, genders, mask):
    """The share of the faces at `mask` whose estimated gender is their label's (NaN for none)."""
    return float(np.mean((female[mask] > 0.5) == (genders[mask] == 1))) if mask.any() else float("nan")


def figures(female, years, ages, genders):
    """{num_faces, age_mae, age_within_5, gender_accuracy, gender_accuracy_13_and_over, by_age} of estimates against
    labels (NaN age / -1 gender: not counted)."""
    ages, genders = np.asarray(ages, np.float64), np.asarray(genders)
    known_age, known_gender = np.isfinite(ages), genders >= 0
    error = np.abs(years - ages)
    bands = {}
    for low, high in AGE_BANDS:
        mask = known_age & (ages >= low) & (ages <= high)
        if mask.any():
            bands[f"{low}-{high}"] = {"faces": int(mask.sum()), "age_mae": float(np.mean(error[mask])),
                                      "gender_accuracy": _gender_right(female, genders, mask & known_gender)}
    return {"num_faces": int(len(ages)),
            "age_mae": float(np.mean(error[known_age])) if known_age.any() else float("nan"),
            "age_within_5": float(np.mean(error[known_age] <= 5)) if known_age.any() else float("nan"),
            "gender_accuracy": _gender_right(female, genders, known_gender),
            "gender_accuracy_13_and_over": _gender_right(female, genders, known_gender & known_age
                                                         & (np.where(known_age, ages, 0) >= 13)),
            "by_age": bands}
