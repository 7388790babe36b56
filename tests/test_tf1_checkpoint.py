"""Importing checkpoints of the original TF1 CAAE code.

The checkpoints here are written the way the original wrote them (graph mode, variable scopes, tf.compat.v1 Saver),
their expected names and shapes come from the architecture as docs/CAAE.md states it (not from the code under test), and
the reference outputs are computed from the written arrays with raw tf.nn ops only.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from helpers import original_shapes, random_arrays, write_tf1_checkpoint  # noqa: E402
from face_aging.models.caae.networks import build_networks  # noqa: E402
from face_aging.models.caae.tf1_checkpoint import (  # noqa: E402
    ORIGINAL_VARIABLES_128,
    CheckpointMismatchError,
    is_tf1_checkpoint,
    load_tf1_checkpoint,
    resolve_tf1_prefix,
    tf1_variable_map,
)

SIZE, Z_DIM, ENC, GEN = 32, 50, 8, 64
BATCH = 4
BN_EPSILON = 1e-3
# Independent of the module under test: TF1 variable name -> Keras attribute.
KERAS_ATTRIBUTE = {"w": "kernel", "b": "bias", "beta": "beta", "moving_mean": "moving_mean",
                   "moving_variance": "moving_variance"}


def small_models():
    return build_networks(SIZE, z_dim=Z_DIM, enc_channels=ENC, gen_channels=GEN)


def snapshot(models):
    return [w.numpy().copy() for m in models if m is not None for w in m.weights]


def assert_unchanged(before, models):
    after = snapshot(models)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def checkpoint32(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tf1") / "checkpoint")
    arrays = random_arrays(original_shapes(SIZE, Z_DIM, ENC, GEN), seed=1)
    prefixes = write_tf1_checkpoint(directory, arrays, global_steps=(2360, 4720))
    return directory, prefixes, arrays


@pytest.fixture(scope="module")
def loaded32(checkpoint32):
    directory, _, arrays = checkpoint32
    models = small_models()
    step = load_tf1_checkpoint(directory, *models)
    return models, step, arrays


# 1 ------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_map_of_default_model_is_the_released_checkpoint_listing():
    assert original_shapes(128) == ORIGINAL_VARIABLES_128  # the helper used below agrees with the release
    models = build_networks(128)
    mapping = tf1_variable_map(*models)
    assert len(mapping) == 69
    assert {name: tuple(v.shape) for name, v in mapping.items()} == ORIGINAL_VARIABLES_128
    all_weights = {id(w) for m in models for w in m.weights}
    assert {id(v) for v in mapping.values()} == all_weights and len(all_weights) == 69


@pytest.mark.parametrize("size", [32, 64])
def test_map_follows_image_size_and_widths(size):
    models = build_networks(size, z_dim=Z_DIM, enc_channels=ENC, gen_channels=GEN)
    mapping = tf1_variable_map(*models)
    assert {name: tuple(v.shape) for name, v in mapping.items()} == original_shapes(size, Z_DIM, ENC, GEN)
    e_and_g = tf1_variable_map(models[0], models[1], None, None)
    assert set(e_and_g) == {n for n in mapping if n[0] in "EG"}


# 2 ------------------------------------------------------------------------------------------------------------

def test_load_assigns_every_tensor_and_returns_global_step(loaded32):
    models, step, arrays = loaded32
    assert step == 4720  # the directory resolved to the latest of the two saves
    by_family = {"E": models[0], "G": models[1], "D_z": models[2], "D_img": models[3]}
    compared = set()
    for name, value in arrays.items():
        scope, var = name.rsplit("/", 1)
        family = "D_img" if scope.startswith("D_img") else "D_z" if scope.startswith("D_z") else scope[0]
        variable = getattr(by_family[family].get_layer(scope), KERAS_ATTRIBUTE[var])
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=name)
        compared.add(id(variable))
    assert compared == {id(w) for m in models for w in m.weights}  # nothing left at its random init


@pytest.mark.slow
def test_load_from_prefix_returns_its_own_step(checkpoint32):
    _, prefixes, arrays = checkpoint32
    encoder, generator, _, _ = small_models()
    assert load_tf1_checkpoint(prefixes[0], encoder, generator) == 2360
    np.testing.assert_array_equal(encoder.get_layer("E_fc").kernel.numpy(), arrays["E_fc/w"])


# 3 ------------------------------------------------------------------------------------------------------------

def one_hot_pm1(classes, depth):
    labels = -np.ones((len(classes), depth), np.float32)
    labels[np.arange(len(classes)), classes] = 1
    return labels


def reference_encoder(w, x):
    h = tf.constant(x)
    i = 0
    while f"E_conv{i}/w" in w:
        h = tf.nn.relu(tf.nn.conv2d(h, w[f"E_conv{i}/w"], strides=2, padding="SAME") + w[f"E_conv{i}/b"])
        i += 1
    h = tf.reshape(h, [h.shape[0], -1])
    return tf.tanh(tf.matmul(h, w["E_fc/w"]) + w["E_fc/b"]).numpy()


def reference_generator(w, z, age, gender, tiling="tile"):
    if tiling == "tile":  # the original: whole-vector repeats a0..a9, a0..a9, ...
        age_t, gender_t = tf.tile(age, [1, 5]), tf.tile(gender, [1, 25])
    else:  # a wrong import would look like this: each element repeated
        age_t, gender_t = np.repeat(age, 5, axis=1), np.repeat(gender, 25, axis=1)
    h = tf.matmul(tf.concat([z, age_t, gender_t], axis=1), w["G_fc/w"]) + w["G_fc/b"]
    channels = w["G_deconv0/w"].shape[3]
    h = tf.nn.relu(tf.reshape(h, [z.shape[0], 4, 4, channels]))
    n = int(np.log2(SIZE)) - 2
    for i in range(n + 2):
        kernel = w[f"G_deconv{i}/w"]
        stride = 2 if i < n else 1
        out_shape = [h.shape[0], h.shape[1] * stride, h.shape[2] * stride, kernel.shape[2]]
        h = tf.nn.conv2d_transpose(h, kernel, output_shape=out_shape, strides=stride, padding="SAME")
        h = h + w[f"G_deconv{i}/b"]
        h = tf.nn.relu(h) if i < n + 1 else tf.tanh(h)
    return h.numpy()


def reference_bn(w, scope, h):
    return (h - w[f"{scope}/moving_mean"]) / np.sqrt(w[f"{scope}/moving_variance"] + BN_EPSILON) + w[f"{scope}/beta"]


def reference_d_z(w, z):
    h = tf.constant(z)
    for i in range(3):
        h = tf.nn.relu(reference_bn(w, f"D_z_bn{i}", tf.matmul(h, w[f"D_z_fc{i}/w"]) + w[f"D_z_fc{i}/b"]))
    return (tf.matmul(h, w["D_z_fc3/w"]) + w["D_z_fc3/b"]).numpy()


def reference_d_img(w, x, age, gender, tiling="tile"):
    h = tf.constant(x)
    for i in range(4):
        h = tf.nn.conv2d(h, w[f"D_img_conv{i}/w"], strides=2, padding="SAME") + w[f"D_img_conv{i}/b"]
        h = tf.nn.relu(reference_bn(w, f"D_img_bn{i}", h))
        if i == 0:
            ones = tf.ones([h.shape[0], h.shape[1], h.shape[2], 1])
            gender_t = tf.tile(gender, [1, 5]) if tiling == "tile" else np.repeat(gender, 5, axis=1)
            labels = tf.concat([age, gender_t], axis=1)
            h = tf.concat([h, ones * labels[:, None, None, :]], axis=3)
    h = tf.reshape(h, [h.shape[0], -1])
    h = tf.nn.leaky_relu(tf.matmul(h, w["D_img_fc1/w"]) + w["D_img_fc1/b"], alpha=0.2)
    return (tf.matmul(h, w["D_img_fc2/w"]) + w["D_img_fc2/b"]).numpy()


def test_loaded_models_match_raw_tf_nn_reference(loaded32):
    (encoder, generator, d_z, d_img), _, w = loaded32
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    z = rng.uniform(-1, 1, (BATCH, Z_DIM)).astype(np.float32)
    age = one_hot_pm1(rng.choice(10, BATCH, replace=False), 10)  # distinct classes: no symmetric labels
    gender = one_hot_pm1([0, 1, 1, 0], 2)

    expected_z = reference_encoder(w, x)
    np.testing.assert_allclose(encoder(x).numpy(), expected_z, atol=1e-5)

    expected_images = reference_generator(w, z, age, gender)
    generated = generator(z, age, gender).numpy()
    np.testing.assert_allclose(generated, expected_images, atol=1e-5)
    # The reference must be able to tell a wrong label order apart, or this test would prove nothing about it.
    assert np.abs(reference_generator(w, z, age, gender, tiling="repeat") - generated).max() > 1e-2
    assert 0.05 < np.std(generated) and np.mean(np.abs(generated) > 0.999) < 0.5  # informative, not saturated

    np.testing.assert_allclose(d_z(z, training=False).numpy(), reference_d_z(w, z), atol=1e-5, rtol=1e-5)
    logits = d_img(x, age, gender, training=False).numpy()
    np.testing.assert_allclose(logits, reference_d_img(w, x, age, gender), atol=1e-4, rtol=1e-5)
    assert np.abs(reference_d_img(w, x, age, gender, tiling="repeat") - logits).max() > 1e-3


# 4 ------------------------------------------------------------------------------------------------------------

def test_missing_tensor_is_named_and_nothing_assigned(tmp_path, checkpoint32):
    arrays = dict(checkpoint32[2])
    del arrays["G_deconv2/b"], arrays["D_z_bn1/moving_variance"]
    write_tf1_checkpoint(str(tmp_path), arrays, global_steps=(10,))
    models = small_models()
    before = snapshot(models)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_tf1_checkpoint(str(tmp_path), *models)
    message = str(caught.value)
    assert "G_deconv2/b" in message and "D_z_bn1/moving_variance" in message
    assert str(tmp_path / "model-10") in message
    assert set(caught.value.missing) == {"G_deconv2/b", "D_z_bn1/moving_variance"}
    assert_unchanged(before, models)


@pytest.mark.slow
def test_other_image_size_names_shapes_and_hints(tmp_path):
    arrays = random_arrays(original_shapes(64, Z_DIM, ENC, GEN), seed=2)
    prefix, = write_tf1_checkpoint(str(tmp_path), arrays, global_steps=(3,))
    models = small_models()
    before = snapshot(models)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_tf1_checkpoint(prefix, *models)
    message = str(caught.value)
    # 64: four encoder convs 8..64 -> 4x4x64; 32: three, 8..32 -> 4x4x32. D_img: 4x4x128 vs 2x2x128.
    assert "E_fc/w: checkpoint (1024, 50) vs model (512, 50)" in message
    assert "D_img_fc1/w: checkpoint (2048, 1024) vs model (512, 1024)" in message
    assert ("E_fc/w", (1024, 50), (512, 50)) in caught.value.mismatched
    assert "E_conv3/w" in message  # a layer the 32 model does not have
    assert "--image_size 64" in message and prefix in message
    assert_unchanged(before, models)


def test_unexpected_network_tensor_is_refused(tmp_path, checkpoint32):
    arrays = dict(checkpoint32[2])
    arrays["D_z_bn0/gamma"] = np.ones(64, np.float32)  # a BN with a scale the models do not have
    write_tf1_checkpoint(str(tmp_path), arrays, global_steps=(1,), optimizer_extras=False)
    models = small_models()
    before = snapshot(models)
    with pytest.raises(CheckpointMismatchError, match="D_z_bn0/gamma"):
        load_tf1_checkpoint(str(tmp_path), *models)
    assert_unchanged(before, models)


def test_test_mode_loads_only_encoder_and_generator(tmp_path, checkpoint32):
    arrays = {n: v for n, v in checkpoint32[2].items() if n[0] in "EG"}
    write_tf1_checkpoint(str(tmp_path), arrays, optimizer_extras=False)  # no global_step variable
    encoder, generator, d_z, d_img = small_models()
    assert load_tf1_checkpoint(str(tmp_path), encoder, generator) is None
    np.testing.assert_array_equal(generator.get_layer("G_fc").kernel.numpy(), arrays["G_fc/w"])
    with pytest.raises(CheckpointMismatchError, match="D_z_fc0/w") as caught:
        load_tf1_checkpoint(str(tmp_path), encoder, generator, d_z, d_img)
    assert "d_z=None, d_img=None" in str(caught.value)


def test_nonexistent_path_and_empty_directory(tmp_path):
    missing = str(tmp_path / "no" / "model-5")
    with pytest.raises(FileNotFoundError, match="no/model-5"):
        resolve_tf1_prefix(missing)
    with pytest.raises(FileNotFoundError, match="no/model-5"):
        load_tf1_checkpoint(missing, *small_models()[:2])
    with pytest.raises(FileNotFoundError, match="'checkpoint' state file"):
        resolve_tf1_prefix(str(tmp_path))
    assert not is_tf1_checkpoint(missing) and not is_tf1_checkpoint(str(tmp_path))


def test_directory_and_file_forms_resolve(tmp_path, checkpoint32):
    directory, prefixes, _ = checkpoint32
    assert resolve_tf1_prefix(directory) == prefixes[-1]
    assert resolve_tf1_prefix(prefixes[0]) == prefixes[0]
    assert resolve_tf1_prefix(prefixes[0] + ".index") == prefixes[0]
    assert is_tf1_checkpoint(directory) and is_tf1_checkpoint(prefixes[0])
    # The original saved under './save/checkpoint/model-N': a moved directory's state file names a stale path.
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in os.listdir(directory):
        if f.startswith("model-4720."):
            (moved / f).write_bytes(open(os.path.join(directory, f), "rb").read())
    (moved / "checkpoint").write_text('model_checkpoint_path: "./save/checkpoint/model-4720"\n')
    assert resolve_tf1_prefix(str(moved)) == str(moved / "model-4720")


def test_tf2_checkpoint_is_not_tf1(tmp_path):
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0])).write(str(tmp_path / "ckpt"))
    assert not is_tf1_checkpoint(prefix)
    with pytest.raises(CheckpointMismatchError, match="does not look like a checkpoint of the original"):
        load_tf1_checkpoint(prefix, *small_models()[:2])
