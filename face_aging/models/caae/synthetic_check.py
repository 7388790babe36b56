"""The synthetic faces' aging benchmark: does the model move a face towards the true older (or younger) rendering
of the same person?

Every synthetic person can be rendered at any age, so for a face x of person p at age a and a target group t the
truth T = render(p, centre age of t) is known. For persons the model never saw we compare
    d_aged  = |G(E(x), t) - T|        the model's face at the target group
    d_kept  = |G(E(x), a's group) - T|  the same model's reconstruction, not aged
(mean absolute error in [-1, 1] units). gain = 1 - d_aged / d_kept: above 0 means that changing the age label moves
the output towards the truth; "closer" is the share of (face, target) pairs where d_aged < d_kept. Pairs whose target
is within 15 years of the source age are left out: there the truth and the input hardly differ.
"""

import json

import numpy as np

from face_aging.data import labels as L
from face_aging.data import synthetic
from face_aging.training.rundir import write_text_atomic

UNSEEN_PERSON_BASE = 1_000_000   # make_dataset numbers its persons from 0; these ids are never trained on
MIN_AGE_GAP = 15


def aging_check(model, image_size, seed=2017, num_persons=60):
    """Per target group and overall: d_aged, d_kept, gain and closer. `model` has age_to_groups(images, groups,
    genders) (an AgingModel)."""
    rng = np.random.RandomState(seed)
    persons = [synthetic.make_person(UNSEEN_PERSON_BASE + i, seed) for i in range(num_persons)]
    source_ages = rng.randint(0, synthetic.AGE_MAX + 1, size=num_persons)
    faces = np.stack([synthetic.render_face(p, a, image_size) for p, a in zip(persons, source_ages)])
    faces = faces.astype(np.float32) / 127.5 - 1.0
    genders = L.plus_minus_one_hot([p.gender for p in persons], 2)
    kept = model.age_to_groups(faces, L.age_to_group(source_ages), genders)
    rows, all_aged, all_kept = [], [], []
    for group in range(L.NUM_AGE_GROUPS):
        target_age = L.group_centre_age(group)
        use = np.abs(source_ages - target_age) >= MIN_AGE_GAP
        if not use.any():
            continue
        truth = np.stack([synthetic.render_face(p, target_age, image_size) for p, u in zip(persons, use) if u])
        truth = truth.astype(np.float32) / 127.5 - 1.0
        aged = model.age_to_groups(faces[use], np.full(use.sum(), group), genders[use])
        d_aged = np.abs(aged - truth).mean(axis=(1, 2, 3))
        d_kept = np.abs(kept[use] - truth).mean(axis=(1, 2, 3))
        all_aged.append(d_aged)
        all_kept.append(d_kept)
        rows.append(_row(L.AGE_GROUP_NAMES[group], d_aged, d_kept))
    overall = _row("all", np.concatenate(all_aged), np.concatenate(all_kept))
    return {"groups": rows, "overall": overall, "num_persons": num_persons, "image_size": image_size,
            "min_age_gap": MIN_AGE_GAP, "seed": seed}


def _row(name, d_aged, d_kept):
    return {"target": name, "pairs": int(d_aged.size), "d_aged": float(d_aged.mean()), "d_kept": float(d_kept.mean()),
            "gain": float(1.0 - d_aged.mean() / d_kept.mean()), "closer": float((d_aged < d_kept).mean())}


def format_table(report):
    lines = ["target   pairs  d_aged  d_kept   gain  closer"]
    for row in report["groups"] + [report["overall"]]:
        lines.append(f"{row['target']:<7} {row['pairs']:>6}  {row['d_aged']:.4f}  {row['d_kept']:.4f}  "
                     f"{row['gain']:+.1%}  {row['closer']:.0%}")
    return "\n".join(lines)


def write_report(report, path):
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
