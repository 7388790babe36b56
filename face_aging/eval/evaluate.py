"""Evaluation mode: age every face in a folder to every target of the model (CAAE: its ten age groups; PAGAN: its
trained clusters; combined: the CAAE's groups) through its Ager (face_aging/models/ager.py), judge the outputs
offline, and write the papers' age/identity table (SAVEDIR/eval/eval.{json,md}, two PNG plots).

Inputs carry labels when their names are UTKFace-style (AGE_GENDER_RACE_*): the age gives the "real faces of that
group" rows and CAAE's reconstruction error at the face's own group, the gender CAAE's gender label. UTKFace names
carry no identity, so every input counts as its own person when impostor pairs are formed. --testdir may also be a
prepared data folder (--model prepare): its test split (or val) with the ages, genders and persons of the manifest.
"""

import dataclasses
import hashlib
import logging
import os

import numpy as np

from face_aging import images as imio
from face_aging.data import labels as L
from face_aging.eval import judges as J
from face_aging.eval import metrics, report
from face_aging.models.ager import requested_age

REPORT_FARS = report.REPORT_FARS


@dataclasses.dataclass
class EvalOptions:
    model: str                           # caae | pagan | combined (face_aging.inference.agers)
    testdir: str
    savedir: str
    out_dir: str = ""                    # default SAVEDIR/eval
    age_judge: str = "auto"
    identity_judge: str = "auto"
    age_classifier: str = os.path.join("checkpoints", "age_classifier")
    vgg_face: str = os.path.join("checkpoints", "vgg_face")
    max_impostor_pairs: int = 200_000
    seed: int = 2017
    init_checkpoint: str = ""            # CAAE: an original TF1 checkpoint when SAVEDIR has none
    architecture: object = None          # CAAE: the architecture flags given (a dict or a CAAEConfig); None: the run's
    holdout: str = "none"                # only the faces of this held-out set (data/holdout.py)
    residual: float = None               # CAAE: residual aging strength (caae/residual.py); None: the model's own
    input_age: object = "auto"           # CAAE residual aging's own group: auto (the labels), estimate, or years
    output_size: int = 512               # outputs judged at the inputs' own resolution up to this side (fullres.py)


def face_labels(paths):
    """(ages float with NaN, genders int with -1, persons "") from UTKFace-style names where they parse."""
    ages, genders = [], []
    for path in paths:
        try:
            age, gender, _ = L.parse_utkface_name(os.path.basename(path))
            ages.append(float(age))
            genders.append(gender)
        except L.LabelError:
            ages.append(np.nan)
            genders.append(-1)
    return np.array(ages), np.array(genders), [""] * len(paths)


def prepared_faces(prepared_dir, ager, size):
    """A prepared data folder (--model prepare) as the input: its test split, or its val split when test is empty;
    a model that ages only some faces (PAGAN: the young ones, cluster 0) takes those. Labels and persons come from
    the manifest (CACD, FG-NET and MORPH know their persons, so impostor pairs are truly different people)."""
    from face_aging.data import prepare
    from face_aging.models.pagan.data import load_images
    split_name, split = "test", prepare.read_split(prepared_dir, "test")
    if len(split) == 0:
        split_name, split = "val", prepare.read_split(prepared_dir, "val")
    split = split.select(ager.eval_ages(np.where(split.ages >= 0, split.ages, np.nan).astype(float)))
    if len(split) == 0:
        raise prepare.PrepareError(f"{prepared_dir}: no faces {ager.name} ages in its test or val split to evaluate "
                                   f"on")
    _say(f"Evaluating on the {split_name} split of {prepared_dir}: {len(split)} faces")
    ages = np.where(split.ages >= 0, split.ages, np.nan).astype(float)
    return load_images(split.paths, size), list(split.paths), ages, np.asarray(split.genders), list(split.persons)


def persons_with_duplicates(inputs, persons):
    """Identical images count as one person: data sets contain duplicated files (UTKFace has about a hundred pairs),
    and an identical pair used as impostors puts the FAR threshold at distance 0. Returns (persons, duplicates)."""
    out, seen, duplicates = [], set(), 0
    for image, person in zip(inputs, persons):
        if person:
            out.append(person)
            continue
        key = "image:" + hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]
        duplicates += key in seen
        seen.add(key)
        out.append(key)
    return out, duplicates


