"""TensorBoard after a resume: the steps a resumed run trains again show once, in order, with the new values.

Read back with TensorBoard's own loaders: the Python one (plugin_event_accumulator, `--load_fast=false`) and the Rust
data server that `tensorboard --logdir` starts by default where it is installed."""

import os
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator as pea

from face_aging.training import summaries


def points(logdir, tag):
    """(step, value, wall time) of `tag` as TensorBoard shows it."""
    accumulator = pea.EventAccumulator(logdir, size_guidance={pea.TENSORS: 0})
    accumulator.Reload()
    return [(e.step, float(tf.make_ndarray(e.tensor_proto)), e.wall_time) for e in accumulator.Tensors(tag)]


def data_server_points(logdir, tag):
    """(step, value) of scalar `tag` as TensorBoard's Rust data server (rustboard) serves them."""
    grpc = pytest.importorskip("grpc")
    server = pytest.importorskip("tensorboard_data_server").server_binary()
    if not server:
        pytest.skip("tensorboard-data-server has no binary for this platform")
    from tensorboard.data.proto import data_provider_pb2 as pb
    from tensorboard.data.proto import data_provider_pb2_grpc as pb_grpc
    port_file = os.path.join(logdir, "..", "port")
    process = subprocess.Popen([server, "--logdir", logdir, "--port", "0", "--port-file", port_file, "--reload",
                                "once", "--samples-per-plugin", "scalars=1000"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            assert time.time() < deadline and process.poll() is None, "the data server did not start"
            time.sleep(0.1)
        stub = pb_grpc.TensorBoardDataProviderStub(grpc.insecure_channel(f"localhost:{int(open(port_file).read())}"))
        request = pb.ReadScalarsRequest(plugin_filter=pb.PluginFilter(plugin_name="scalars"),
                                        downsample=pb.Downsample(num_points=1000))
        while True:  # it loads the logdir once, in the background
            runs = stub.ReadScalars(request).runs
            if runs or time.time() > deadline:
                break
            time.sleep(0.1)
        return [(s, v) for run in runs for t in run.tags if t.tag_name == tag for s, v in zip(t.data.step,
                                                                                              t.data.value)]
    finally:
        process.kill()
        process.wait()


def _next_writers_sort_in_creation_order(scratch, count):
    """TensorFlow names event files `...{pid}.{n}.v2` with n counting the writers this process made, and TensorBoard
    reads a run's files in name order: when n gains a digit (9 -> 10), the later session's file sorts first. Within
    one process and one second (this test; never a resumed run, a new process) that depends on how many writers the
    tests before made, so writers are made (in `scratch`) until the next 2 * `count` numbers (a margin) have one
    length."""
    while True:
        writer = tf.summary.create_file_writer(str(scratch))
        with writer.as_default():
            tf.summary.scalar("x", 0.0, step=0)
        writer.close()
        newest = max(os.listdir(scratch), key=lambda name: int(name.split(".")[-2]))
        n = int(newest.split(".")[-2])
        if len(str(n + 1)) == len(str(n + 2 * count)):
            return


def test_a_session_writer_purges_what_an_earlier_session_wrote_past_its_start(tmp_path):
    logdir = str(tmp_path / "summary")
    _next_writers_sort_in_creation_order(tmp_path / "scratch", 3)
    for start, stop, scale in ((1, 10, 1.0), (6, 8, 10.0), (8, 12, 100.0)):   # killed at 10, then at 8
        writer = summaries.session_writer(logdir, start)
        with writer.as_default():
            for step in range(start, stop + 1):
                tf.summary.scalar("x", step * scale, step=step)
        writer.close()
    want = [(s, s * 1.0) for s in range(1, 6)] + [(6, 60.0), (7, 70.0)] + [(s, s * 100.0) for s in range(8, 13)]
    assert [(step, value) for step, value, _ in points(logdir, "x")] == want
    assert data_server_points(logdir, "x") == want


@pytest.mark.slow
def test_a_resumed_caae_run_shows_each_step_once(face_folder, tiny_config, tmp_path):
    from face_aging.training import checkpointing
    from face_aging.models.caae.config import TrainOptions
    from face_aging.models.caae.train import train
    options = TrainOptions(savedir=str(tmp_path), dataset=face_folder, epoch=2, batch_size=16, save_every_epochs=1,
                           config=tiny_config)
    _next_writers_sort_in_creation_order(tmp_path / "scratch", 2)      # the two sessions' event files
    train(options)
    spe = 120 - 24 >> 4                                # 120 faces, 24 held out for the samples, batches of 16
    checkpoint_dir = str(tmp_path / "checkpoint")
    assert checkpointing.checkpoint_step(tf.train.latest_checkpoint(checkpoint_dir)) == 2 * spe
    # As if killed after writing epoch 2's summaries but before its checkpoint: the state file names epoch 1's only.
    tf.compat.v1.train.update_checkpoint_state(checkpoint_dir, os.path.join(checkpoint_dir, f"model-{spe}"))
    first = points(str(tmp_path / "summary"), "EG_loss")
    assert [p[0] for p in first] == list(range(1, 2 * spe + 1))
    train(options)                                     # resumes at step spe and trains epoch 2 again
    shown = points(str(tmp_path / "summary"), "EG_loss")
    steps = [p[0] for p in shown]
    assert steps == list(range(1, 2 * spe + 1)), steps  # once each, in order
    assert shown[:spe] == first[:spe]                   # epoch 1 as it was
    assert min(p[2] for p in shown[spe:]) > max(p[2] for p in first)   # epoch 2 from the resumed session
    assert np.all(np.isfinite([p[1] for p in shown]))
    assert [step for step, _ in data_server_points(str(tmp_path / "summary"), "EG_loss")] == steps
