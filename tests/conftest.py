"""Shared fixtures: tiny CAAE settings (32x32, narrow networks) and data the tests make themselves. Shared helpers
that are not fixtures are in helpers.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One thread per operation: the tests' tiny tensors gain nothing from a second one, and the tests that start two
# worker processes (test_multiworker) then have a core each. Read when TensorFlow starts, here and in the processes
# the tests launch.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

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
def trained(tmp_path_factory, face_folder, tiny_config):
    """(run directory, the CAAE as training left it) after one epoch of tiny CAAE training on `face_folder` (6 steps
    of 16 faces): the one trained run of the session. Tests that write into it or train it further copy it."""
    from face_aging.models.caae.config import TrainOptions
    from face_aging.models.caae.train import train
    savedir = str(tmp_path_factory.mktemp("run"))
    model = train(TrainOptions(savedir=savedir, dataset=face_folder, epoch=1, batch_size=16, config=tiny_config))
    return savedir, model


@pytest.fixture(scope="session")
def trained_run(trained):
    """The run directory of `trained`."""
    return trained[0]


@pytest.fixture(scope="session")
def pagan_prepared(tmp_path_factory):
    """A UTKFace-style folder of 160 synthetic faces at 40x40 (all four clusters) prepared through main.py (--model
    prepare, a fifth for validation): the data of the PAGAN and phi_age runs (test_pagan_run, test_reliability)."""
    from face_aging.data.synthetic import write_utkface_folder
    from helpers import call_main
    root = tmp_path_factory.mktemp("pagan_data")
    write_utkface_folder(str(root / "faces"), 160, 40, seed=3)
    out = root / "prepared"
    result = call_main("--model", "prepare", "--dataset", str(root / "faces"), "--prepared_dir", str(out),
                       "--val_fraction", "0.2")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def random_phi_age(tmp_path_factory):
    """A folder holding a small random phi_age (VGG-16 at 32 px, 1/16 of its widths), saved as `--model age` saves
    one: what a PAGAN run reads as --age_classifier where no test needs a trained one."""
    from face_aging.models.pagan import frozen
    from face_aging.models.pagan.vgg import VGG16, scaled_channels
    folder = tmp_path_factory.mktemp("random_phi_age") / "phi_age"
    phi_age = VGG16(4, 32, scaled_channels(0.0625), 8, input_scale=1 / 127.5, name="phi_age")
    frozen.save_age_classifier(phi_age, str(folder), {"source": "random, for tests"})
    return folder


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