def judge_figures(inputs, outputs, target_bounds, real_ages, persons, age_judge, identity_judge, options,
                  real_faces=None):
    """The per-target figures, the thresholds and the impostor description from the judges' verdicts.

    `real_faces` (default: the inputs) are the faces whose own ages (`real_ages`) give each target's "real faces"
    row: PAGAN ages only its young inputs, but compares them with the older faces of the same set."""
    per_target = [{"sharpness": metrics.sharpness_ratio(inputs, out), **metrics.ghost_figures(inputs, out)}
                  for out in outputs]
    gen_matrix = genuine_matrix = None
    real_faces = inputs if real_faces is None else real_faces
    if age_judge is not None:
        real_estimates = age_judge.estimate(real_faces)
        gen_matrix = age_columns(age_judge, outputs, per_target, target_bounds)
        for entry, (low, high) in zip(per_target, target_bounds):
            in_group = (real_ages >= low) & (real_ages <= high)
            if in_group.any():
                entry["real_age"] = metrics.age_figures(real_estimates[in_group], low, high)
                entry["real_ages"] = [float(a) for a in real_estimates[in_group]]
                # The same figure for real faces of the target: how far the judge itself puts faces that truly
                # are that age from the requested one (the floor a model's age error is read against).
                entry["real_age_error"] = metrics.age_error(real_estimates[in_group], requested_age(low, high))
            else:
                entry["real_age"] = entry["real_age_error"] = None
    thresholds, impostors, embedded = [], {"description": "no identity judge", "n_pairs": 0}, None
    if identity_judge is not None:
        embedded = identity_judge.embed(inputs)
        persons, duplicates = persons_with_duplicates(inputs, persons)
        pairs, description = metrics.impostor_pairs(persons, options.max_impostor_pairs, options.seed)
        description = (f"{description}. Persons: identical images count as one person (as do the faces of one "
                       f"labelled person), otherwise every input is its own person; {duplicates} input(s) "
                       f"duplicated another")
        impostor_scores = identity_judge.scores(embedded[pairs[:, 0]], embedded[pairs[:, 1]]) if len(pairs) else []
        impostors = {"description": description, "n_pairs": int(len(pairs))}
        thresholds = [metrics.threshold_at_far(impostor_scores, far, identity_judge.higher_means_same)
                      for far in REPORT_FARS]
        genuine_matrix = identity_columns(identity_judge, embedded, outputs, per_target, thresholds)
    return per_target, thresholds, impostors, gen_matrix, genuine_matrix, embedded


def age_error_21_70(per_target, key="age_error"):
    """The field's summary: the age error to target averaged over the targets whose age is 21-70 (None without
    an age judge or such targets). key="real_age_error": the same for the real faces of each target (None unless
    every such target has real faces)."""
    chosen = [t.get(key) for t in per_target if t.get("requested_age") is not None and 21 <= t["requested_age"] <= 70]
    errors = [e for e in chosen if e is not None and np.isfinite(e)]
    if not errors or (key == "real_age_error" and len(errors) < len(chosen)):
        return None
    return float(np.mean(errors))


def age_columns(age_judge, outputs, per_target, target_bounds):
    """Each target's estimated ages into its entry (with the age error to the target's middle); the estimates as a
    [faces, targets] matrix."""
    columns = []
    for t, (entry, out, (low, high)) in enumerate(zip(per_target, outputs, target_bounds)):
        _say(f"age judge ({age_judge.name}): target {t + 1}/{len(outputs)}")
        estimates = age_judge.estimate(out)
        entry["gen_age"] = metrics.age_figures(estimates, low, high)
        entry["requested_age"] = requested_age(low, high)
        entry["age_error"] = metrics.age_error(estimates, entry["requested_age"])
        entry["gen_ages"] = [float(a) for a in estimates]
        columns.append(estimates)
    return np.stack(columns, axis=1)


def identity_columns(identity_judge, embedded, outputs, per_target, thresholds):
    """Each target's genuine (input, output) scores into its entry: their mean, the verification rates at the FAR
    thresholds and at the judge's fixed ones (dlib: 0.6, 0.5); the scores as a [faces, targets] matrix."""
    columns = []
    for t, (entry, out) in enumerate(zip(per_target, outputs)):
        _say(f"identity judge ({identity_judge.name}): target {t + 1}/{len(outputs)}")
        genuine = np.asarray(identity_judge.scores(embedded, identity_judge.embed(out)), dtype=np.float64)
        columns.append(genuine)
        entry["identity"] = metrics.identity_figures(genuine)
        entry["identities"] = [float(score) for score in genuine]
        entry["verification"] = [metrics.verification_figures(genuine, t) for t in thresholds]
        entry["verified_below"] = [metrics.verified_below(genuine, threshold, identity_judge.higher_means_same)
                                   for threshold in getattr(identity_judge, "fixed_thresholds", ())]
    return np.stack(columns, axis=1)


