"""The age-and-gender estimator (face_aging/models/estimator/): its label distribution, training through main.py on data
the test makes, resuming, --eval, bundling, and how test mode uses it (face_aging/inference/faceinfo.py)."""

import json
import os

import numpy as np
import pytest

from helpers import call_main

TINY = ["--image_size=32", "--estimator_width=4", "--batch_size=16"]


def test_age_targets_and_expectation():
    import tensorflow as tf
    from face_aging.models.estimator import network
    targets = network.age_targets(tf.constant([30, 0, 150])).numpy()
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
    assert np.argmax(targets[0]) == 30 and np.argmax(targets[1]) == 0 and np.argmax(targets[2]) == network.MAX_YEARS
    # The expectation of a distribution peaked at 30 is 30; of a uniform one, the middle.
    logits = np.full((2, network.MAX_YEARS + 1), -50.0, np.float32)
    logits[0, 30] = 0.0
    logits[1] = 0.0
    np.testing.assert_allclose(network.expected_age(tf.constant(logits)).numpy(), [30.0, network.MAX_YEARS / 2],
                               atol=1e-3)


@pytest.fixture(scope="module")
def estimator_run(tmp_path_factory):
    """A tiny estimator trained 3 epochs through main.py on 160 synthetic UTKFace-named faces."""
    from face_aging.data.synthetic import write_utkface_folder
    root = tmp_path_factory.mktemp("estimator")
    write_utkface_folder(str(root / "faces"), 160, 40, seed=4)
    result = call_main("--model", "prepare", "--dataset", str(root / "faces"), "--prepared_dir",
                       str(root / "prepared"), "--val_fraction", "0.2")
    assert result.returncode == 0, result.stderr
    savedir = root / "run"
    result = call_main("--model", "estimator", "--is_train", "--prepared_dir", str(root / "prepared"), "--savedir",
                       str(savedir), "--epoch=3", "--estimator_texture=0.5", *TINY)
    assert result.returncode == 0, result.stderr
    assert "Epoch 3: validation age error" in result.stdout
    return root, savedir


def test_texture_jitter_sharpens_or_softens_and_adds_grain_the_same_way_each_time():
    """--estimator_texture: a share of the training views sharpened, softened and grainy (train.texture_jitter);
    the rest as without it, and a view is the same for the same seed (a resumed run sees the same data)."""
    import tensorflow as tf
    from face_aging.models.caae.residual import smooth
    from face_aging.models.estimator.train import augment
    # Fine detail everywhere (noise of a quarter of the range): grain adds little to it, a mask scales it.
    face = tf.cast(tf.random.stateless_uniform([48, 48, 3], [1, 1], 96, 160, tf.int32), tf.uint8)

    def fine(x):                                           # the view's detail finer than a pixel's Gaussian
        return float(tf.reduce_mean(tf.abs(x - smooth(x, 1.0))))
    seeds = [tf.constant([9, k], tf.int64) for k in range(24)]
    plain = [augment(face, seed) for seed in seeds]
    always = [augment(face, seed, 1.0) for seed in seeds]
    ratios = np.array([fine(a) / fine(p) for a, p in zip(always, plain)])
    assert (ratios > 1.3).sum() >= 4 and (ratios < 0.7).sum() >= 2, ratios        # sharpened; softened
    half = [augment(face, seed, 0.5) for seed in seeds]
    same = sum(np.array_equal(h.numpy(), p.numpy()) for h, p in zip(half, plain))
    assert 4 <= same <= 20                                   # about half the views untouched
    np.testing.assert_array_equal(augment(face, seeds[3], 1.0).numpy(), always[3].numpy())
    # A flat face stays flat through every other change; the grain is what gives it texture.
    flat = tf.fill([48, 48, 3], tf.constant(128, tf.uint8))
    assert all(float(tf.math.reduce_std(augment(flat, seed))) < 1e-6 for seed in seeds[:6])
    assert sum(float(tf.math.reduce_std(augment(flat, seed, 1.0))) > 0.005 for seed in seeds[:6]) >= 4


