"""What a training run survives: SIGKILL at any point (during a step, while writing a checkpoint, while writing
samples), signals during a write, damaged or foreign checkpoints, NaN/Inf losses and weights, a full disk.

Kills happen in a subprocess that runs main.py through a small wrapper (written by the test) which patches one
library or TensorFlow function in that subprocess to kill it at the chosen moment; the restart is main.py's entry
point with the same flags, unpatched (in this process: tests/helpers.py's call_main).
"""

import glob
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import REPO, call_main
from face_aging.training import checkpointing
from face_aging.models.caae.model import CAAE
from face_aging.models.caae.config import TrainOptions
from face_aging.models.caae.train import train
from face_aging.training.loop import TrainingError

WRAPPER = r'''
"""Run main.py (argv[2:]) after patching one function to kill this process (or send it a signal) at one moment."""
import json, os, runpy, signal, sys, threading

spec = json.loads(sys.argv[1])
main = sys.argv[2]
sys.argv = [main] + sys.argv[3:]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def act():
    if spec["action"] == "SIGKILL":
        die()
    os.kill(os.getpid(), getattr(signal, spec["action"]))  # delivered now; the process carries on


if spec["kind"] == "step":  # the Nth training step of this process: killed while it runs
    import importlib
    module, name = spec["target"].split(":")
    cls = getattr(importlib.import_module(module), name)
    original_init = cls.__init__
    calls = [0]

    def __init__(self, *args, **kwargs):  # the compiled step is an attribute each model makes for itself
        original_init(self, *args, **kwargs)
        compiled = self.train_step

        def train_step(*args):
            calls[0] += 1
            if calls[0] != spec["at"]:
                return compiled(*args)
            threading.Timer(0.005, die).start()
            compiled(*args)
            die()
        self.train_step = train_step

    cls.__init__ = __init__
elif spec["kind"] == "state":  # the checkpoint's files are written; the state file is not yet updated
    from tensorflow.python.checkpoint import checkpoint_management
    original = checkpoint_management.update_checkpoint_state_internal

    def update(save_dir, model_checkpoint_path, *args, **kwargs):
        if model_checkpoint_path.endswith(os.sep + spec["at"]):
            act()
        return original(save_dir, model_checkpoint_path, *args, **kwargs)

    checkpoint_management.update_checkpoint_state_internal = update
elif spec["kind"] == "merge":  # mid-way: the tensors are written to model-N_temp/, not yet merged under model-N
    from tensorflow.python.ops import gen_io_ops
    original = gen_io_ops.merge_v2_checkpoints

    def merge(prefixes, destination, *args, **kwargs):
        if destination.numpy().decode().endswith(os.sep + spec["at"]):
            act()
        return original(prefixes, destination, *args, **kwargs)

    gen_io_ops.merge_v2_checkpoints = merge
elif spec["kind"] == "image":  # half of the PNG's bytes are written when it happens
    import io
    import numpy as np
    from PIL import Image
    from face_aging import fileio, images
    original = images.save_image

    def save_image(array, path):
        if not path.endswith(spec["at"]):
            return original(array, path)
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(array)).save(buffer, format="PNG")
        data = buffer.getvalue()
        with fileio.atomic_write(path) as f:
            f.write(data[:len(data) // 2])
            f.flush()
            act()
            f.write(data[len(data) // 2:])

    images.save_image = save_image
runpy.run_path(main, run_name="__main__")
'''


def run_wrapped(tmp_path, spec, *args, preexec_fn=None, timeout=300):
    """main.py with `args`, in a subprocess patched as `spec` says (see WRAPPER)."""
    script = tmp_path / "kill_wrapper.py"
    script.write_text(WRAPPER)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(script), json.dumps(spec), os.path.join(REPO, "main.py"), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn)


def latest(run):
    state = tf.train.get_checkpoint_state(str(run / "checkpoint"))
    return os.path.basename(state.model_checkpoint_path) if state else None


def checkpoints(run):
    return sorted((os.path.basename(p)[:-len(".index")] for p in glob.glob(str(run / "checkpoint" / "model-*.index"))),
                  key=checkpointing.checkpoint_step)


def pngs(folder):
    """The images in `folder`, as a user (or an image viewer) lists them: not hidden temporary files."""
    return sorted(f for f in os.listdir(folder) if f.endswith(".png") and not f.startswith("."))


def temp_files(run):
    return sorted(os.path.relpath(p, run) for p in glob.glob(str(run / "**" / ".tmp-*"), recursive=True))


