"""`python main.py --model estimator --eval --testdir DIR [--holdout test]`: the estimator (SAVEDIR's run, else the
bundled one) on faces whose UTKFace-style names give their age and gender; prints the figures and writes them to
SAVEDIR/eval_estimator.json."""

import json
import os

import numpy as np

from face_aging.estimator import bundled, network
from face_aging.fileio import atomic_write

AGE_BANDS = ((0, 12), (13, 20), (21, 35), (36, 50), (51, 65), (66, 120))


def figures(female, years, ages, genders):
    """{num_faces, age_mae, age_within_5, gender_accuracy, age_mae by band} of estimates against labels (NaN age /
    -1 gender: not counted)."""
    known_age, known_gender = np.isfinite(ages), genders >= 0
    error = np.abs(years - ages)[known_age]
    bands = {}
    for low, high in AGE_BANDS:
        mask = known_age & (ages >= low) & (ages <= high)
        if mask.any():
            gender = mask & known_gender
            bands[f"{low}-{high}"] = {
                "faces": int(mask.sum()), "age_mae": float(np.mean(np.abs(years - ages)[mask])),
                "gender_accuracy": float(np.mean((female[gender] > 0.5) == (genders[gender] == 1)))
                if gender.any() else float("nan")}
    return {"num_faces": int(len(ages)), "age_mae": float(np.mean(error)) if error.size else float("nan"),
            "age_within_5": float(np.mean(error <= 5)) if error.size else float("nan"),
            "gender_accuracy": float(np.mean((female[known_gender] > 0.5) == (genders[known_gender] == 1)))
            if known_gender.any() else float("nan"),
            "by_age": bands}


def run_eval(testdir, savedir, held_out="none"):
    from face_aging.eval.evaluate import face_labels
    from face_aging.inference.testmode import load_test_images
    model, source = bundled.load(savedir)
    print(f"\tEstimator: {source}")
    faces, paths = load_test_images(testdir, model.image_size, held_out)
    ages, genders, _ = face_labels(paths)
    female, years = network.estimate(model, faces)
    result = figures(female, years, ages, genders)
    result.update(testdir=os.path.abspath(testdir), holdout=held_out, estimator=source)
    print(f"\t{result['num_faces']} faces: age error {result['age_mae']:.2f} years on average "
          f"({result['age_within_5']:.0%} within 5 years), gender right for {result['gender_accuracy']:.1%}")
    for band, value in result["by_age"].items():
        print(f"\t  ages {band}: {value['faces']} faces, age error {value['age_mae']:.2f} years, gender right for "
              f"{value['gender_accuracy']:.1%}")
    adults = np.isfinite(ages) & (ages >= 13) & (genders >= 0)
    if adults.any():
        result["gender_accuracy_13_and_over"] = float(np.mean((female[adults] > 0.5) == (genders[adults] == 1)))
        print(f"\t  gender right for {result['gender_accuracy_13_and_over']:.1%} of the {int(adults.sum())} faces aged "
              f"13 and over")
    out = os.path.join(savedir, "eval_estimator.json")
    with atomic_write(out) as f:
        f.write(json.dumps(result, indent=1).encode() + b"\n")
    print(f"\tWrote {out}")
    return result
