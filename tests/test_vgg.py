"""VGG-16 (VGG-Face / phi_age) and the importer of the public VGG-Face weights.

The weight files are written here in each published layout (MatConvNet SimpleNN new and old, DagNN; PyTorch
state_dict) from small random arrays, and every converted network is checked against a reference forward pass
computed from those raw arrays with tf.nn ops (or torch), following the source framework's own conventions:
MatConvNet filters H x W x Cin x Cout applied by correlation, fc layers as VALID convolutions over the last map.
"""

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.io  # noqa: E402
import tensorflow as tf  # noqa: E402

from helpers import (VGG_BLOCKS, VGG_CLASSES, VGG_FC_UNITS, VGG_FILE_MEAN, VGG_LAYOUTS, VGG_SIZE, VGG_WIDTH,  # noqa: E402
                     cell, random_network, simplenn_layer, write_matconvnet)
from face_aging.errors import FaceAgingError  # noqa: E402
from face_aging.models.pagan import frozen, vgg_store  # noqa: E402
from face_aging.models.pagan import vggface_import as vi  # noqa: E402
from face_aging.models.pagan.vgg import TAPS, VGG16, VGG_FACE_MEAN_RGB, scaled_channels  # noqa: E402

# The small network the weight files are written for (helpers.random_network's defaults).
SIZE, FC_UNITS, CLASSES, FILE_MEAN, LAYOUTS = VGG_SIZE, VGG_FC_UNITS, VGG_CLASSES, VGG_FILE_MEAN, VGG_LAYOUTS
BLOCKS = VGG_BLOCKS
CHANNELS = scaled_channels(VGG_WIDTH)


def tiny_model(**kwargs):
    settings = dict(num_classes=CLASSES, image_size=SIZE, channels=CHANNELS, fc_units=FC_UNITS)
    settings.update(kwargs)
    return VGG16(**settings)


def images(n=2, size=SIZE, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, [n, size, size, 3]), tf.float32)


# ----------------------------------------------------------------------------------------------------------------
# VGG16


def vgg16_param_count(classes, channels=(64, 128, 256, 512, 512), fc=4096, side=7):
    count, cin = 0, 3
    for width, n in zip(channels, BLOCKS):
        for _ in range(n):
            count += 9 * cin * width + width
            cin = width
    return count + (side * side * cin * fc + fc) + (fc * fc + fc) + (fc * classes + classes)


@pytest.mark.slow
def test_vgg_face_at_224_with_the_real_widths():
    model = VGG16(2622)
    assert vgg16_param_count(2622) == 145_002_878  # the published VGG-Face parameter count
    assert model.count_params() == 145_002_878
    names = [w.path for w in model.weights]
    assert names[:2] == ["conv1_1/kernel", "conv1_1/bias"] and names[-2:] == ["fc8/kernel", "fc8/bias"]
    x = images(1, 224)
    assert model(x).shape == (1, 2622)
    taps = model.taps(x)
    assert list(taps) == list(TAPS)
    assert [tuple(t.shape) for t in taps.values()] == [(1, 224, 224, 64), (1, 112, 112, 128), (1, 56, 56, 256),
                                                       (1, 28, 28, 512)]
    assert model.descriptor(x).shape == (1, 4096)


def test_small_network_shapes_and_taps_at_full_half_quarter_eighth_resolution():
    model = tiny_model(image_size=32)
    x = images(3, 32)
    assert model(x).shape == (3, CLASSES)
    taps = model.taps(x)
    assert [tuple(t.shape) for t in taps.values()] == [(3, 32, 32, 4), (3, 16, 16, 8), (3, 8, 8, 16), (3, 4, 4, 32)]
    assert model.taps(x, ["pool5", "conv5_3"])["pool5"].shape == (3, 1, 1, 32)
    assert model.descriptor(x, "fc6").shape == (3, FC_UNITS)
    assert scaled_channels(1 / 16) == (4, 8, 16, 32, 32) and scaled_channels(1e-6) == (1, 1, 1, 1, 1)


def test_taps_before_relu_can_be_negative_after_relu_cannot():
    model = tiny_model()
    x = images()
    before = model.taps(x, after_relu=False)
    after = model.taps(x, after_relu=True)
    for name in TAPS:
        assert before[name].numpy().min() < 0, name
        assert after[name].numpy().min() >= 0, name
        np.testing.assert_allclose(after[name].numpy(), np.maximum(before[name].numpy(), 0), rtol=1e-6)