def comparison_figures(ager, faces, real_ages, genders, target_bounds, judges, thresholds, embedded, fulls):
    """The report beside another model the ager names (Ager.comparison; PAGAN: the bundled CAAE): the same faces aged
    by it (its own way, as its own --eval does) to the target matching each of the ager's, judged by the same judges
    at the same thresholds against the ager's targets. None where there is none or it is not bundled."""
    import tensorflow as tf
    from face_aging.inference.agers import load_ager
    from face_aging.models.ager import AgerError
    if ager.comparison is None:
        return None
    model, matching = ager.comparison
    _say(f"Beside it, for comparison: the bundled {model}")
    try:
        other = load_ager(model, os.path.join(os.path.sep, "nonexistent", "face_aging_bundled"))
    except AgerError:
        return None
    small = faces if other.size == faces.shape[1] else tf.image.resize(faces, [other.size] * 2,
                                                                       antialias=True).numpy()
    made = other.eval_outputs(small, real_ages, genders)
    names = [t.name for t in other.eval_targets()]
    columns = [matching[t] for t in range(len(target_bounds))]
    from face_aging.inference.fullres import carry_changes_uint8
    outputs = [carry_changes_uint8(fulls, small, imio.to_uint8(made.outputs[c])) for c in columns]
    inputs = imio.to_uint8(fulls)
    per_target = [{"sharpness": metrics.sharpness_ratio(inputs, out), **metrics.ghost_figures(inputs, out),
                   "group": names[c]} for out, c in zip(outputs, columns)]
    if judges["age"] is not None:
        age_columns(judges["age"], outputs, per_target, target_bounds)
    if judges["identity"] is not None:
        identity_columns(judges["identity"], embedded, outputs, per_target, thresholds)
    residual = made.residual["strength"] if made.residual else None
    return {"model": made.source, "residual": residual, "per_target": per_target}


def _say(text):
    print(f"\t{text}", flush=True)


