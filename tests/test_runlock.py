"""Two runs, one run directory: a second training is refused at once, naming the directory and the process that
holds it; a lock left by a SIGKILLed run does not block the next one; test mode may read a run that is training.

The holder is a real second process (a few lines of Python that take the lock, as a training does, and wait)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, TINY_FLAGS, call_main
from face_aging.training import runlock

HOLDER = r'''
import sys, time
from face_aging.training import runlock
with runlock.training_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
'''


@pytest.fixture
def holder():
    """Start a process that holds the training lock of a directory; returns start(directory) -> Popen."""
    started = []

    def start(directory):
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], cwd=REPO, text=True,
                                   env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process
    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_second_training_in_a_held_run_directory_is_refused_at_once(holder, tmp_path):
    savedir = tmp_path / "save"
    savedir.mkdir()
    process = holder(savedir)
    stale = savedir / ".tmp-left-by-the-live-run.png"
    stale.write_bytes(b"being written")
    start = time.time()
    result = call_main("--model", "caae", "--is_train", "--dataset=synthetic", "--num_synthetic=64", "--epoch=1",
                       f"--savedir={savedir}", *TINY_FLAGS)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert f"Run directory {savedir} is in use: process {process.pid} is training there" in message, message
    assert "another --savedir" in message
    assert time.time() - start < 60                      # refused, not queued
    assert stale.exists()                                # nothing of the live run was touched as "stale"
    assert sorted(os.listdir(savedir)) == [".tmp-left-by-the-live-run.png", runlock.LOCK_FILE]   # not even a folder
    assert process.poll() is None                        # the holder goes on


def test_pagan_and_phi_age_refuse_a_held_run_directory(holder, tmp_path):
    from face_aging.models.pagan.age_classifier import train_age_classifier
    from face_aging.models.pagan.config import AgeOptions, PAGANConfig, PAGANTrainOptions
    from face_aging.models.pagan.train import train
    (tmp_path / "pagan" / "cluster3").mkdir(parents=True)
    process = holder(tmp_path / "pagan" / "cluster3")
    with pytest.raises(runlock.RunDirInUseError, match=rf"{tmp_path}/pagan/cluster3 is in use: process "
                                                       rf"{process.pid} "):
        train(PAGANTrainOptions(savedir=str(tmp_path / "pagan"), prepared_dir=str(tmp_path / "none"),
                                config=PAGANConfig(target_cluster=3)))
    (tmp_path / "age").mkdir()
    process = holder(tmp_path / "age")
    with pytest.raises(runlock.RunDirInUseError, match=rf"{tmp_path}/age is in use: process {process.pid} "):
        train_age_classifier(AgeOptions(savedir=str(tmp_path / "age"), prepared_dir=str(tmp_path / "none")))


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(holder, tmp_path):
    process = holder(tmp_path)
    with pytest.raises(runlock.RunDirInUseError):
        with runlock.training_lock(str(tmp_path)):
            pass
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    lock = tmp_path / runlock.LOCK_FILE
    assert json.loads(lock.read_text())["pid"] == process.pid   # the file and its record are left behind
    with runlock.training_lock(str(tmp_path)):                  # but the kernel released the lock
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert lock.read_text() == ""                               # a run that ends clears its record


def test_test_mode_reads_a_run_while_it_trains(holder, lively_run, tmp_path):
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.inference.testmode import TestOptions, run_test
    from face_aging.data.synthetic import write_utkface_folder
    savedir, _ = lively_run
    holder(savedir)
    faces = tmp_path / "faces"
    write_utkface_folder(str(faces), 2, 40, seed=5)
    written = run_test(TestOptions(testdir=str(faces), savedir=savedir, target_age=50, align="off",
                                   config=CAAEConfig(image_size=32, enc_channels=8, gen_channels=64)))
    assert written and all(os.path.exists(p) for p in written)