def conv_ops(fn, *args):
    graph = tf.function(fn).get_concrete_function(*args).graph
    return [op.type for op in graph.get_operations() if op.type in ("Conv2D", "MatMul")]


@pytest.mark.slow
def test_taps_run_only_as_deep_as_the_deepest_requested_tap():
    model = tiny_model()
    spec = tf.TensorSpec([1, SIZE, SIZE, 3])
    assert conv_ops(lambda x: model.taps(x, ["conv1_2"]), spec) == ["Conv2D"] * 2
    assert conv_ops(lambda x: model.taps(x, ["conv3_3", "conv1_2"]), spec) == ["Conv2D"] * 7
    assert conv_ops(lambda x: model.taps(x), spec) == ["Conv2D"] * 10
    assert conv_ops(lambda x: model(x), spec) == ["Conv2D"] * 13 + ["MatMul"] * 3


def test_descriptor_is_deterministic_although_the_model_has_dropout():
    model = tiny_model(dropout=0.5)
    x = images()
    # Dropout is really there: two training-mode passes differ.
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=True).numpy())
    first, second = model.descriptor(x).numpy(), model.descriptor(x).numpy()
    np.testing.assert_array_equal(first, second)
    assert first.shape == (2, FC_UNITS) and first.min() >= 0 and first.max() > 0
    np.testing.assert_array_equal(model.descriptor(x, "fc8").numpy(), model(x).numpy())
    np.testing.assert_array_equal(tf.function(model.descriptor)(x).numpy(), first)


def test_preprocess_maps_minus_one_to_one_onto_0_255_minus_the_mean():
    model = tiny_model(mean_rgb=(10.0, 20.0, 30.0))
    x = tf.constant([[[[-1.0, 0.0, 1.0], [1.0, 1.0, -1.0]]]])
    expected = np.array([[[[0 - 10, 127.5 - 20, 255 - 30], [255 - 10, 255 - 20, 0 - 30]]]])
    np.testing.assert_allclose(model.preprocess(x).numpy(), expected, rtol=1e-6)
    assert VGG16(2, 32, channels=(1,) * 5, fc_units=2).mean_rgb == VGG_FACE_MEAN_RGB
    scaled = tiny_model(mean_rgb=(10.0, 20.0, 30.0), input_scale=0.5)
    np.testing.assert_allclose(scaled.preprocess(x).numpy(), expected * 0.5, rtol=1e-6)


@pytest.mark.parametrize("size", [0, 16, 48, 100, 224.5])
def test_image_sizes_that_are_not_multiples_of_32_are_refused(size):
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_model(image_size=size)


def test_wrong_input_size_for_the_fc_layers_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="built for 64x64"):
        model(images(1, 32))
    assert model.taps(images(1, 32), ["conv4_3"])["conv4_3"].shape == (1, 4, 4, 32)  # convs take any size
    with pytest.raises(ValueError, match="unknown VGG16 tap"):
        model.taps(images(1), ["conv6_1"])


def test_config_round_trip():
    model = tiny_model(dropout=0.3, mean_rgb=(1.0, 2.0, 3.0), input_scale=0.25)
    config = model.get_config()
    assert config["input_scale"] == 0.25
    assert config["num_classes"] == CLASSES and config["channels"] == list(CHANNELS)
    assert VGG16.from_config(config).get_config() == config


# ----------------------------------------------------------------------------------------------------------------
# MatConvNet files, written as MatConvNet wrote them


def reference_forward(layers, x, mean):
    """The network as MatConvNet runs it, from the raw arrays: {layer name: output} and the logits."""
    x = (np.asarray(x, np.float32) + 1) * 127.5 - np.asarray(mean, np.float32)
    outputs = {}
    for name, kind, filters, biases in layers:
        if kind == "conv":
            pad = 0 if name.startswith("fc") else 1
            x = tf.nn.conv2d(x, filters, 1, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) + biases
        elif kind == "relu":
            x = tf.nn.relu(x)
        elif kind == "pool":
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        else:
            break
        outputs[name] = x.numpy()
    return outputs, outputs["fc8"][:, 0, 0, :]


