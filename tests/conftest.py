"""Shared fixtures: tiny CAAE settings (32x32, narrow networks) and data the tests make themselves. Shared helpers
that are not fixtures are in helpers.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state, so its outcome does not depend on the order of tests."""
    import keras
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def tiny_config():
    from face_aging.models.caae.config import CAAEConfig
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
    from face_aging.models.caae.config import TrainOptions
    from face_aging.models.caae.train import train
    savedir = str(tmp_path_factory.mktemp("run"))
    train(TrainOptions(savedir=savedir, dataset=face_folder, epoch=1, batch_size=16, config=tiny_config))
    return savedir


@pytest.fixture(scope="session")
def lively_run(tmp_path_factory, tiny_config):
    """A run directory whose checkpoint has He-scaled random weights, so that every layer shows in the output
    (a few steps of training from the 0.02-sd initialisation still give a nearly uniform grey face)."""
    import tensorflow as tf
    from face_aging.models.caae import tf1_checkpoint
    from face_aging.models.caae.model import CAAE
    from face_aging.training.rundir import RunDir
    from helpers import original_shapes, random_arrays, write_tf1_checkpoint
    root = tmp_path_factory.mktemp("lively")
    arrays = random_arrays(original_shapes(32, enc=8, gen=64), seed=11)
    prefix = write_tf1_checkpoint(str(root / "tf1"), arrays)[0]
    model = CAAE(tiny_config)
    tf1_checkpoint.load_tf1_checkpoint(prefix, model.encoder, model.generator, model.d_z, model.d_img)
    run = RunDir(str(root / "run")).make()
    tf.train.CheckpointManager(model.checkpoint, run.checkpoint, max_to_keep=1, checkpoint_name="model").save(0)
    run.write_options({"image_size": 32, "z_dim": 50, "enc_channels": 8, "gen_channels": 64})
    return run.root, model
