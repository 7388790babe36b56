"""How old each aged face looks (face_aging/inference/looks.py): read back by the estimator, written to faces.json and
said where a face is far from the age asked, in test mode and on the page."""

import json
import os

import numpy as np
import pytest

from helpers import first_faces
from face_aging.inference import looks


def test_faces_far_from_their_age_are_named_each_way():
    ages = [10, 25, 45, 65, 80]
    assert looks.said(ages, [79.6, 79.6, 79.8, 81.2, 80.1]) == (
        "asked for 10, 25, 45 and 65 years, it looks 80-81, more than 10 years older than asked")
    assert looks.said([30, 70], [33.0, 55.4]) == (
        "asked for 70 years, it looks 55, more than 10 years younger than asked")
    both = looks.said([5, 40, 80], [30.0, 41.0, 60.0])
    assert both.startswith("asked for 5 years, it looks 30") and "; asked for 80 years, it looks 60" in both
    assert looks.said([20, 40], [29.9, 30.1]) == ""                      # within MISS_YEARS each way
    assert looks.said([1], [30.0]) == "asked for 1 year, it looks 30, more than 10 years older than asked"
    assert looks.misses([20, 40], [30.2, 29.8]) == [(20, 30.2), (40, 29.8)]
    assert looks.record([10, 80], [79.64, np.float32(80.06)]) == [{"age": 10, "looks": 79.6},
                                                                 {"age": 80, "looks": 80.1}]


def test_the_reading_is_the_estimators_single_view_at_any_size():
    import tensorflow as tf
    from face_aging.models.estimator import network
    model = network.build(32, 4)
    faces = np.random.default_rng(0).uniform(-1, 1, (3, 48, 48, 3)).astype(np.float32)
    expected = network.expected_age(model(tf.image.resize(faces, [32, 32], antialias=True), training=False)[1])
    np.testing.assert_allclose(looks.read(model, faces), expected.numpy(), atol=1e-4)
    assert looks.read(model, np.zeros((0, 32, 32, 3))).shape == (0,)


def _not_aging(ager, monkeypatch):
    """The ager made to return every face as it is, at every age."""
    monkeypatch.setattr(ager, "age_each", lambda faces, genders, own, wanted: [
        np.stack([faces[i]] * len(years)) for i, years in enumerate(wanted)])
    monkeypatch.setattr(ager, "age", lambda faces, genders, own, ages: np.stack([faces] * len(ages)))
    return ager


def test_test_mode_writes_how_old_each_face_looks_and_names_the_misses(lively_run, tiny_config, face_folder,
                                                                       tmp_path, monkeypatch, capsys):
    """A model that does not age: every output reads as its input does, faces.json says so for each age asked, and
    the console names the ages more than MISS_YEARS from that reading."""
    import shutil
    from face_aging.inference.agers import load_ager
    from face_aging.inference.testmode import TestOptions, run_test
    savedir = str(shutil.copytree(lively_run[0], tmp_path / "run"))
    chips = first_faces(face_folder, tmp_path / "chips", 2)
    ager = _not_aging(load_ager("caae", savedir, architecture=tiny_config), monkeypatch)
    asked = [5, 40, 95]
    run_test(TestOptions(testdir=str(chips), savedir=savedir, ages=tuple(asked), align="off", config=tiny_config),
             ager=ager)
    said = capsys.readouterr().out
    with open(os.path.join(savedir, "test", "faces.json")) as f:
        faces = json.load(f)
    assert len(faces) == 2
    for face in faces:
        assert [o["age"] for o in face["outputs"]] == asked
        reading = face["outputs"][0]["looks"]
        assert all(o["looks"] == reading for o in face["outputs"])          # the same face at every age
        assert 0 <= reading <= 100
        name = os.path.basename(face["file"]).split(".")[0]
        expected = looks.said(asked, [reading] * 3)
        assert expected                                                       # 5 and 95 cannot both be near it
        assert f"\t{name}: {expected}" in said
    assert "the bundled age estimator's reading" in said


def test_test_mode_without_ages_reads_nothing(lively_run, tiny_config, face_folder, tmp_path):
    import shutil
    from face_aging.inference.testmode import TestOptions, run_test
    savedir = str(shutil.copytree(lively_run[0], tmp_path / "run"))
    chips = first_faces(face_folder, tmp_path / "chips", 1)
    run_test(TestOptions(testdir=str(chips), savedir=savedir, align="off", config=tiny_config))
    with open(os.path.join(savedir, "test", "faces.json")) as f:
        assert "outputs" not in json.load(f)[0]


def test_the_page_says_where_a_face_does_not_look_the_age_asked(lively_run, tiny_config, face_folder, tmp_path,
                                                                 monkeypatch):
    pytest.importorskip("mtcnn")
    import shutil
    from face_aging.inference import app
    from face_aging.inference.agers import load_ager
    chip = shutil.copy(os.path.join(face_folder, sorted(os.listdir(face_folder))[0]), tmp_path)
    page = app.Page(_not_aging(load_ager("caae", lively_run[0], architecture=tiny_config), monkeypatch),
                    str(tmp_path))
    reading = looks.read(looks.estimator_or_none(), page.found(str(chip)).images[:1])[0]
    expected = looks.said([1, 100], [reading] * 2)
    assert expected and page.age(str(chip), 1, [1, 100], "male", "").looks_note == expected
    # An age its reading lies near is not named.
    assert page.age(str(chip), 1, [int(round(reading))], "male", "").looks_note == ""