@pytest.mark.slow
def test_training_writes_a_run_that_resumes_and_evaluates(estimator_run):
    root, savedir = estimator_run
    options = json.loads((savedir / "options.json").read_text())
    assert options["model"] == "estimator" and options["image_size"] == 32 and options["width"] == 4
    assert options["texture"] == 0.5
    assert any(name.startswith("events") for name in os.listdir(savedir / "summary"))
    again = call_main("--model", "estimator", "--is_train", "--prepared_dir", str(root / "prepared"), "--savedir",
                      str(savedir), "--epoch=3", *TINY)
    assert again.returncode == 0 and "Already trained 3 epochs" in again.stdout
    result = call_main("--model", "estimator", "--eval", "--testdir", str(root / "faces"), "--savedir", str(savedir))
    assert result.returncode == 0, result.stderr
    figures = json.loads((savedir / "eval_estimator.json").read_text())
    assert figures["num_faces"] == 160 and 0 <= figures["gender_accuracy"] <= 1 and figures["age_mae"] >= 0
    assert figures["estimator"].startswith(str(savedir))          # the run's own estimator, not the bundled one


@pytest.mark.slow
def test_bundling_a_run_and_loading_it(estimator_run, tmp_path):
    from face_aging.models.estimator import bundled, network
    _, savedir = estimator_run
    directory = str(tmp_path / "bundled")
    bundled.write(str(savedir), directory, figures={"age_mae": 1.0})
    assert bundled.available(directory)
    model, where = bundled.load(None, directory)
    run_model, _ = bundled.load(str(savedir))
    faces = np.random.RandomState(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(network.estimate(model, faces)[1], network.estimate(run_model, faces)[1], atol=1e-4)
    assert json.loads(open(os.path.join(directory, "options.json")).read())["_test_figures"] == {"age_mae": 1.0}
    with pytest.raises(bundled.EstimatorUnavailable, match="holds none"):
        bundled.load(None, str(tmp_path / "empty"))


def test_bundled_estimator_ships_and_says_what_it_sees():
    from face_aging.models.estimator import bundled, network
    model, where = bundled.load()
    assert "bundled estimator" in where and os.path.exists(bundled.CARD)
    female, years = network.estimate(model, np.zeros((2, 64, 64, 3), np.float32))
    assert female.shape == (2,) and np.all((0 <= female) & (female <= 1)) and np.all((0 <= years) & (years <= 100))


def test_faces_are_described_from_flags_names_and_the_estimator(monkeypatch):
    from face_aging.faces.inputs import FaceCrop
    from face_aging.inference.faceinfo import describe_faces
    crops = [FaceCrop("/x/34_1_0_20170109.jpg.chip.jpg", 0, 1, None), FaceCrop("/x/me.jpg", 0, 2, None),
             FaceCrop("/x/me.jpg", 1, 2, None)]
    images = np.zeros((3, 8, 8, 3), np.float32)
    asked = []

    class Fake:
        image_size = 8

    def fake_estimate(model, faces):
        asked.append(len(faces))
        return np.array([0.2, 0.9][:len(faces)]), np.array([41.0, 7.0][:len(faces)])

    # The estimator's answers are set here, so that what comes from where can be checked exactly.
    monkeypatch.setattr("face_aging.models.estimator.network.estimate", fake_estimate)
    infos = describe_faces(crops, images, load_estimator=Fake)
    flagged = describe_faces(crops, images, gender="female", age=60, load_estimator=Fake)
    assert asked == [2]                                   # only the two faces without a name, and only once
    assert [(i.gender_name, i.gender_from, i.age, i.age_from) for i in infos] == [
        ("female", "name", 34.0, "name"), ("male", "estimated", 41.0, "estimated"),
        ("female", "estimated", 7.0, "estimated")]
    assert [(i.gender_from, i.age, i.age_from) for i in flagged] == [("flag", 60.0, "flag")] * 3
    assert infos[2].record() == {"file": "/x/me.jpg", "face": 2, "gender": "female", "gender_from": "estimated",
                                 "age": 7.0, "age_from": "estimated"}


def test_estimator_flag_errors(tmp_path):
    result = call_main("--model", "estimator", "--is_train", "False", "--savedir", str(tmp_path))
    assert result.returncode == 2 and "--model estimator trains (--is_train) or is measured" in result.stderr
    result = call_main("--model", "estimator", "--is_train", "--estimator_width=0")
    assert result.returncode == 2 and "--estimator_width=0" in result.stderr
    result = call_main("--model", "estimator", "--is_train", "--estimator_texture=1.5")
    assert result.returncode == 2 and "--estimator_texture=1.5: a share of the training views" in result.stderr