def evaluate(options, age_judge=None, identity_judge=None, ager=None):
    """Run the evaluation; judges may be passed in (tests), else they are chosen by options; the model is `ager`, else
    options.model's loaded from options.savedir. Returns results."""
    from face_aging.inference.agers import load_ager
    from face_aging.inference.testmode import TestModeError, load_test_images
    if ager is None:
        ager = load_ager(options.model, options.savedir, options.init_checkpoint, options.residual,
                         options.architecture)
    size = ager.size
    if os.path.isfile(os.path.join(options.testdir, "prepare.json")):
        faces, paths, real_ages, genders, persons = prepared_faces(options.testdir, ager, size)
    else:
        faces, paths = load_test_images(options.testdir, size, options.holdout)
        real_ages, genders, persons = face_labels(paths)
    # The outputs are judged as test mode writes them: the model's change carried to each face at its own resolution.
    from face_aging.inference.fullres import carry_changes_uint8, shared_side
    from face_aging.models.pagan.data import load_images
    side = shared_side(paths, options.output_size)
    fulls = faces if side == size else load_images(paths, side)
    _say(f"Outputs at the faces' own resolution: {side}x{side} (the models run at {size}x{size})")
    judges = {}
    for role, given, choose, choice, where in (
            ("age", age_judge, J.choose_age_judge, options.age_judge, options.age_classifier),
            ("identity", identity_judge, J.choose_identity_judge, options.identity_judge, options.vgg_face)):
        judge, why = (given, None) if given is not None else choose(choice, where)
        judges[role] = judge
        if judge is None:
            logging.warning("No %s judge: %s", role, why)
        judges[role + "_record"] = J.describe(judge) if judge is not None else {"missing": why}

    targets = ager.eval_targets()
    target_bounds = [[t.low, t.high] for t in targets]
    real_faces, all_ages = None, real_ages
    aged = ager.eval_ages(real_ages)
    if not aged.all():
        # A model that ages only some faces (PAGAN: the young ones); the others are its targets' "real faces" rows.
        real_faces = imio.to_uint8(fulls)
        _say(f"{ager.name}: {int(aged.sum())} of the {len(faces)} faces are 30 or under (or unlabelled) and are "
             f"aged; the others are the real faces of the clusters")
        if not aged.any():
            raise TestModeError(f"{options.testdir}: no face aged 30 or under ({ager.name}'s inputs) to evaluate on")
        faces, genders, persons = faces[aged], genders[aged], [p for p, y in zip(persons, aged) if y]
        fulls, real_ages, paths = fulls[aged], real_ages[aged], [p for p, y in zip(paths, aged) if y]
    made = ager.eval_outputs(faces, real_ages, genders, options.input_age)
    outputs = [carry_changes_uint8(fulls, faces, imio.to_uint8(out)) for out in made.outputs]
    reconstruction = None
    if made.reconstructed is not None:
        known, rebuilt = made.reconstructed
        reconstruction = metrics.reconstruction_error(faces[known], rebuilt)
    inputs = imio.to_uint8(fulls)
    per_target, thresholds, impostors, gen_matrix, genuine_matrix, embedded = judge_figures(
        inputs, outputs, target_bounds, all_ages, persons, judges["age"], judges["identity"], options,
        real_faces=real_faces)
    input_age = correlation = near_age = None
    if real_faces is not None and judges["age"] is not None:
        input_age = metrics.age_figures(judges["age"].estimate(inputs), 0, L.AGE_CLUSTER_UPPER[0])
    comparison = comparison_figures(ager, faces, real_ages, genders, target_bounds, judges, thresholds, embedded,
                                    fulls)
    if real_faces is None and gen_matrix is not None:
        # How faithfully each face's estimated age follows the targets' order (the groups' ages).
        correlation = metrics.per_face_rank_correlation(gen_matrix, [t.age for t in targets])
        correlation["rhos"] = [None if not np.isfinite(r) else float(r) for r in correlation["rhos"]]
        correlation["pooled"] = metrics.rank_correlation(np.tile([t.age for t in targets], len(gen_matrix)),
                                                         gen_matrix.reshape(-1))
    known = np.isfinite(real_ages)
    threshold = getattr(judges["identity"], "usual_threshold", None)
    if real_faces is None and genuine_matrix is not None and threshold is not None and known.any():
        # Each labelled face's own target: the one whose ages hold its age.
        own = np.array([next(k for k, t in enumerate(targets) if t.low <= a <= t.high or k == len(targets) - 1)
                        for a in real_ages[known].astype(int)])
        near_age = metrics.near_age_verification(genuine_matrix[known], own, threshold,
                                                 judges["identity"].higher_means_same)
        # And at the judge's strictest fixed threshold (dlib: 0.5, the field's stricter figure), when it has one.
        strict = [t for t in getattr(judges["identity"], "fixed_thresholds", ()) if t != threshold]
        if strict and near_age:
            strictest = max(strict) if judges["identity"].higher_means_same else min(strict)
            near_age["strict"] = metrics.near_age_verification(genuine_matrix[known], own, strictest,
                                                               judges["identity"].higher_means_same)
    return {
        "age_error_21_70": age_error_21_70(per_target),
        "real_age_error_21_70": age_error_21_70(per_target, "real_age_error"),
        "model": ager.key, "checkpoint": made.source, "residual": made.residual,
        "target_word": ager.target_word, "ranks_targets": real_faces is None, "reconstructs": ager.reconstructs,
        "data": f"{os.path.abspath(options.testdir)} ({int(np.isfinite(real_ages).sum())} with UTKFace age labels)",
        "num_faces": len(faces), "output_side": int(inputs.shape[1]), "targets": [t.name for t in targets],
        # Face by face, in the order of every per-face list (the judges' estimates, scores, rank correlations).
        "faces": [{"file": os.path.basename(p), "age": float(a) if np.isfinite(a) else None}
                  for p, a in zip(paths, real_ages)],
        "target_bounds": target_bounds,
        "judges": {"age": judges["age_record"], "identity": judges["identity_record"]},
        "face_box": J.FACE_BOX, "impostors": impostors, "thresholds": thresholds, "per_target": per_target,
        "rank_correlation": correlation, "reconstruction_error": reconstruction,
        "near_age_verification": near_age, "comparison": comparison, "input_age": input_age,
    }


def run_eval(options):
    """Evaluate, write the report into SAVEDIR/eval (or out_dir) and print the table; returns the paths."""
    results = evaluate(options)
    out_dir = options.out_dir or os.path.join(options.savedir, "eval")
    written = report.write_report(results, out_dir)
    print(report.format_console(results))
    drawn = [os.path.basename(written[name]) for name in ("age_by_target", "identity_by_target") if written[name]]
    print(f"\tWrote {written['json']}, {written['markdown']}" + (f" and {', '.join(drawn)}" if drawn else
                                                                   " (no plot drawn: see eval.md)"))
    return written
