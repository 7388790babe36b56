"""The instance-discrimination identity network (face_aging/models/identity/): NT-Xent as its docstring writes it, the
augmented views, training through main.py on faces the test makes (resume, the folder PAGAN reads), and PAGAN using it
as its frozen identity network with gradients to G."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_frozen_identity_gives_g_gradients, call_main, synthetic_face

TINY = ["--image_size=32", "--batch_size=16", "--summary_every=2"]


def test_nt_xent_is_the_docstrings_equation():
    from face_aging.models.identity import network
    rs = np.random.RandomState(0)
    a, b = rs.normal(size=(3, 5)).astype(np.float32), rs.normal(size=(3, 5)).astype(np.float32)
    loss, accuracy = network.nt_xent(tf.constant(a), tf.constant(b), temperature=0.5)
    z = np.concatenate([a, b])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T / 0.5
    expected = []
    for i in range(6):
        partner = (i + 3) % 6
        others = [j for j in range(6) if j != i]
        expected.append(-s[i, partner] + np.log(np.sum(np.exp(s[i, others]))))
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-5)
    found = [np.argmax(np.where(np.arange(6) == i, -np.inf, s[i])) == (i + 3) % 6 for i in range(6)]
    assert float(accuracy) == pytest.approx(np.mean(found))
    # Views that are their faces exactly find each other, and cost less than views of other faces.
    same, _ = network.nt_xent(tf.constant(a), tf.constant(a))
    _, all_found = network.nt_xent(tf.constant(a), tf.constant(a))
    assert float(all_found) == 1.0 and float(same) < float(network.nt_xent(tf.constant(a), tf.constant(b))[0])


def test_views_are_seeded_augmentations_in_range():
    from face_aging.models.identity.train import view
    face, _ = synthetic_face(3, size=38)
    face = tf.constant(face)
    one = view(face, tf.constant([1, 2], tf.int64), 32).numpy()
    assert one.shape == (32, 32, 3) and one.min() >= -1 and one.max() <= 1
    assert np.array_equal(one, view(face, tf.constant([1, 2], tf.int64), 32).numpy())      # a resumed run: the same
    other = view(face, tf.constant([1, 3], tf.int64), 32).numpy()
    assert np.abs(one - other).mean() > 0.01


@pytest.fixture(scope="module")
def identity_run(pagan_prepared, tmp_path_factory):
    """Two epochs of instance discrimination through main.py on the 128 synthetic training faces at 32 px."""
    root = tmp_path_factory.mktemp("identity")
    argv = ["--model", "identity", "--is_train", "--prepared_dir", str(pagan_prepared), "--savedir",
            str(root / "run"), "--identity", str(root / "net"), "--epoch=2", *TINY]
    result = call_main(*argv)
    assert result.returncode == 0, result.stderr
    return root, argv, result


def test_training_writes_the_network_pagan_reads_and_resumes(identity_run):
    from face_aging.models.pagan import frozen
    root, argv, result = identity_run
    assert "Epoch 2: validation views matched" in result.stdout and f"--identity {root / 'net'}" in result.stdout
    options = json.loads((root / "run" / "options.json").read_text())
    assert options["model"] == "identity" and options["image_size"] == 32 and options["epochs"] == 2
    assert any(name.startswith("events") for name in os.listdir(root / "run" / "summary"))
    record = json.loads((root / "net" / "identity.json").read_text())
    assert record["format"] == "face_aging.instance_identity" and record["epoch"] == 2
    again = call_main(*argv)
    assert again.returncode == 0 and "Already trained 2 epochs" in again.stdout
    network = frozen.load_identity_network(str(root / "net"))
    assert network.image_size == 32 and not network.trainable_variables
    # Unit-length descriptors of any size of face; two different faces are not the same point.
    faces = np.stack([synthetic_face(seed, size=48)[0] for seed in (1, 2)]).astype(np.float32) / 127.5 - 1
    d = network.descriptor(tf.constant(faces)).numpy()
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
    assert np.linalg.norm(d[0] - d[1]) > 1e-3


def test_pagan_trains_against_it_frozen_with_gradients_to_g(identity_run):
    from face_aging.models.pagan import frozen
    root, _, _ = identity_run
    identity = frozen.load_identity_network(str(root / "net"))
    faces = np.stack([synthetic_face(seed, size=32)[0] for seed in (1, 2)]).astype(np.float32) / 127.5 - 1
    assert_frozen_identity_gives_g_gradients(identity, faces)


def test_identity_flag_errors(tmp_path):
    result = call_main("--model", "identity", "--is_train", "False")
    assert result.returncode == 2 and "--model identity only trains" in result.stderr
    result = call_main("--model", "identity", "--is_train", "--identity", "caae")
    assert result.returncode == 2 and "the folder the trained network is written to" in result.stderr
    result = call_main("--model", "identity", "--is_train", "--batch_size=1", "--identity", str(tmp_path / "n"))
    assert result.returncode == 2 and "at least 2 faces a batch" in result.stderr
    # A folder without the network: PAGAN says what is missing and how to make it.
    from face_aging.models.identity import store
    from face_aging.models.pagan.vgg_store import MissingWeightsError
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "identity.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="identity.index.*--model identity --is_train"):
        store.load(str(tmp_path / "half"))
