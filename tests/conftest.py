"""Shared fixtures: tiny CAAE settings (32x32, narrow networks) and data the tests make themselves."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--image_size=32", "--enc_channels=8", "--gen_channels=64", "--batch_size=16"]


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state, so its outcome does not depend on the order of tests."""
    import keras
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def tiny_config():
    from face_aging.caae.config import CAAEConfig
    return CAAEConfig(image_size=32, enc_channels=8, gen_channels=64)


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory):
    """120 synthetic UTKFace-named JPEG faces at 48x48 (resized to 32 by the pipeline), all distinct (seed 7 would
    render two identical faces, and training skips a duplicate file)."""
    from face_aging.data.synthetic import write_utkface_folder
    folder = tmp_path_factory.mktemp("faces")
    write_utkface_folder(str(folder), 120, 48, seed=11)
    return str(folder)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, face_folder, tiny_config):
    """A run directory after one epoch of tiny CAAE training on `face_folder`."""
    from face_aging.caae.config import TrainOptions
    from face_aging.caae.train import train
    savedir = str(tmp_path_factory.mktemp("run"))
    train(TrainOptions(savedir=savedir, dataset=face_folder, epoch=1, batch_size=16, config=tiny_config))
    return savedir


def first_faces(face_folder, folder, count):
    """A new folder holding copies of the first `count` faces of face_folder (test mode's input); returns it."""
    import shutil
    os.makedirs(folder)
    for name in sorted(os.listdir(face_folder))[:count]:
        shutil.copy(os.path.join(face_folder, name), folder)
    return folder


def assert_same_first_step(single, distributed):
    """A distributed CAAE step (two replicas or two workers) against one device's, each (replicas, loss terms, Adam's
    first moments, weights) after one step on the same global batch."""
    import numpy as np
    (n1, terms1, moments1, weights1), (n2, terms2, moments2, weights2) = single, distributed
    assert (n1, n2) == (1, 2)
    for name, value in terms1.items():
        assert terms2[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    # Adam's first moment after one step is (1 - beta1) * gradient: the all-reduced gradients equal one device's.
    for a, b in zip(moments1, moments2):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
    # The first Adam step moves each weight by about +-lr; a gradient within rounding of 0 may flip its sign.
    diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(weights1, weights2)])
    assert diff.max() <= 2 * 2e-4 + 1e-6 and (diff > 1e-6).mean() < 1e-3


def run_main(*args, timeout=300):
    """Run main.py as a user would; returns the CompletedProcess (text output)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, "main.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def lively_run(tmp_path_factory, tiny_config):
    """A run directory whose checkpoint has He-scaled random weights, so that every layer shows in the output
    (a few steps of training from the 0.02-sd initialisation still give a nearly uniform grey face)."""
    import tensorflow as tf
    from face_aging.caae import tf1_checkpoint
    from face_aging.caae.model import CAAE
    from face_aging.rundir import RunDir
    from test_tf1_checkpoint import original_shapes, random_arrays, write_tf1_checkpoint
    root = tmp_path_factory.mktemp("lively")
    arrays = random_arrays(original_shapes(32, enc=8, gen=64), seed=11)
    prefix = write_tf1_checkpoint(str(root / "tf1"), arrays)[0]
    model = CAAE(tiny_config)
    tf1_checkpoint.load_tf1_checkpoint(prefix, model.encoder, model.generator, model.d_z, model.d_img)
    run = RunDir(str(root / "run")).make()
    tf.train.CheckpointManager(model.checkpoint, run.checkpoint, max_to_keep=1, checkpoint_name="model").save(0)
    run.write_options({"image_size": 32, "z_dim": 50, "enc_channels": 8, "gen_channels": 64})
    return run.root, model