def assert_outputs_complete(run):
    """Every image loads in full, every JSON parses, no temporary file is left."""
    for path in glob.glob(str(run / "**" / "*.png"), recursive=True):
        with Image.open(path) as image:
            image.load()
    for path in glob.glob(str(run / "**" / "*.json"), recursive=True):
        with open(path) as f:
            json.load(f)
    assert temp_files(run) == []


def digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))
            if (folder / name).is_file()}


SMALL_FLAGS = ["--image_size=32", "--enc_channels=4", "--gen_channels=16", "--batch_size=8"]


@pytest.fixture(scope="module")
def small_config():
    from face_aging.models.caae.config import CAAEConfig
    return CAAEConfig(image_size=32, enc_channels=4, gen_channels=16)


@pytest.fixture(scope="module")
def small_faces(tmp_path_factory):
    """40 synthetic UTKFace-named faces at 32x32: an epoch is a few batches of 8."""
    from face_aging.data.synthetic import write_utkface_folder
    folder = tmp_path_factory.mktemp("small_faces")
    write_utkface_folder(str(folder), 40, 32, seed=7)
    return str(folder)


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory, small_faces, small_config):
    """A small CAAE run after 2 epochs, checkpointed after each; returns (run directory, steps per epoch)."""
    savedir = tmp_path_factory.mktemp("two") / "run"
    model = train(TrainOptions(savedir=str(savedir), dataset=small_faces, epoch=2, batch_size=8, save_every_epochs=1,
                               config=small_config))
    spe = int(model.step) // 2
    assert checkpoints(savedir) == [f"model-{spe}", f"model-{2 * spe}"]
    return savedir, spe


def copy_run(source, tmp_path):
    return shutil.copytree(source[0], tmp_path / "run"), source[1]