@pytest.fixture(scope="module")
def network():
    return random_network()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_matconvnet_layout_converts_to_the_reference_network(tmp_path, network, layout):
    source = write_matconvnet(str(tmp_path / "vgg_face.mat"), network, layout)
    params, meta = vi.read_matconvnet(source)
    assert meta["layout"] == layout.replace("-toplevel", "").replace("-net", "")
    np.testing.assert_allclose(meta["mean_rgb"], FILE_MEAN, rtol=1e-6)
    assert meta["image_size"] == SIZE
    assert meta["class_names"] == [f"Person {i}" for i in range(CLASSES)]

    out_dir = str(tmp_path / "converted")
    model = vi.convert(source, out_dir)
    config = model.get_config()
    assert (config["image_size"], config["channels"], config["fc_units"], config["num_classes"]) == \
        (SIZE, list(CHANNELS), FC_UNITS, CLASSES)
    np.testing.assert_allclose(model.mean_rgb, FILE_MEAN, rtol=1e-6)

    x = images(2)
    reference, logits = reference_forward(network, x, FILE_MEAN)
    assert np.abs(reference["relu5_3"]).max() > 0  # the random network is not dead, so the comparison means something
    scale = np.abs(logits).max()
    np.testing.assert_allclose(model(x).numpy(), logits, rtol=1e-4, atol=1e-4 * scale)
    taps = model.taps(x, ["conv2_2", "conv4_3"], after_relu=False)
    np.testing.assert_allclose(taps["conv2_2"].numpy(), reference["conv2_2"], rtol=1e-4,
                               atol=1e-4 * np.abs(reference["conv2_2"]).max())
    np.testing.assert_allclose(model.taps(x, ["conv4_3"])["conv4_3"].numpy(), reference["relu4_3"], rtol=1e-4,
                               atol=1e-4 * np.abs(reference["relu4_3"]).max())
    fc7 = reference["relu7"][:, 0, 0, :]
    np.testing.assert_allclose(model.descriptor(x).numpy(), fc7, rtol=1e-4, atol=1e-4 * np.abs(fc7).max())

    loaded = frozen.load_vggface(out_dir)
    assert loaded.trainable is False and loaded.trainable_weights == []
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(loaded.descriptor(x).numpy(), model.descriptor(x).numpy())
    assert sorted(os.listdir(out_dir)) == ["vgg_face.data-00000-of-00001", "vgg_face.index", "vgg_face.json"]


def test_conversion_json_describes_the_source(tmp_path, network):
    import json
    source = write_matconvnet(str(tmp_path / "vgg-face.mat"), network, "simplenn-toplevel")
    vi.convert(source, str(tmp_path / "out"))
    with open(tmp_path / "out" / "vgg_face.json") as f:
        info = json.load(f)
    assert info["source"] == os.path.abspath(source)
    assert info["num_classes"] == CLASSES and info["num_class_names"] == CLASSES
    assert info["config"]["channels"] == list(CHANNELS)
    np.testing.assert_allclose(info["mean_rgb"], FILE_MEAN, rtol=1e-6)


def test_a_bad_source_leaves_a_previous_conversion_intact(tmp_path, network):
    out_dir = str(tmp_path / "out")
    first = vi.convert(write_matconvnet(str(tmp_path / "a.mat"), network, "simplenn-net"), out_dir)
    bad = str(tmp_path / "b.mat")
    scipy.io.savemat(bad, {"something": np.ones(3)})
    with pytest.raises(vgg_store.WeightsError):
        vi.convert(bad, out_dir)
    np.testing.assert_array_equal(frozen.load_vggface(out_dir)(images(1)).numpy(), first(images(1)).numpy())
    # Converting again over an existing conversion replaces it and leaves no temporary files behind.
    other = random_network(seed=9)
    second = vi.convert(write_matconvnet(str(tmp_path / "c.mat"), other, "dagnn"), out_dir)
    assert sorted(os.listdir(out_dir)) == ["vgg_face.data-00000-of-00001", "vgg_face.index", "vgg_face.json"]
    np.testing.assert_array_equal(frozen.load_vggface(out_dir)(images(1)).numpy(), second(images(1)).numpy())


