"""Residual aging (face_aging/models/caae/residual.py): the input plus k times G's change from the face's own group, in
the model, test mode, --eval and the export; and --residual's flag checks."""

import json
import shutil

import numpy as np
import pytest
from absl import flags

from helpers import call_main, first_faces
from face_aging.cli import flags as cli_flags, validate as cli_validate
from face_aging.errors import FlagError


def _parsed(*args):
    fv = flags.FlagValues()
    cli_flags.define_flags(fv)
    cli_flags.parse_flags(["main.py", *args], fv)
    return fv


def test_own_group_is_the_closest_reconstruction_and_its_output_is_the_input():
    from face_aging.models.caae.residual import own_groups, residual_progression
    rng = np.random.RandomState(0)
    faces = rng.uniform(-0.5, 0.5, (3, 8, 8, 3)).astype(np.float32)
    offsets = np.linspace(-0.4, 0.4, 10).astype(np.float32)           # group g's reconstruction: face + offset
    own = np.array([2, 5, 7])
    shift = offsets[None, :] - offsets[own][:, None] + np.array([0.01, -0.02, 0.03])[:, None]   # [3, 10]
    progression = faces[None] + shift.T[:, :, None, None, None]       # [10, 3, 8, 8, 3]; group own[i] is closest
    assert list(own_groups(faces, progression).numpy()) == list(own)
    out = residual_progression(faces, progression, 1.5).numpy()
    for i, o in enumerate(own):
        np.testing.assert_allclose(out[o, i], faces[i], atol=1e-6)    # its own group: the input itself
        for t in (0, 9):
            expected = np.clip(faces[i] + 1.5 * (progression[t, i] - progression[o, i]), -1, 1)
            np.testing.assert_allclose(out[t, i], expected, atol=1e-6)
    assert out.min() >= -1 and out.max() <= 1
    assert np.abs(out[9, 0] - faces[0]).mean() > 0.5                  # far groups do change the face


def test_smoothing_keeps_flat_changes_and_removes_stripes():
    from face_aging.models.caae.residual import smooth
    flat = np.full((2, 3, 16, 16, 3), 0.3, np.float32)
    np.testing.assert_allclose(smooth(flat, 1.0).numpy(), flat, atol=1e-6)           # a uniform change stays
    stripes = np.zeros((1, 16, 16, 3), np.float32)
    stripes[:, ::2] = 0.2                                                             # one row in two, as G's pattern
    out = smooth(stripes, 1.0).numpy()
    assert np.ptp(out[:, 4:12]) < 0.02 and abs(out.mean() - 0.1) < 0.01              # to its mean, nearly flat
    impulse = np.zeros((1, 16, 16, 1), np.float32)
    impulse[0, 8, 8] = 1.0
    spread = smooth(impulse, 1.0).numpy()
    assert spread.sum() == pytest.approx(1.0, abs=1e-5) and 0.1 < spread[0, 8, 8, 0] < 0.2
    np.testing.assert_allclose(spread[0, 8, 6], spread[0, 6, 8], atol=1e-7)          # the same across and down
    assert np.array_equal(smooth(impulse, 0).numpy(), impulse)


def test_the_models_residual_progression_is_the_formula_over_its_own_faces(tiny_config):
    from face_aging.models.caae.model import AgingModel, gender_labels
    from face_aging.models.caae.residual import SMOOTH_PER_64, guarded_change, smooth
    model = AgingModel(tiny_config)
    faces = np.random.RandomState(1).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    genders = gender_labels(1, 4)
    raw = model.age_progression(faces, genders)
    assert np.array_equal(model.age_progression(faces, genders, 0.0), raw)     # 0: G's own faces
    out = model.age_progression(faces, genders, 2.0)
    own = np.abs(raw - faces[None]).mean(axis=(2, 3, 4)).argmin(0)
    for i, o in enumerate(own):
        change = smooth(raw[:, i] - raw[o, i], SMOOTH_PER_64 * 32 / 64).numpy()    # sigma scales with the size
        change = guarded_change(faces[i:i + 1], change[:, None]).numpy()[:, 0]     # the ghost guard (default)
        np.testing.assert_allclose(out[:, i], np.clip(faces[i] + 2.0 * change, -1, 1), atol=1e-5)
        np.testing.assert_allclose(out[o, i], faces[i], atol=1e-6)


@pytest.mark.parametrize("args,message", [
    (("--is_train=False", "--testdir=.", "--residual=-1"), "--residual=-1"),
    (("--is_train=False", "--testdir=.", "--residual=strong"), "--residual=strong"),
    (("--is_train=False", "--testdir=.", "--residual=nan"), "--residual=nan"),
    (("--is_train", "--residual=2"), "is for test mode"),
    (("--model=pagan", "--is_train=False", "--testdir=.", "--residual=2"), "CAAE's"),
    (("--is_train=False", "--testdir=.", "--input_age=old"), "--input_age=old"),
    (("--is_train=False", "--testdir=.", "--input_age=130"), "--input_age=130"),
    (("--is_train", "--input_age=30"), "--input_age is for"),
])
def test_bad_residual_flags_are_refused_with_the_flags_name(args, message):
    with pytest.raises(FlagError, match=message):
        cli_validate.validate(_parsed(*args))


