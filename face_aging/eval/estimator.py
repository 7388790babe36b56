"""`python main.py --model estimator --eval --testdir DIR [--holdout test]`: the estimator (SAVEDIR's run, else the
bundled one) on faces whose UTKFace-style names give their age and gender; prints the figures and writes them to
SAVEDIR/eval_estimator.json."""

import json
import os

import numpy as np

from face_aging.models.estimator import bundled, network
from face_aging.models.estimator.evaluate import figures
from face_aging.fileio import atomic_write


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
    adults = int(np.sum((genders >= 0) & (np.nan_to_num(ages) >= 13)))
    print(f"\t  gender right for {result['gender_accuracy_13_and_over']:.1%} of the {adults} faces aged 13 and over")
    out = os.path.join(savedir, "eval_estimator.json")
    with atomic_write(out) as f:
        f.write(json.dumps(result, indent=1).encode() + b"\n")
    print(f"\tWrote {out}")
    return result