def test_a_conversion_killed_while_renaming_leaves_a_missing_not_a_mixed_checkpoint(tmp_path, network, monkeypatch):
    out_dir = str(tmp_path / "out")
    vi.convert(write_matconvnet(str(tmp_path / "a.mat"), network, "simplenn-net"), out_dir)
    real_replace, renamed = os.replace, []

    def dies_before_the_index(src, dst):
        if dst.endswith(".index"):
            raise KeyboardInterrupt  # the process is stopped between the data file and the index
        renamed.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_before_the_index)
    with pytest.raises(KeyboardInterrupt):
        vi.convert(write_matconvnet(str(tmp_path / "b.mat"), random_network(seed=5), "simplenn-net"), out_dir)
    monkeypatch.undo()
    assert renamed == [os.path.join(out_dir, "vgg_face.data-00000-of-00001")]
    assert sorted(os.listdir(out_dir)) == ["vgg_face.data-00000-of-00001"]  # no staging directory either
    with pytest.raises(vgg_store.MissingWeightsError, match="--model import"):
        frozen.load_vggface(out_dir)


# ----------------------------------------------------------------------------------------------------------------
# PyTorch vgg_face_dag.pth


def state_dict_arrays(layers):
    """vgg_face_dag's state_dict (as numpy) from MatConvNet-style arrays: OIHW convs, Linear [out, in] on a (C, H, W)
    flatten, as PyTorch's NCHW .view(N, -1) gives it."""
    state = {}
    for name, kind, filters, biases in layers:
        if kind != "conv":
            continue
        if name.startswith("fc"):
            weight = filters.transpose(3, 2, 0, 1).reshape(filters.shape[3], -1)  # [out, C, H, W] flattened
        else:
            weight = filters.transpose(3, 2, 0, 1)
        state[f"{name}.weight"] = np.ascontiguousarray(weight)
        state[f"{name}.bias"] = biases
    return state


def test_state_dict_mapping_gives_the_matconvnet_weights(tmp_path, network):
    """The numpy half of read_pytorch (runs without torch): the same network in PyTorch's layout must map onto
    exactly the weights the MatConvNet reader (checked against the reference forward pass above) produces."""
    expected, _ = vi.read_matconvnet(write_matconvnet(str(tmp_path / "vgg_face.mat"), network, "simplenn-net"))
    params, meta = vi.params_from_state_dict(state_dict_arrays(network), "vgg_face_dag.pth")
    assert meta["image_size"] == SIZE and meta["mean_rgb"] == VGG_FACE_MEAN_RGB
    assert list(params) == list(expected)
    for name, (kernel, bias) in params.items():
        np.testing.assert_array_equal(kernel, expected[name][0], err_msg=name)
        np.testing.assert_array_equal(bias, expected[name][1], err_msg=name)
    state = state_dict_arrays(network)
    del state["fc7.bias"]
    with pytest.raises(vgg_store.WeightsError, match="fc7.bias"):
        vi.params_from_state_dict(state, "vgg_face_dag.pth")


