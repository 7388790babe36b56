"""main.py as a user runs it: flag parsing (`--is_train False`), validation before any work, test mode, resume."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, TINY_FLAGS, call_main, first_faces, parsed, run_main
from face_aging.cli import flags as cli_flags, validate as cli_validate
from face_aging.errors import FlagError


@pytest.mark.parametrize("args,expected", [
    ((), True),
    (("--is_train",), True),
    (("--is_train", "False"), False),
    (("--is_train", "false", "--testdir", "x"), False),
    (("--is_train", "0"), False),
    (("--is_train=false",), False),
    (("--is_train=False",), False),
    (("--nois_train",), False),
    (("--is_train", "True"), True),
    (("-is_train", "False"), False),
])
def test_is_train_forms(args, expected):
    assert parsed(*args).is_train is expected


def test_bool_value_merging_leaves_other_arguments_alone():
    bools = {"is_train", "use_trained_model"}
    argv = ["main.py", "--is_train", "--testdir", "False", "--use_trained_model", "no", "--epoch", "1"]
    assert cli_flags.normalize_bool_args(argv, bools) == ["main.py", "--is_train", "--testdir", "False",
                                                    "--use_trained_model=no", "--epoch", "1"]


@pytest.mark.parametrize("args,flag", [
    (("--image_size=100",), "--image_size=100"),
    (("--image_size=16",), "--image_size=16"),
    (("--image_size=0",), "--image_size=0"),
    (("--batch_size=0",), "--batch_size=0"),
    (("--batch_size=-3",), "--batch_size=-3"),
    (("--epoch=0",), "--epoch=0"),
    (("--model=foo",), "--model=foo"),
    (("--model=foo",), "allowed values are caae, pagan, combined, age, identity, prepare, import"),
    (("--weights=a,b,c",), "--weights"),
    (("--weights=1,2",), "--weights"),
    (("--weights=1,-1,0",), "--weights"),
    (("--target_age=200",), "--target_age=200"),
    (("--z_dim=55",), "--z_dim=55"),
    (("--beta1=1.5",), "--beta1"),
    (("--learning_rate=0",), "--learning_rate"),
    (("--image_size=256", "--gen_channels=64"), "--gen_channels=64"),
    (("--is_train", "False"), "--testdir is required"),
    (("--is_train", "False", "--testdir", "/no/such/folder"), "--testdir=/no/such/folder"),
    (("--init_checkpoint=/no/such/model-1",), "--init_checkpoint"),
])
def test_bad_flag_values_are_refused_with_the_flags_name(args, flag):
    with pytest.raises(FlagError, match=flag.replace("[", r"\[")):
        cli_validate.validate(parsed(*args))


def test_bad_flag_exits_before_any_work(tmp_path):
    savedir = tmp_path / "never"
    result = run_main("--image_size=100", f"--savedir={savedir}", timeout=60)
    assert result.returncode == 2
    assert "--image_size=100" in result.stderr and "power of two" in result.stderr
    assert "Traceback" not in result.stderr
    assert not savedir.exists()


def test_stray_argument_is_an_error_not_silently_ignored(tmp_path):
    result = run_main("--is_train", "False", "--testdir", str(tmp_path), "extra", timeout=60)
    assert result.returncode == 2 and "unexpected argument" in result.stderr


def test_missing_dataset_says_how_to_get_utkface(tmp_path):
    result = call_main("--dataset=NoSuchSet", f"--savedir={tmp_path / 's'}", *TINY_FLAGS)
    assert result.returncode == 1
    assert "UTKFace" in result.stderr and "--dataset synthetic" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("count", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_test_mode_with_space_separated_false(trained_run, face_folder, tmp_path, count):
    testdir = first_faces(face_folder, tmp_path / "faces", count)
    savedir = tmp_path / "run"
    shutil.copytree(trained_run, savedir)
    events_before = sorted(os.listdir(savedir / "summary"))
    # No architecture flags: test mode takes them from the run's options.json.
    result = call_main("--model", "caae", "--is_train", "False", "--testdir", str(testdir), "--savedir", str(savedir),
                       "--target_age", "65")
    assert result.returncode == 0, result.stderr
    assert "Testing Mode" in result.stdout and "Training Mode" not in result.stdout
    assert sorted(os.listdir(savedir / "summary")) == events_before       # it did not train
    for name in ("test_as_male.png", "test_as_female.png", "input.png"):
        assert Image.open(savedir / "test" / name).size == (count * 32, 10 * 32)
    aged = sorted(f for f in os.listdir(savedir / "test") if f.endswith("_age65.png"))
    # At the faces' own resolution (the 48-px files), not the model's 32.
    assert len(aged) == count and Image.open(savedir / "test" / aged[0]).size == (48, 48)
    male = np.asarray(Image.open(savedir / "test" / "test_as_male.png"), np.float32)
    female = np.asarray(Image.open(savedir / "test" / "test_as_female.png"), np.float32)
    assert male.shape == female.shape


def test_test_mode_outputs_are_the_checkpointed_models(lively_run, face_folder, tmp_path):
    """The grids main.py writes are exactly the restored model's faces at every age group."""
    from face_aging import images as imio
    from face_aging.inference.testmode import load_test_images
    from face_aging.models.caae.model import gender_labels
    savedir, model = lively_run
    savedir = shutil.copytree(savedir, tmp_path / "run")
    testdir = first_faces(face_folder, tmp_path / "faces", 4)
    result = call_main("--is_train", "False", f"--testdir={testdir}", f"--savedir={savedir}")
    assert result.returncode == 0, result.stderr
    faces, _ = load_test_images(str(testdir), 32)
    for gender, name in enumerate(("male", "female")):
        expected = imio.make_grid(imio.to_uint8(model.age_progression(faces, gender_labels(gender, 4)).reshape(
            -1, 32, 32, 3)), rows=10)
        written = np.asarray(Image.open(savedir / "test" / f"test_as_{name}.png"))
        assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
        assert written.std() > 10                               # real faces of a lively model, not a flat grey