def test_own_groups_from_names_estimate_or_a_given_age():
    from face_aging.models.caae.infer import input_groups, name_age
    ages = [name_age("/x/25_0_1_20170116.jpg.chip.jpg"), name_age("/x/holiday.jpg"), name_age("/x/80_1_0_1.jpg")]
    assert np.isnan(ages[1]) and ages[0] == 25
    assert list(input_groups(ages, "auto")) == [4, -1, 9]                       # 21-30, to estimate, 71+
    assert list(input_groups(ages, "estimate")) == [-1, -1, -1]
    assert list(input_groups(ages, 45)) == [6, 6, 6]


def test_residual_flag_values():
    assert cli_validate.parse_residual(_parsed("--is_train=False")) is None            # auto: the model decides
    assert cli_validate.parse_residual(_parsed("--residual=1.5")) == 1.5
    assert cli_validate.parse_residual(_parsed("--residual=0")) == 0.0


@pytest.mark.slow
def test_test_mode_eval_and_export_with_residual_aging(lively_run, face_folder, tmp_path):
    """A run's own checkpoint gives G's faces unless --residual says otherwise; --residual K makes test mode's grids,
    --eval's outputs and the export's residual_progression the model's residual progression."""
    from PIL import Image
    from face_aging import images as imio
    from face_aging.models.caae.infer import input_groups, name_age
    from face_aging.inference.testmode import load_test_images
    from face_aging.models.caae.model import gender_labels
    savedir, model = lively_run
    savedir = shutil.copytree(savedir, tmp_path / "run")
    testdir = first_faces(face_folder, tmp_path / "faces", 3)
    faces, paths = load_test_images(str(testdir), 32)
    own = input_groups([name_age(p) for p in paths], "auto")                    # from the UTKFace names
    assert (own >= 0).all()

    result = call_main("--is_train", "False", f"--testdir={testdir}", f"--savedir={savedir}", "--residual=1.5")
    assert result.returncode == 0, result.stderr
    assert "residual aging, strength 1.5" in result.stdout
    expected = imio.make_grid(imio.to_uint8(model.age_progression(faces, gender_labels(0, 3), 1.5, own).reshape(
        -1, 32, 32, 3)), rows=10)
    written = np.asarray(Image.open(savedir / "test" / "test_as_male.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    # --input_age 40: every face's 31-40 row is the input itself.
    result = call_main("--is_train", "False", f"--testdir={testdir}", f"--savedir={savedir}", "--residual=1.5",
                       "--input_age=40")
    assert result.returncode == 0, result.stderr
    written = np.asarray(Image.open(savedir / "test" / "test_as_female.png"))
    row = written[5 * 32:6 * 32].reshape(32, 3, 32, 3).transpose(1, 0, 2, 3)
    assert np.abs(row.astype(int) - imio.to_uint8(faces).astype(int)).max() <= 1
    raw = imio.make_grid(imio.to_uint8(model.age_progression(faces, gender_labels(0, 3)).reshape(-1, 32, 32, 3)),
                         rows=10)
    assert np.abs(written.astype(int) - raw.astype(int)).mean() > 5           # not G's faces

    result = call_main("--eval", f"--testdir={testdir}", f"--savedir={savedir}", "--age_judge=none",
                       "--identity_judge=none", "--residual=1.5")
    assert result.returncode == 0, result.stderr
    report = json.load(open(savedir / "eval" / "eval.json"))
    assert report["residual"] == {"strength": 1.5, "input_age": "auto"}
    assert "residual aging, strength 1.5" in (savedir / "eval" / "eval.md").read_text()
    result = call_main("--eval", f"--testdir={testdir}", f"--savedir={savedir}", "--age_judge=none",
                       "--identity_judge=none")
    assert json.load(open(savedir / "eval" / "eval.json"))["residual"]["strength"] == 0.0   # a run's own: off

    exported = tmp_path / "exported"
    result = call_main(f"--export={exported}", f"--savedir={savedir}", "--residual=1.5")
    assert result.returncode == 0, result.stderr
    assert json.load(open(exported / "export.json"))["recommended_residual_strength"] == 1.5
    import tensorflow as tf
    loaded = tf.saved_model.load(str(exported))
    images = imio.to_uint8(faces)
    out = loaded.signatures["residual_progression"](image=tf.constant(images), gender=tf.constant([0], tf.int32),
                                                    strength=tf.constant(1.5))["aged"].numpy()    # [N, 10, S, S, 3]
    from face_aging.data.pipeline import scale_to_unit
    expected = imio.to_uint8(model.age_progression(scale_to_unit(images).numpy(), gender_labels(0, 3), 1.5))
    assert np.abs(out.astype(int) - np.transpose(expected, (1, 0, 2, 3, 4)).astype(int)).max() <= 1
