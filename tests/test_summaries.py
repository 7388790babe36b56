"""TensorBoard after a resume: the steps a resumed run trains again show once, in order, with the new values.

Read back with TensorBoard's own loader (plugin_event_accumulator, what `tensorboard --logdir` uses in Python)."""

import os

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator as pea

from face_aging import summaries


def points(logdir, tag):
    """(step, value, wall time) of `tag` as TensorBoard shows it."""
    accumulator = pea.EventAccumulator(logdir, size_guidance={pea.TENSORS: 0})
    accumulator.Reload()
    return [(e.step, float(tf.make_ndarray(e.tensor_proto)), e.wall_time) for e in accumulator.Tensors(tag)]


def test_a_session_writer_purges_what_an_earlier_session_wrote_past_its_start(tmp_path):
    logdir = str(tmp_path)
    for start, stop, scale in ((1, 10, 1.0), (6, 8, 10.0), (8, 12, 100.0)):   # killed at 10, then at 8
        writer = summaries.session_writer(logdir, start)
        with writer.as_default():
            for step in range(start, stop + 1):
                tf.summary.scalar("x", step * scale, step=step)
        writer.close()
    shown = [(step, value) for step, value, _ in points(logdir, "x")]
    assert shown == [(s, s * 1.0) for s in range(1, 6)] + [(6, 60.0), (7, 70.0)] + [(s, s * 100.0) for s in
                                                                                   range(8, 13)]


def test_a_resumed_caae_run_shows_each_step_once(face_folder, tiny_config, tmp_path):
    from face_aging import checkpointing
    from face_aging.caae.train import TrainOptions, train
    options = TrainOptions(savedir=str(tmp_path), dataset=face_folder, epoch=2, batch_size=16, save_every_epochs=1,
                           config=tiny_config)
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
