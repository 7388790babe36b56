"""--strategy multiworker with two real workers: two processes on this machine, TF_CONFIG naming two loopback ports.

One CAAE step on two workers, each with half the global batch, equals one step on one worker with all of it; a run
through main.py writes the chief's run directory, resumes from the chief's checkpoint, and when one worker is killed
the other stops at once with a one-line error, after which the same command on both resumes the run.
"""

import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from helpers import REPO, TINY_FLAGS, assert_same_first_step


def first_caae_step(strategy):
    """One CAAE step on a fixed global batch of 8 under `strategy` (None: one device): (replicas, loss terms, Adam's
    first moments, weights)."""
    import keras
    import numpy as np
    import tensorflow as tf
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import CAAE
    rs = np.random.RandomState(0)
    x = tf.constant(rs.uniform(-1, 1, [8, 32, 32, 3]).astype("float32"))
    a = tf.constant(np.eye(10, dtype="float32")[rs.randint(0, 10, 8)] * 2 - 1)
    g = tf.constant(np.eye(2, dtype="float32")[rs.randint(0, 2, 8)] * 2 - 1)
    keras.utils.set_random_seed(5)
    m = CAAE(CAAEConfig(image_size=32, enc_channels=8, gen_channels=64), 10, strategy)
    terms, _ = m.train_step(x, a, g, tf.constant([1e-4, 0.5, 0.1]))
    moments = [v.numpy() for o in m.optimizers.values() for v in o.variables if "momentum" in v.path]
    weights = [v.numpy() for n in (m.encoder, m.generator, m.d_z, m.d_img) for v in n.weights]
    return m.replicas, {k: float(v) for k, v in terms.items()}, moments, weights


# A worker's script: the strategy first, before any other TensorFlow work (as main.py does), then the step above.
STEP = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from face_aging.training import distribute
    strategy = distribute.make_strategy("multiworker", 60)
""") + textwrap.dedent(inspect.getsource(first_caae_step)) + textwrap.dedent("""
    np.save(sys.argv[2], np.array(first_caae_step(strategy), dtype=object), allow_pickle=True)
""")


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(folder, argv, tag):
    """Two worker processes running `argv` (after the Python executable), with TF_CONFIG for this machine's
    loopback; their output goes to folder/TAG-workerN.{out,err}. Returns [(Popen, out path, err path)]."""
    cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, TF_CONFIG=config, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
        out, err = (os.path.join(folder, f"{tag}-worker{index}.{ext}") for ext in ("out", "err"))
        with open(out, "w") as stdout, open(err, "w") as stderr:
            workers.append((subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=stdout,
                                             stderr=stderr), out, err))
    return workers


def finish(workers, timeout):
    """Wait (at most `timeout` seconds in all) for the workers; [(return code, stdout, stderr)]. A worker still
    running then is killed, and the test fails."""
    deadline = time.time() + timeout
    results = []
    try:
        for process, out, err in workers:
            process.wait(timeout=max(1, deadline - time.time()))
            with open(out) as o, open(err) as e:
                results.append((process.returncode, o.read(), e.read()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"a worker was still running after {timeout} s")
    finally:
        for process, _, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.mark.slow
def test_a_step_on_two_workers_equals_a_step_on_one(tmp_path):
    """Global batch 8: two workers of 4 faces each (synchronised batch norm, all-reduced gradients) update E, G, D_z
    and D_img as one worker does with all 8 (the tolerances of the two-device mirrored test)."""
    workers = start_workers(str(tmp_path), ["-c", STEP, REPO, str(tmp_path / "worker.npy")], "step")
    single = first_caae_step(None)                      # one worker: this process, while the two start and run
    for code, _, err in finish(workers, 240):
        assert code == 0, err[-3000:]
    assert_same_first_step(single, np.load(tmp_path / "worker.npy", allow_pickle=True))   # the last worker to finish


def latest_step(checkpoint_dir):
    with open(os.path.join(checkpoint_dir, "checkpoint")) as f:
        return int(re.search(r'model_checkpoint_path: "model-(\d+)"', f.read()).group(1))


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from face_aging.data.synthetic import write_utkface_folder
    folder = tmp_path_factory.mktemp("mw_faces")
    write_utkface_folder(str(folder), 120, 32, seed=21)   # 96 training faces: 6 batches of 16
    return str(folder)


@pytest.mark.slow
def test_two_workers_train_resume_and_stop_when_one_is_lost(faces, tmp_path):
    savedir = tmp_path / "run"

    def command(epochs, *more):
        return [os.path.join(REPO, "main.py"), "--model=caae", "--is_train", f"--dataset={faces}",
                f"--savedir={savedir}", *TINY_FLAGS, f"--epoch={epochs}", "--pretrain_epochs=0",
                "--strategy=multiworker", "--worker_timeout=60", *more]

    # A new run on two workers, a checkpoint every epoch: the chief writes the run directory, the other its own under
    # workers/worker1. Worker 1 is killed once the chief has saved epoch 2. Then the run is resumed on both, and worker
    # 1 hangs (SIGSTOP: its connections stay open) once the chief has saved two more epochs.
    start = 0
    for how, signum in (("killed", signal.SIGKILL), ("hung", signal.SIGSTOP)):
        workers = start_workers(str(tmp_path), command(100, "--save_every_epochs=1"), how)
        chief, other = workers[0][0], workers[1][0]
        deadline = time.time() + 240
        while not (savedir / "checkpoint" / f"model-{start + 12}.index").exists():
            assert time.time() < deadline and chief.poll() is None, f"the chief never saved step {start + 12}"
            time.sleep(0.2)
        other.send_signal(signum)
        lost = time.time()
        try:
            chief.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
        stopped_after = time.time() - lost
        other.kill()
        (code, out, err), (_, other_out, _) = finish(workers, 10)
        if how == "killed":
            assert "Training from random initialisation" in out and "Resumed" not in out, out
            assert "Precision float32, 2 replica(s) of 8 faces" in out and "Precision float32, 2 replica(s) of 8 " \
                "faces" in other_out
            assert (savedir / "options.json").exists() and (savedir / "samples" / "01.png").exists()
            assert latest_step(savedir / "workers" / "worker1" / "checkpoint") >= 6
        else:
            assert f"Resumed from {savedir / 'checkpoint' / f'model-{start}'} (step {start})" in out
        assert code == 1 and "Traceback" not in err, (how, err[-3000:])
        message = err.strip().splitlines()[-1]
        assert re.match(r"Error: Lost another worker of this 2-worker run \(\w+Error: .*\); worker 0 stopped at "
                        r"step \d+ \(its last checkpoint: .*/checkpoint/model-\d+\)\. Start every worker again",
                        message), (how, message)
        assert "Graph execution error" not in message
        assert stopped_after < 90, (how, stopped_after)   # at once when killed; within the heartbeat or timeout
        start = latest_step(savedir / "checkpoint")

    # Both stopped: the same command on both resumes from the chief's last checkpoint, one epoch further.
    last = latest_step(savedir / "checkpoint")
    assert last >= 24
    epochs = last // 6 + 1
    for code, out, err in finish(start_workers(str(tmp_path), command(epochs), "resumed"), 240):
        assert code == 0, err[-3000:]
        # Worker 1 too resumes from the chief's checkpoint, wherever its own stopped.
        assert f"Resumed from {savedir / 'checkpoint' / f'model-{last}'} (step {last})" in out, out
        assert f"Done: {epochs} epochs, step {epochs * 6}" in out
    assert latest_step(savedir / "checkpoint") == epochs * 6