# --- kills -----------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_caae_killed_at_every_point_resumes_from_the_last_complete_checkpoint(small_faces, tmp_path):
    """One run killed at each point in turn (4 epochs, a checkpoint every epoch), then finished by the same plain
    command. Each restart is main.py with the same flags (the wrapper patches only what kills it later): it resumes
    from the last complete checkpoint, and no output is ever half-written."""
    run = tmp_path / "run"
    args = [f"--dataset={small_faces}", f"--savedir={run}", "--epoch=4", "--save_every_epochs=1", *SMALL_FLAGS]

    # 1. SIGKILL while step 6 runs (in epoch 2): the checkpoint of epoch 1 is the last one.
    result = run_wrapped(tmp_path, {"kind": "step", "target": "face_aging.models.caae.model:CAAE", "at": 6,
                                    "action": "SIGKILL"}, *args)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert "Training from random initialisation" in result.stdout
    spe = int(re.search(r"(\d+) batches of 8 an epoch", result.stdout).group(1))
    assert 3 <= spe < 6, result.stdout
    first, second, third, total = (f"model-{spe}", f"model-{2 * spe}", f"model-{3 * spe}", 4 * spe)
    resumed_first = f"Resumed from {run}/checkpoint/{first} (step {spe})"
    assert latest(run) == first and checkpoints(run) == [first]
    assert pngs(run / "samples") == ["01.png"]

    # 2. SIGKILL after TensorFlow wrote the second checkpoint's files, before the state file recorded it.
    result = run_wrapped(tmp_path, {"kind": "state", "at": second, "action": "SIGKILL"}, *args)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert resumed_first in result.stdout
    assert checkpoints(run) == [first, second] and latest(run) == first      # written, never committed

    # 3. SIGKILL mid-way through writing it (its tensors in model-N_temp/, not yet merged under model-N).
    result = run_wrapped(tmp_path, {"kind": "merge", "at": second, "action": "SIGKILL"}, *args)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert resumed_first in result.stdout                                   # not the uncommitted one of stage 2
    assert (run / "checkpoint" / f"{second}_temp").is_dir()
    assert checkpoints(run) == [first] and latest(run) == first

    # 4. SIGKILL half-way through writing samples/03.png (after the second checkpoint was saved).
    result = run_wrapped(tmp_path, {"kind": "image", "at": os.path.join("samples", "03.png"), "action": "SIGKILL"},
                         *args)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert resumed_first in result.stdout
    assert not (run / "checkpoint" / f"{second}_temp").exists()             # cleaned up at the start
    assert latest(run) == second and checkpoints(run) == [first, second]
    assert pngs(run / "samples") == ["01.png", "02.png"]                    # no half-written 03.png, ...
    leftovers = temp_files(run)
    assert len(leftovers) == 1 and leftovers[0].startswith(os.path.join("samples", ".tmp-"))   # only a .tmp- file

    # 5. SIGTERM while the third checkpoint is being written: the write completes, the run stops after one more step.
    result = run_wrapped(tmp_path, {"kind": "merge", "at": third, "action": "SIGTERM"}, *args)
    assert result.returncode == 1, result.stderr
    assert f"Resumed from {run}/checkpoint/{second} (step {2 * spe})" in result.stdout
    assert f"Stopped by SIGTERM at step {3 * spe + 1}" in result.stderr
    assert temp_files(run) == []                                            # the stale .tmp- file is gone
    stopped = f"model-{3 * spe + 1}"
    assert latest(run) == stopped and checkpoints(run) == [second, third, stopped]

    # 6. The same plain command finishes the run; the step counter continues to the end.
    result = call_main(*args)
    assert result.returncode == 0, result.stderr
    assert f"Resumed from {run}/checkpoint/{stopped} (step {3 * spe + 1})" in result.stdout
    assert f"Done: 4 epochs, step {total}" in result.stdout
    assert latest(run) == f"model-{total}" and checkpoints(run) == [third, stopped, f"model-{total}"]
    assert pngs(run / "samples") == ["01.png", "02.png", "03.png", "04.png"]
    assert pngs(run / "test") == ["01.png", "02.png", "03.png", "04.png", "input.png"]
    assert_outputs_complete(run)
    reader = tf.train.load_checkpoint(str(run / "checkpoint" / f"model-{total}"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == total
    assert reader.get_tensor("opt_eg/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == total   # the optimisers' count too


# --- damaged and foreign checkpoints ---------------------------------------------------------------------------------

def damage(run, how, step):
    prefix = run / "checkpoint" / f"model-{step}"
    data, index = f"{prefix}.data-00000-of-00001", f"{prefix}.index"
    if how == "truncated data":
        os.truncate(data, os.path.getsize(data) // 2)
    elif how == "truncated index":
        os.truncate(index, os.path.getsize(index) // 2)
    elif how == "missing index":
        os.remove(index)
    elif how == "missing data":
        os.remove(data)
    return prefix


def small_options(run, faces, config, **changes):
    return TrainOptions(**{**dict(savedir=str(run), dataset=faces, epoch=2, batch_size=8, config=config), **changes})


@pytest.mark.slow
@pytest.mark.parametrize("how, complaint", [
    ("truncated data", "its data file {prefix}.data-00000-of-00001 is truncated or corrupt"),
    ("truncated index", "its index file {prefix}.index is truncated or corrupt"),
    ("missing index", "its index file {prefix}.index is missing"),
    ("missing data", "its data file {prefix}.data-00000-of-00001 is missing"),
])
def test_damaged_checkpoint_names_the_file_and_the_older_one_that_restores(two_checkpoints, small_faces,
                                                                           small_config, tmp_path, how, complaint):
    run, spe = copy_run(two_checkpoints, tmp_path)
    prefix = damage(run, how, 2 * spe)
    before = digest(run / "checkpoint")
    with pytest.raises(TrainingError) as error:
        train(small_options(run, small_faces, small_config))
    message = str(error.value)
    assert isinstance(error.value, checkpointing.BadCheckpointError)
    assert message.startswith(f"Checkpoint {prefix} cannot be restored: " + complaint.format(prefix=prefix)), message
    assert f"The older checkpoint {run}/checkpoint/model-{spe} (step {spe}) restores" in message
    assert "pass --on_bad_checkpoint=fallback" in message and "\n" not in message
    assert digest(run / "checkpoint") == before                                   # nothing touched


@pytest.mark.slow
def test_fallback_sets_the_bad_checkpoint_aside_and_continues_from_the_older_one(two_checkpoints, small_faces,
                                                                                 small_config, tmp_path, caplog):
    run, spe = copy_run(two_checkpoints, tmp_path)
    damage(run, "truncated data", 2 * spe)
    bad = f"model-{2 * spe}"
    files = digest(run / "checkpoint")
    options = small_options(run, small_faces, small_config, epoch=1, on_bad_checkpoint="fallback")
    with caplog.at_level(logging.WARNING):
        model = train(options)                        # restored at the end of epoch 1: nothing left to train
    assert int(model.step) == spe
    warning = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(warning) == 1 and f"{run}/checkpoint/set_aside/{bad}" in warning[0]
    assert f"{bad}.data-00000-of-00001 is truncated" in warning[0]
    # Moved, not deleted, byte for byte; the state file and a new manager agree on what is left.
    assert digest(run / "checkpoint" / "set_aside") == {k: v for k, v in files.items() if k.startswith(bad + ".")}
    assert latest(run) == f"model-{spe}" and checkpoints(run) == [f"model-{spe}"]
    manager = checkpointing.make_manager(CAAE(small_config).checkpoint, str(run / "checkpoint"), 3)
    assert [os.path.basename(p) for p in manager.checkpoints] == [f"model-{spe}"]


@pytest.mark.slow
def test_fallback_past_a_checkpoint_whose_files_are_gone(two_checkpoints, small_faces, small_config, tmp_path):
    run, spe = copy_run(two_checkpoints, tmp_path)
    damage(run, "missing index", 2 * spe)
    damage(run, "missing data", 2 * spe)
    model = train(small_options(run, small_faces, small_config, epoch=1, on_bad_checkpoint="fallback"))
    assert int(model.step) == spe and latest(run) == f"model-{spe}" and checkpoints(run) == [f"model-{spe}"]
    assert not (run / "checkpoint" / "set_aside").exists()                       # nothing there to set aside


@pytest.mark.slow
def test_every_checkpoint_damaged_is_an_error_even_with_the_fallback(two_checkpoints, small_faces, small_config,
                                                                      tmp_path):
    run, spe = copy_run(two_checkpoints, tmp_path)
    damage(run, "truncated data", 2 * spe)
    damage(run, "missing index", spe)
    with pytest.raises(TrainingError, match=rf"cannot be restored: .*model-{2 * spe}.data.* is truncated.*Also "
                                            rf"unusable: model-{spe} \(its index file .*model-{spe}.index is missing"
                                            rf"\)\. No older checkpoint .* restores"):
        train(small_options(run, small_faces, small_config, on_bad_checkpoint="fallback"))
    assert not (run / "checkpoint" / "set_aside").exists()


@pytest.mark.slow
def test_unreadable_state_file_is_named_and_rebuilt_by_the_fallback(two_checkpoints, small_faces, small_config,
                                                                    tmp_path):
    run, spe = copy_run(two_checkpoints, tmp_path)
    state = run / "checkpoint" / "checkpoint"
    state.write_text(state.read_text()[:10])
    options = small_options(run, small_faces, small_config)
    with pytest.raises(TrainingError, match=rf"the checkpoint state file {state} is unreadable .* The "
                                            rf"checkpoint {run}/checkpoint/model-{2 * spe} \(step {2 * spe}\) "
                                            rf"restores: pass --on_bad_checkpoint=fallback to rebuild the state file"):
        train(options)
    model = train(small_options(run, small_faces, small_config, on_bad_checkpoint="fallback"))
    assert int(model.step) == 2 * spe
    assert latest(run) == f"model-{2 * spe}" and (run / "checkpoint" / "set_aside" / "checkpoint").exists()


@pytest.mark.slow
def test_checkpoint_of_another_image_size_names_the_shapes(two_checkpoints, small_faces, tmp_path):
    from face_aging.models.caae.config import CAAEConfig
    run, spe = copy_run(two_checkpoints, tmp_path)
    with pytest.raises(TrainingError) as error:
        train(small_options(run, small_faces, CAAEConfig(image_size=64, enc_channels=4, gen_channels=32)))
    prefix = f"{run}/checkpoint/model-{2 * spe}"
    assert re.match(rf"Checkpoint {prefix} does not fit this model \(64x64, z_dim 50, enc_channels 4, gen_channels "
                    rf"32\): {prefix}.index holds \S+ with shape \([\d, ]+\), but this model \(64x64.*\) expects "
                    rf"\([\d, ]+\): it was written with another --image_size", str(error.value)), str(error.value)
    assert "Run with the flags it was trained with" in str(error.value)


@pytest.mark.slow
def test_main_py_reports_a_bad_checkpoint_in_one_line(two_checkpoints, small_faces, tmp_path):
    run, spe = copy_run(two_checkpoints, tmp_path)
    prefix = damage(run, "truncated index", 2 * spe)
    result = call_main(f"--dataset={small_faces}", f"--savedir={run}", "--epoch=2", *SMALL_FLAGS)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and f"Checkpoint {prefix} cannot be restored" in errors[0]
    assert "--on_bad_checkpoint=fallback" in errors[0]


# --- NaN and Inf -----------------------------------------------------------------------------------------------------

def finite_weights(variables):
    return all(np.isfinite(v.numpy()).all() for v in variables if tf.as_dtype(v.dtype).is_floating)


@pytest.mark.slow
def test_diverging_caae_stops_at_the_first_nan_without_saving(two_checkpoints, small_faces, small_config, tmp_path):
    """--learning_rate=1e12 diverges within a few steps. The run saves after every step (--checkpoint_minutes tiny):
    each of those checkpoints holds finite weights, none is written at or after the step whose loss is NaN."""
    run, spe = copy_run(two_checkpoints, tmp_path)
    result = call_main(f"--dataset={small_faces}", f"--savedir={run}", "--epoch=4", "--save_every_epochs=1",
                       "--checkpoint_minutes=0.0001", "--learning_rate=1e12", *SMALL_FLAGS)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    found = re.search(r"Error: Loss (\w+) is (nan|inf|-inf) at step (\d+)", result.stderr)
    assert found, result.stderr
    bad_step = int(found.group(3))
    assert 2 * spe < bad_step <= 4 * spe
    last = f"{run}/checkpoint/{latest(run)}"
    last_step = checkpointing.checkpoint_step(last)
    assert last_step < bad_step
    assert f"The latest checkpoint, {last} (step {last_step}), holds the last finite weights" in result.stderr
    for name in checkpoints(run):
        assert checkpointing.checkpoint_step(name) < bad_step
        model = CAAE(small_config)
        model.checkpoint.restore(str(run / "checkpoint" / name)).assert_existing_objects_matched()
        assert finite_weights(model.checkpoint_variables()), name


def test_non_finite_weights_are_never_saved(small_config, tmp_path):
    """A NaN in a weight (which a finite loss can hide for a step) stops the save; the last checkpoint stays."""
    model = CAAE(small_config)
    manager = checkpointing.make_manager(model.checkpoint, str(tmp_path), 3)
    first = checkpointing.save(manager, 1, "test", model.checkpoint_variables())
    kernel = model.generator.weights[0]
    kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0] * len(kernel.shape)], [float("nan")]))
    with pytest.raises(checkpointing.NonFiniteError, match=rf"Weights {re.escape(kernel.path)} are not finite at step "
                                                           rf"2.*The latest checkpoint, {first} \(step 1\)"):
        checkpointing.save(manager, 2, "test", model.checkpoint_variables())
    assert tf.train.latest_checkpoint(str(tmp_path)) == first
    assert not glob.glob(str(tmp_path / "model-2*"))


def test_check_finite_names_the_loss_its_value_and_the_step():
    checkpointing.check_finite({"a": 1.0, "b": 0.0}, 5)
    with pytest.raises(checkpointing.NonFiniteError, match=r"Loss b is inf at iteration 7 \(also c nan\).*No "
                                                           r"checkpoint had been written yet"):
        checkpointing.check_finite({"a": 1.0, "b": float("inf"), "c": float("nan")}, 7, None, unit="iteration")


def test_a_signal_during_a_save_is_handled_after_it():
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append("handled"))
    try:
        with checkpointing.deferred_signals((signal.SIGUSR1,)):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(1000):          # the interpreter runs pending handlers between bytecodes
                pass
            assert received == []
        assert received == ["handled"]
    finally:
        signal.signal(signal.SIGUSR1, previous)