def test_pytorch_state_dict_converts_to_the_torch_network(tmp_path, network):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    state = {key: torch.tensor(value) for key, value in state_dict_arrays(network).items()}
    source = str(tmp_path / "vgg_face_dag.pth")
    torch.save(state, source)
    model = vi.convert(source, str(tmp_path / "out"))
    assert model.mean_rgb == VGG_FACE_MEAN_RGB and model.image_size == SIZE

    x = images(2)
    mean = torch.tensor(VGG_FACE_MEAN_RGB).view(1, 3, 1, 1)
    h = (torch.tensor(x.numpy()).permute(0, 3, 1, 2) + 1) * 127.5 - mean
    with torch.no_grad():
        for block, n in enumerate(BLOCKS, 1):
            for i in range(1, n + 1):
                h = F.relu(F.conv2d(h, state[f"conv{block}_{i}.weight"], state[f"conv{block}_{i}.bias"], padding=1))
            h = F.max_pool2d(h, 2)
        h = h.reshape(h.shape[0], -1)
        h = F.relu(F.linear(h, state["fc6.weight"], state["fc6.bias"]))
        h = F.relu(F.linear(h, state["fc7.weight"], state["fc7.bias"]))
        logits = F.linear(h, state["fc8.weight"], state["fc8.bias"]).numpy()
    np.testing.assert_allclose(model(x).numpy(), logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_pth_without_torch_says_torch_is_needed_only_for_pth(tmp_path):
    source = tmp_path / "vgg_face_dag.pth"
    source.write_bytes(b"not read")
    with pytest.raises(vgg_store.WeightsError) as error:
        vi.convert(str(source), str(tmp_path / "out"))
    message = str(error.value)
    assert str(source) in message and "torch" in message and ".mat" in message
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------------
# Errors


def test_a_file_that_is_not_a_mat_file(tmp_path):
    source = tmp_path / "vgg_face.mat"
    source.write_text("this is not MATLAB data\n" * 20)
    with pytest.raises(vgg_store.WeightsError, match="not a readable MATLAB") as error:
        vi.convert(str(source), str(tmp_path / "out"))
    assert str(source) in str(error.value) and isinstance(error.value, FaceAgingError)


def test_a_matlab_v73_file_is_named_as_such(tmp_path):
    source = tmp_path / "vgg_face.mat"
    # A v7.3 MAT header: 116 bytes of text, 8 of subsystem offset, version 0x0200, endianness 'IM'.
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    source.write_bytes(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM" + b"\0" * 512)
    with pytest.raises(vgg_store.WeightsError, match="v7.3") as error:
        vi.convert(str(source), str(tmp_path / "out"))
    assert str(source) in str(error.value)


def test_a_mat_file_without_a_network(tmp_path):
    source = str(tmp_path / "other.mat")
    scipy.io.savemat(source, {"celebrityData": {"age": np.arange(3.0)}})
    with pytest.raises(vgg_store.WeightsError, match="layers") as error:
        vi.read_matconvnet(source)
    assert source in str(error.value) and "celebrityData" in str(error.value)


@pytest.mark.parametrize("layout", ["simplenn-net", "dagnn"])
def test_a_missing_layer_is_named(tmp_path, network, layout):
    source = str(tmp_path / "vgg_face.mat")
    write_matconvnet(source, [layer for layer in network if layer[0] != "conv3_2"], layout)
    with pytest.raises(vgg_store.WeightsError, match="conv3_2") as error:
        vi.convert(source, str(tmp_path / "out"))
    assert source in str(error.value)


def test_a_conv_layer_without_weights_is_named(tmp_path, network):
    source = str(tmp_path / "vgg_face.mat")
    layers = cell([{"name": n, "type": k} if n == "conv2_1" else simplenn_layer(n, k, f, b, old=False)
                   for n, k, f, b in network])
    scipy.io.savemat(source, {"layers": layers})
    with pytest.raises(vgg_store.WeightsError, match="conv2_1") as error:
        vi.read_matconvnet(source)
    assert source in str(error.value)


def test_shapes_that_do_not_chain_are_refused(tmp_path, network):
    broken = [(n, k, f[:, :, :-1, :] if n == "conv2_2" else f, b) for n, k, f, b in network]
    source = write_matconvnet(str(tmp_path / "vgg_face.mat"), broken, "simplenn-net")
    with pytest.raises(vgg_store.WeightsError, match="conv2_2") as error:
        vi.convert(source, str(tmp_path / "out"))
    assert source in str(error.value)


def test_unknown_extension_and_missing_source(tmp_path):
    source = tmp_path / "vgg_face.h5"
    source.write_bytes(b"\0")
    with pytest.raises(vgg_store.WeightsError, match=r"\.mat"):
        vi.convert(str(source), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="nowhere.mat"):
        vi.convert(str(tmp_path / "nowhere.mat"), str(tmp_path / "out"))


def test_load_vggface_on_an_empty_directory_tells_how_to_import(tmp_path):
    with pytest.raises(vgg_store.MissingWeightsError) as error:
        frozen.load_vggface(str(tmp_path))
    message = str(error.value)
    assert os.path.join(str(tmp_path), "vgg_face.json") in message
    assert "--model import" in message and "vgg_face_dag.pth" in message
    assert isinstance(error.value, FaceAgingError)


def test_load_vggface_with_the_checkpoint_gone_names_the_missing_file(tmp_path, network):
    out_dir = str(tmp_path / "out")
    vi.convert(write_matconvnet(str(tmp_path / "a.mat"), network, "simplenn-net"), out_dir)
    os.remove(os.path.join(out_dir, "vgg_face.index"))
    with pytest.raises(vgg_store.MissingWeightsError, match="vgg_face.index") as error:
        frozen.load_vggface(out_dir)
    assert "--model import" in str(error.value)