def test_test_mode_without_a_checkpoint_is_a_clear_error(face_folder, tmp_path):
    result = call_main("--is_train=false", f"--testdir={face_folder}", f"--savedir={tmp_path}", *TINY_FLAGS)
    assert result.returncode == 1
    assert "No checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_test_mode_with_no_images_is_a_clear_error(trained_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a face")
    result = call_main("--nois_train", f"--testdir={empty}", f"--savedir={trained_run}")
    assert result.returncode == 1 and "no readable JPEG or PNG" in result.stderr


@pytest.mark.slow
def test_killed_run_resumes_mid_epoch_and_finishes(face_folder, tmp_path):
    """SIGTERM during training saves a checkpoint; the same command continues the step count to the end."""
    savedir = tmp_path / "run"
    args = [sys.executable, os.path.join(REPO, "main.py"), f"--dataset={face_folder}", f"--savedir={savedir}",
            "--epoch=3", "--checkpoint_minutes=0.0001", *TINY_FLAGS]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    index = savedir / "checkpoint" / "checkpoint"
    while time.time() < deadline and not (index.exists() and "model-" in index.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    import tensorflow as tf
    stopped_at = int(tf.train.latest_checkpoint(str(savedir / "checkpoint")).rsplit("-", 1)[1])
    assert 1 <= stopped_at < 18, (out, err)
    assert "Stopped by SIGTERM" in err
    result = call_main(f"--dataset={face_folder}", f"--savedir={savedir}", "--epoch=3", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    assert f"Resumed from {savedir}/checkpoint/model-{stopped_at} (step {stopped_at})" in result.stdout
    assert tf.train.latest_checkpoint(str(savedir / "checkpoint")).endswith("model-18")
    assert sorted(os.listdir(savedir / "samples")) == ["01.png", "02.png", "03.png"]


@pytest.mark.slow
def test_original_tf1_checkpoint_trains_on_and_ages_faces(face_folder, tmp_path):
    """A user of the original code: test mode straight from their checkpoint, then training on from it, then
    pointing --savedir at their original run directory."""
    from helpers import original_shapes, random_arrays, write_tf1_checkpoint
    original_run = tmp_path / "original_save"
    arrays = random_arrays(original_shapes(32, enc=8, gen=64), seed=3)
    prefix = write_tf1_checkpoint(str(original_run / "checkpoint"), arrays, global_steps=(40,))[0]
    testdir = tmp_path / "faces"
    testdir.mkdir()
    shutil.copy(os.path.join(face_folder, sorted(os.listdir(face_folder))[0]), testdir)

    result = call_main("--is_train", "False", f"--testdir={testdir}", f"--savedir={tmp_path / 'fresh'}",
                       f"--init_checkpoint={prefix}", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    assert "original TF1 checkpoint" in result.stdout
    assert Image.open(tmp_path / "fresh" / "test" / "test_as_male.png").size == (32, 320)

    result = call_main(f"--dataset={face_folder}", f"--savedir={tmp_path / 'continued'}", "--epoch=7",
                       f"--init_checkpoint={prefix}", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    assert "Initialised from the original TF1 checkpoint" in result.stdout and "(step 40)" in result.stdout
    import tensorflow as tf
    # Step 40 is inside epoch 7 (6 batches an epoch): the run finishes that epoch and stops at 42.
    assert tf.train.latest_checkpoint(str(tmp_path / "continued" / "checkpoint")).endswith("model-42")

    result = call_main(f"--dataset={face_folder}", f"--savedir={original_run}", "--epoch=7", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    assert (original_run / "checkpoint" / "checkpoint.tf1").exists()
    assert os.path.exists(prefix + ".index")                        # the original's files are kept
    assert tf.train.latest_checkpoint(str(original_run / "checkpoint")).endswith("model-42")


def test_mismatched_tf1_checkpoint_names_the_tensors(tmp_path):
    from helpers import original_shapes, random_arrays, write_tf1_checkpoint
    prefix = write_tf1_checkpoint(str(tmp_path / "ckpt"), random_arrays(original_shapes(64, enc=8, gen=64), 1))[0]
    result = call_main("--is_train", "False", f"--testdir={tmp_path}", f"--savedir={tmp_path / 's'}",
                       f"--init_checkpoint={prefix}", *TINY_FLAGS)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "E_fc/w" in result.stderr and "--image_size 64" in result.stderr