# --- disk full -------------------------------------------------------------------------------------------------------

def file_size_limit(limit):
    """preexec_fn: writes past `limit` bytes fail with EFBIG (File too large) instead of killing the process."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def why_no_size_limit(limit):
    """None if a subprocess can be given a file-size limit of `limit` bytes, else the reason it cannot."""
    try:
        import resource
    except ImportError:
        return "no resource module on this platform"
    if not hasattr(resource, "RLIMIT_FSIZE") or not hasattr(signal, "SIGXFSZ"):
        return "RLIMIT_FSIZE/SIGXFSZ are not available on this platform"
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    if hard != resource.RLIM_INFINITY and hard < limit:
        return f"the hard file-size limit ({hard} bytes) is below the {limit} bytes the test needs"
    return None


def run_limited(limit, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, "main.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=file_size_limit(limit))


@pytest.mark.slow
def test_disk_full_while_saving_keeps_the_previous_checkpoint(two_checkpoints, small_faces, small_config, tmp_path):
    run, spe = copy_run(two_checkpoints, tmp_path)
    data_size = os.path.getsize(run / "checkpoint" / f"model-{2 * spe}.data-00000-of-00001")
    limit = data_size // 2   # images, summaries and options.json fit; a checkpoint's data file does not
    reason = why_no_size_limit(limit)
    if reason:
        pytest.skip(f"cannot limit the file size: {reason}")
    before = digest(run / "checkpoint")
    result = run_limited(limit, f"--dataset={small_faces}", f"--savedir={run}", "--epoch=3", *SMALL_FLAGS)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert (f"Error: Could not write checkpoint {run}/checkpoint/model-{3 * spe} (end of training): File too large; "
            f"the previous checkpoint {run}/checkpoint/model-{2 * spe} (step {2 * spe}) is intact") in result.stderr
    assert digest(run / "checkpoint") == before                     # nothing half-written left, nothing lost
    assert pngs(run / "samples") == ["01.png", "02.png", "03.png"]  # the images of epoch 3 did fit
    assert_outputs_complete(run)
    model = CAAE(small_config)
    model.checkpoint.restore(tf.train.latest_checkpoint(str(run / "checkpoint"))).assert_existing_objects_matched()
    assert int(model.step) == 2 * spe


def test_disk_full_while_writing_an_image_is_one_clear_error(tmp_path):
    limit = 4096
    reason = why_no_size_limit(limit)
    if reason:
        pytest.skip(f"cannot limit the file size: {reason}")
    target = tmp_path / "grid.png"
    code = ("import sys\n"
            "import numpy as np\n"
            "from face_aging.fileio import DiskFullError\n"
            "from face_aging.images import save_image\n"
            "save_image(np.zeros((8, 8, 3), np.uint8), sys.argv[1])\n"
            "try:\n"
            "    save_image(np.random.RandomState(0).randint(0, 255, (256, 256, 3)).astype(np.uint8), sys.argv[1])\n"
            "except DiskFullError as error:\n"
            "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code, str(target)], cwd=REPO, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO), timeout=60, preexec_fn=file_size_limit(limit))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Could not write {target}: File too large"), result.stdout
    with Image.open(target) as image:   # the small image written first is still there, whole
        assert image.size == (8, 8)
    assert os.listdir(tmp_path) == ["grid.png"]


# --- PAGAN and its age classifier ------------------------------------------------------------------------------------

TINY_PAGAN = ["--image_size=32", "--gen_channels=4", "--res_blocks=1", "--head_width=0.0625", "--batch_size=4"]


@pytest.fixture(scope="module")
def pagan_inputs(pagan_prepared, random_phi_age):
    """Prepared data (conftest's 160 synthetic faces, all clusters) and a small random phi_age: what a PAGAN run
    reads. Returns {"prepared": folder, "phi_age": folder}."""
    return {"prepared": pagan_prepared, "phi_age": random_phi_age}


def pagan_args(inputs, savedir, *more):
    return ["--model=pagan", "--is_train", f"--prepared_dir={inputs['prepared']}",
            f"--age_classifier={inputs['phi_age']}", "--identity=random", f"--savedir={savedir}",
            "--target_cluster=3", *TINY_PAGAN, *more]


@pytest.fixture(scope="module")
def pagan_killed_and_resumed(pagan_inputs, tmp_path_factory):
    """A PAGAN run (6 iterations, a checkpoint and images every 3) killed while iteration 5 runs, then restarted with
    the same plain command. Returns (run directory, killed process, restarted process)."""
    root = tmp_path_factory.mktemp("pagan_kill")
    args = pagan_args(pagan_inputs, root / "pagan", "--iterations=6", "--save_every=3", "--sample_every=3")
    killed = run_wrapped(root, {"kind": "step", "target": "face_aging.models.pagan.model:PAGAN", "at": 5,
                                "action": "SIGKILL"}, *args)
    run = root / "pagan" / "cluster3"
    after_kill = (latest(run), pngs(run / "samples"))
    return run, killed, after_kill, call_main(*args)


@pytest.mark.slow
def test_pagan_killed_during_an_iteration_resumes_from_the_last_checkpoint(pagan_killed_and_resumed):
    run, killed, after_kill, resumed = pagan_killed_and_resumed
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert after_kill == ("model-3", ["000003.png"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed from {run}/checkpoint/model-3 (iteration 3)" in resumed.stdout
    assert "Done: cluster 3, iteration 6" in resumed.stdout
    assert latest(run) == "model-6" and checkpoints(run) == ["model-3", "model-6"]
    assert pngs(run / "samples") == ["000003.png", "000006.png"]
    assert pngs(run / "test") == ["000003.png", "000006.png", "input.png"]
    assert_outputs_complete(run)
    assert tf.train.load_checkpoint(str(run / "checkpoint" / "model-6")).get_tensor(
        "step/.ATTRIBUTES/VARIABLE_VALUE") == 6


@pytest.mark.slow
def test_pagan_checkpoint_in_a_caae_run_and_back(pagan_killed_and_resumed, pagan_inputs, two_checkpoints,
                                                 small_faces, small_config, tmp_path):
    from face_aging.models.pagan import train as pagan_train
    from face_aging.models.pagan.config import LossWeights, PAGANConfig, PAGANTrainOptions
    pagan_run = pagan_killed_and_resumed[0]
    caae_run = tmp_path / "caae"
    shutil.copytree(pagan_run / "checkpoint", caae_run / "checkpoint")
    with pytest.raises(TrainingError, match=rf"Checkpoint {caae_run}/checkpoint/model-6 does not fit this model "
                                            rf"\(32x32.*\): {caae_run}/checkpoint/model-6.index was written by a PAGAN "
                                            rf"run, not by a CAAE run"):
        train(small_options(caae_run, small_faces, small_config))

    savedir = tmp_path / "pagan"
    shutil.copytree(two_checkpoints[0] / "checkpoint", savedir / "cluster3" / "checkpoint")
    spe = two_checkpoints[1]
    config = PAGANConfig(image_size=32, target_cluster=3, gen_channels=4, res_blocks=1, head_width=0.0625,
                         weights=LossWeights(pixel=0.2, adversarial=750, identity=0.005))
    options = PAGANTrainOptions(savedir=str(savedir), prepared_dir=str(pagan_inputs["prepared"]),
                                            iterations=4, batch_size=4, age_classifier=str(pagan_inputs["phi_age"]),
                                            identity="random", config=config)
    prefix = f"{savedir}/cluster3/checkpoint/model-{2 * spe}"
    with pytest.raises(TrainingError, match=rf"Checkpoint {prefix} does not fit this model \(generator "
                                                             rf"width 4.*\): {prefix}.index was written by a CAAE run, "
                                                             rf"not by a PAGAN run"):
        pagan_train.train(options)


@pytest.mark.slow
def test_diverging_pagan_stops_at_the_first_nan_without_saving(pagan_killed_and_resumed, pagan_inputs, tmp_path):
    from face_aging.models.pagan import train as pagan_train
    from face_aging.models.pagan.config import LossWeights, PAGANConfig, PAGANTrainOptions
    savedir = tmp_path / "pagan"
    shutil.copytree(pagan_killed_and_resumed[0], savedir / "cluster3")
    run = savedir / "cluster3"
    before = digest(run / "checkpoint")
    config = PAGANConfig(image_size=32, target_cluster=3, gen_channels=4, res_blocks=1, head_width=0.0625,
                         learning_rate=1e12, weights=LossWeights(pixel=0.2, adversarial=750, identity=0.005))
    options = PAGANTrainOptions(savedir=str(savedir), prepared_dir=str(pagan_inputs["prepared"]),
                                            iterations=12, batch_size=4, save_every=1,
                                            age_classifier=str(pagan_inputs["phi_age"]), identity="random",
                                            config=config)
    with pytest.raises(checkpointing.NonFiniteError) as error:
        pagan_train.train(options)
    found = re.match(r"Loss (L_\w+|D_\w+) is (nan|inf|-inf) at iteration (\d+)", str(error.value))
    assert found, str(error.value)
    bad = int(found.group(3))
    assert 6 < bad <= 12
    # Saved after every finite iteration (--save_every 1), never at or after the NaN, every checkpoint finite.
    assert latest(run) == f"model-{bad - 1}" and f"{run}/checkpoint/model-{bad - 1} (iteration {bad - 1}), holds the " \
                                                 f"last finite weights" in str(error.value)
    assert all(before[k] == v for k, v in digest(run / "checkpoint").items() if k in before and k != "checkpoint")
    reader = tf.train.load_checkpoint(str(run / "checkpoint" / f"model-{bad - 1}"))
    assert all(np.isfinite(reader.get_tensor(k)).all() for k, dtype in reader.get_variable_to_dtype_map().items()
               if dtype.is_floating)


@pytest.fixture(scope="module")
def age_run(pagan_inputs, tmp_path_factory):
    """phi_age trained for one epoch (checkpointed and exported at its end)."""
    from face_aging.models.pagan.config import AgeOptions
    from face_aging.models.pagan.age_classifier import train_age_classifier
    root = tmp_path_factory.mktemp("age")
    options = AgeOptions(prepared_dir=str(pagan_inputs["prepared"]), savedir=str(root / "run"),
                         out_dir=str(root / "phi_age"), init="", epochs=1, batch_size=16, image_size=32,
                         width=0.0625, fc_units=8)
    train_age_classifier(options)
    return root, options


@pytest.mark.slow
def test_age_classifier_nan_and_bad_checkpoint(age_run, tmp_path):
    import dataclasses
    from face_aging.models.pagan.age_classifier import train_age_classifier
    source, options = age_run
    root = shutil.copytree(source, tmp_path / "age")
    options = dataclasses.replace(options, savedir=str(root / "run"), out_dir=str(root / "phi_age"))
    run = root / "run"
    (spe,) = {checkpointing.checkpoint_step(name) for name in checkpoints(run)}
    before = {**digest(run / "checkpoint"), **digest(root / "phi_age")}
    with pytest.raises(checkpointing.NonFiniteError, match=rf"Loss (loss|train_accuracy) is (nan|inf|-inf) at step "
                                                           rf"\d+: .* The latest checkpoint, {run}/checkpoint/"
                                                           rf"model-{spe} \(step {spe}\)"):
        train_age_classifier(dataclasses.replace(options, epochs=2, learning_rate=1e12))
    assert {**digest(run / "checkpoint"), **digest(root / "phi_age")} == before   # nor the exported phi_age
    prefix = damage(run, "truncated data", spe)
    with pytest.raises(TrainingError, match=rf"Checkpoint {prefix} cannot be restored: its data file "
                                               rf"{prefix}.data-00000-of-00001 is truncated or corrupt .* No older "
                                               rf"checkpoint in {run}/checkpoint restores"):
        train_age_classifier(dataclasses.replace(options, epochs=2))


# --- stale files and the flag ----------------------------------------------------------------------------------------

def test_clean_stale_files_removes_only_what_an_interrupted_run_left(tmp_path):
    ckpt, samples = tmp_path / "checkpoint", tmp_path / "samples"
    ckpt.mkdir()
    samples.mkdir()
    for name in ("model-4.index", "model-4.data-00000-of-00001", "model-8.index", "model-8.data-00000-of-00001",
                 "model-2.index", "model-2.data-00000-of-00001",            # older, unrecorded: not ours to judge
                 "model-12.index", "model-12.data-00000-of-00001",          # newer, unrecorded: a killed save
                 "checkpoint.tmp" + "0" * 32):                              # TensorFlow's temporary state file
        (ckpt / name).write_bytes(b"x")
    (ckpt / "model-16_temp").mkdir()
    (ckpt / "model-16_temp" / "part-00000-of-00001.index").write_bytes(b"x")
    (ckpt / "checkpoint").write_text('model_checkpoint_path: "model-8"\nall_model_checkpoint_paths: "model-4"\n'
                                     'all_model_checkpoint_paths: "model-8"\n')
    (samples / "01.png").write_bytes(b"png")
    (samples / ".tmp-0123.png").write_bytes(b"half")
    checkpointing.clean_stale_files(str(ckpt), [str(samples)])
    assert sorted(os.listdir(ckpt)) == ["checkpoint", "model-2.data-00000-of-00001", "model-2.index",
                                        "model-4.data-00000-of-00001", "model-4.index", "model-8.data-00000-of-00001",
                                        "model-8.index"]
    assert os.listdir(samples) == ["01.png"]
    # Without any state file, checkpoint files are set aside (they might be someone's), never deleted.
    (ckpt / "checkpoint").unlink()
    checkpointing.clean_stale_files(str(ckpt))
    assert os.listdir(ckpt) == ["set_aside"] and len(os.listdir(ckpt / "set_aside")) == 6


def test_on_bad_checkpoint_flag():
    from absl import flags
    from face_aging.cli import flags as cli_flags, validate as cli_validate
    from face_aging.errors import FlagError

    def parsed(*args):
        fv = flags.FlagValues()
        cli_flags.define_flags(fv)
        cli_flags.parse_flags(["main.py", *args], fv)
        return fv
    assert parsed().on_bad_checkpoint == "error" and parsed("--on_bad_checkpoint=fallback").on_bad_checkpoint == \
        "fallback"
    with pytest.raises(SystemExit):                      # absl: not one of error, fallback
        parsed("--on_bad_checkpoint=ignore")
    with pytest.raises(FlagError, match="--on_bad_checkpoint=fallback: only training"):
        cli_validate.validate(parsed("--on_bad_checkpoint=fallback", "--is_train=false", f"--testdir={REPO}"))
