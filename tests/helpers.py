"""Helpers shared by several test modules (fixtures are in conftest.py). Imported as `from helpers import ...`:
pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode, no __init__.py). Heavy libraries
(TensorFlow, SciPy, absl) are imported inside the functions that need them, so that a test module importing one
light helper does not pay for them."""

import glob
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--image_size=32", "--enc_channels=8", "--gen_channels=64", "--batch_size=16"]


# ------------------------------------------------------------------------------------------------ running the CLI

def run_main(*args, timeout=300):
    """Run main.py as a user would, in a new process; returns the CompletedProcess (text output). Each launch pays
    Python's and TensorFlow's start (5-8 s on 2 cores): use it where the process itself is under test (its exit by
    a signal, what it imports, a resource limit, TensorFlow's start-up); call_main otherwise."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, "main.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def call_main(*args):
    """main.py's entry point run in this process: the same flag parsing (face_aging.cli.flags.parse_flags, into a
    fresh FlagValues, so nothing carries over between calls) and the same main() with its error handling, as
    absl.app.run calls them. Returns a CompletedProcess like run_main's: the exit status main.py would have (2 for
    a flag error, 1 for a user error, 1 and the traceback on stderr for any other exception), what was printed to
    stdout, and on stderr what was written there plus every logging record (INFO and up, as absl shows them)."""
    import contextlib
    import logging
    import traceback
    from absl import flags
    from face_aging.models.caae import residual
    from face_aging.cli import commands, flags as cli_flags
    from face_aging.inference import combined
    fv = flags.FlagValues()
    cli_flags.define_flags(fv)
    argv = ["main.py", *args]
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname).1s %(filename)s:%(lineno)d] %(message)s"))
    root = logging.getLogger()
    saved_level, saved_ghost_guard, saved_steer = root.level, residual.GHOST_GUARD, combined.STEER
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = commands.main(cli_flags.parse_flags(argv, fv), fv)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
            except Exception:  # what the interpreter does with an uncaught exception
                traceback.print_exc()
                code = 1
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        residual.GHOST_GUARD, combined.STEER = saved_ghost_guard, saved_steer
    return subprocess.CompletedProcess(argv, code or 0, out.getvalue(), err.getvalue())


def parsed(*args):
    """main.py's flags parsed from `args` into a fresh FlagValues, as the command line would."""
    from absl import flags
    from face_aging.cli import flags as cli_flags
    fv = flags.FlagValues()
    cli_flags.define_flags(fv)
    cli_flags.parse_flags(["main.py", *args], fv)
    return fv


def first_faces(face_folder, folder, count):
    """A new folder holding copies of the first `count` faces of face_folder (test mode's input); returns it."""
    os.makedirs(folder)
    for name in sorted(os.listdir(face_folder))[:count]:
        shutil.copy(os.path.join(face_folder, name), folder)
    return folder


def assert_same_first_step(single, distributed):
    """A distributed CAAE step (two replicas or two workers) against one device's, each (replicas, loss terms, Adam's
    first moments, weights) after one step on the same global batch."""
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


# ------------------------------------------------------------------------------------------------ files and runs

def read_events(summary_dir):
    """{tag: [(step, value or array)]} from every event file of a run."""
    import tensorflow as tf
    out = {}
    for path in sorted(glob.glob(os.path.join(summary_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
    return out


def stray_marker(jpeg):
    """`jpeg` (bytes) damaged in the middle of its picture data by two bytes (a marker libjpeg does not know),
    start and end markers intact, the same size: the header and tail checks pass it, only decoding finds it."""
    data = bytearray(jpeg)
    middle = (data.index(b"\xff\xda") + len(data)) // 2
    data[middle:middle + 2] = b"\xff\xba"
    return bytes(data)


def damaged_jpeg(size=40):
    """A noise JPEG of `size` x `size` damaged by stray_marker."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (size, size, 3), np.uint8)).save(buffer, format="JPEG",
                                                                                              quality=95)
    return stray_marker(buffer.getvalue())


PAGAN_ARCH = {"image_size": 32, "gen_channels": 4, "res_blocks": 1, "padding": "zero"}


def write_pagan_run(savedir, clusters, seed=5, **arch):
    """SAVEDIR/clusterK/{checkpoint, options.json} for each K: tiny generators with random weights (PAGAN_ARCH, with
    `arch` on top)."""
    import keras
    import tensorflow as tf
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import build_generator
    from face_aging.training.rundir import RunDir
    generators = {}
    for k in clusters:
        keras.utils.set_random_seed(seed + k)
        generator = build_generator(PAGANConfig(target_cluster=k, **dict(PAGAN_ARCH, **arch)))
        if generator.residual:      # a residual generator starts with no change at all: give it one
            for variable in generator.out_conv.trainable_variables:
                variable.assign(tf.random.normal(variable.shape, stddev=0.05, seed=seed + k))
        run = RunDir(os.path.join(savedir, f"cluster{k}")).make()
        tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), run.checkpoint, max_to_keep=1,
                                   checkpoint_name="model").save(1)
        run.write_options(dict(PAGAN_ARCH, target_cluster=k, **arch))
        generators[k] = generator
    return generators


# ------------------------------------------------------------------------------ faces in photos (test_faces)

def rotation_matrix(degrees, scale, tx, ty):
    """[2, 3] of a rotation by `degrees` and a scale, then a translation."""
    t = np.radians(degrees)
    return np.array([[scale * np.cos(t), -scale * np.sin(t), tx], [scale * np.sin(t), scale * np.cos(t), ty]])


def place(canvas, picture, crop_to_canvas):
    """`picture` drawn into `canvas` (uint8 arrays) where `crop_to_canvas` maps picture to canvas coordinates."""
    from PIL import Image
    height, width = canvas.shape[:2]
    inverse = np.linalg.inv(np.vstack([crop_to_canvas, [0, 0, 1]]))[:2].ravel()
    warped = Image.fromarray(picture).transform((width, height), Image.AFFINE, tuple(inverse), Image.BICUBIC)
    mask = Image.new("L", picture.shape[1::-1], 255).transform((width, height), Image.AFFINE, tuple(inverse),
                                                               Image.BILINEAR)
    return np.array(Image.composite(warped, Image.fromarray(canvas), mask))


def synthetic_face(person_id, size=128, age=30):
    """A synthetic face and its true eye centres (left, right) in its pixels."""
    from face_aging.data import synthetic
    person = synthetic.make_person(person_id, seed=5)
    truth = synthetic.face_landmarks(person, age)
    eyes = np.array([truth["eye_left"], truth["eye_right"]]) * size
    return synthetic.render_face(person, age, size), eyes


def detectable_faces(count=1):
    """The first `count` synthetic faces MTCNN finds, with their eye centres (it misses a few cartoon faces)."""
    from face_aging.faces import detect
    found = []
    for person_id in range(12):
        face, eyes = synthetic_face(person_id)
        if len(detect.detect_faces(face)) == 1:
            found.append((face, eyes))
            if len(found) == count:
                return found
    pytest.fail(f"MTCNN finds {len(found)} of 12 synthetic faces, fewer than {count}")


def detectable_face():
    return detectable_faces(1)[0]


# ------------------------------------------------------- the original TF1 CAAE's checkpoints (test_tf1_checkpoint)

def original_shapes(image_size, z_dim=50, enc=64, gen=1024):
    """The original's variables and shapes, from the architecture in docs/CAAE.md."""
    n = int(np.log2(image_size)) - 2
    mini = image_size // 2 ** n
    shapes = {}

    def layer(scope, w):
        shapes[f"{scope}/w"] = tuple(w)
        shapes[f"{scope}/b"] = (w[-2],) if scope.startswith("G_deconv") else (w[-1],)

    def bn(scope, c):
        for v in ("beta", "moving_mean", "moving_variance"):
            shapes[f"{scope}/{v}"] = (c,)

    c_in = 3
    for i in range(n):
        layer(f"E_conv{i}", (5, 5, c_in, enc * 2 ** i))
        c_in = enc * 2 ** i
    layer("E_fc", (mini * mini * c_in, z_dim))
    layer("G_fc", (3 * z_dim, gen * mini * mini))
    c_in = gen
    for i in range(n + 1):  # n stride-2 layers, then one stride-1 layer, all halving the channels
        layer(f"G_deconv{i}", (5, 5, c_in // 2, c_in))
        c_in //= 2
    layer(f"G_deconv{n + 1}", (5, 5, 3, c_in))
    for i, (a, b) in enumerate([(z_dim, 64), (64, 32), (32, 16), (16, 1)]):
        layer(f"D_z_fc{i}", (a, b))
        if i < 3:
            bn(f"D_z_bn{i}", b)
    for i, (a, b) in enumerate([(3, 16), (16 + 10 + 10, 32), (32, 64), (64, 128)]):
        layer(f"D_img_conv{i}", (5, 5, a, b))
        bn(f"D_img_bn{i}", b)
    layer("D_img_fc1", ((image_size // 16) ** 2 * 128, 1024))
    layer("D_img_fc2", (1024, 1))
    return shapes


def random_arrays(shapes, seed, legacy=False):
    """Weights for the original's variables. `legacy`: NumPy's RandomState, whose numbers never change between NumPy
    versions (a stored fixture is made from them: scripts/original_gradients.py)."""
    rng = np.random.RandomState(seed) if legacy else np.random.default_rng(seed)
    arrays = {}
    for name, shape in shapes.items():
        kind = name.rsplit("/", 1)[1]
        if kind == "w":
            # He-like scale, so activations neither vanish nor saturate tanh and every weight shows in the output.
            fan_in = np.prod(shape) / (shape[2] if name.startswith("G_deconv") else shape[-1])
            if name.startswith("G_deconv"):
                fan_in /= 4
            value = rng.normal(0, np.sqrt(2 / fan_in), shape)
        elif kind == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        else:
            value = rng.normal(0, 0.2, shape)
        arrays[name] = value.astype(np.float32)
    return arrays


# The original TF1 graph's gradients (tests/test_original_gradients.py; made by scripts/original_gradients.py).
ORIGINAL_FIXTURE = {"file": "original_caae_gradients.npz", "size": 32, "z_dim": 50, "enc": 8, "gen": 64, "batch": 8,
                    "seed": 2017}


def weights_digest(arrays):
    """A hash of named arrays (names sorted): a fixture made from them can tell whether they are the same."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name], np.float32).tobytes())
    return digest.hexdigest()


def write_tf1_checkpoint(directory, arrays, global_steps=(), optimizer_extras=True):
    """Save `arrays` as the original did; one save per global step (or one save without a step). Returns prefixes."""
    import tensorflow as tf
    os.makedirs(directory, exist_ok=True)
    prefixes = []
    with tf.Graph().as_default():
        for name, value in arrays.items():
            scope, var = name.rsplit("/", 1)
            with tf.compat.v1.variable_scope(scope):
                tf.compat.v1.get_variable(var, value.shape, initializer=tf.compat.v1.constant_initializer(value))
                if optimizer_extras and var == "w":
                    with tf.compat.v1.variable_scope("w"):
                        tf.compat.v1.get_variable("Adam", value.shape, initializer=tf.compat.v1.ones_initializer())
                        tf.compat.v1.get_variable("Adam_1", value.shape, initializer=tf.compat.v1.ones_initializer())
        if optimizer_extras:
            tf.compat.v1.Variable(0.5, name="beta1_power", trainable=False)
            tf.compat.v1.Variable(0.999, name="beta2_power", trainable=False)
        step = tf.compat.v1.Variable(0, name="global_step", trainable=False) if global_steps else None
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver = tf.compat.v1.train.Saver()
            for value in global_steps:
                session.run(step.assign(value))
                prefixes.append(saver.save(session, os.path.join(directory, "model"), global_step=value))
            if not global_steps:
                prefixes.append(saver.save(session, os.path.join(directory, "model")))
    return prefixes


# ------------------------------------------------------------------------- VGG-Face as MatConvNet files (test_vgg)

VGG_SIZE = 64                 # final map 2x2: fc6's flatten order matters
VGG_WIDTH = 1 / 16            # VGG-16's channels scaled by this (face_aging.models.pagan.vgg.scaled_channels)
VGG_FC_UNITS, VGG_CLASSES = 16, 5
VGG_BLOCKS = (2, 2, 3, 3, 3)  # VGG-16's convs per block, written out here independently of the module
VGG_FILE_MEAN = (120.5, 101.25, 90.0)  # deliberately not VGG-Face's: the file's own mean must be the one used
VGG_LAYOUTS = ("simplenn-toplevel", "simplenn-net", "simplenn-old", "dagnn")


def random_network(seed=3, size=VGG_SIZE, channels=None, fc=VGG_FC_UNITS, classes=VGG_CLASSES):
    """[(name, type, filters H x W x Cin x Cout or None, biases)] in running order, with He-scaled weights;
    `channels` None: VGG-16's widths scaled by VGG_WIDTH."""
    if channels is None:
        from face_aging.models.pagan.vgg import scaled_channels
        channels = scaled_channels(VGG_WIDTH)
    rng = np.random.default_rng(seed)
    layers, cin = [], 3

    def conv(name, k, cout):
        nonlocal cin
        filters = rng.normal(0, np.sqrt(2 / (k * k * cin)), [k, k, cin, cout]).astype(np.float32)
        layers.append((name, "conv", filters, rng.normal(0, 0.1, [cout]).astype(np.float32)))
        cin = cout

    for block, (width, n) in enumerate(zip(channels, VGG_BLOCKS), 1):
        for i in range(1, n + 1):
            conv(f"conv{block}_{i}", 3, width)
            layers.append((f"relu{block}_{i}", "relu", None, None))
        layers.append((f"pool{block}", "pool", None, None))
    conv("fc6", size // 32, fc)
    layers.append(("relu6", "relu", None, None))
    conv("fc7", 1, fc)
    layers.append(("relu7", "relu", None, None))
    conv("fc8", 1, classes)
    layers.append(("prob", "softmax", None, None))
    return layers


def cell(items):
    array = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        array[0, i] = item
    return array


def struct_array(records):
    """A 1xN MATLAB struct array (all records have the same fields), as DagNN.saveobj writes them."""
    fields = list(records[0])
    array = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for i, record in enumerate(records):
        for f in fields:
            array[0, i][f] = record[f]
    return array


def simplenn_layer(name, kind, filters, biases, old):
    layer = {"name": name, "type": kind}
    if kind == "conv":
        if old:  # MatConvNet before beta-12: separate fields, biases a row
            layer["filters"], layer["biases"] = filters, biases[None, :]
        else:
            layer["weights"] = cell([filters, biases[:, None]])
        layer["stride"] = np.array([1.0, 1.0])
        layer["pad"] = np.zeros(4) if name.startswith("fc") else np.ones(4)
    elif kind == "pool":
        layer.update(method="max", pool=np.array([2.0, 2.0]), stride=np.array([2.0, 2.0]), pad=np.zeros(4))
    return layer


def write_matconvnet(path, layers, layout, mean=VGG_FILE_MEAN, size=VGG_SIZE, class_names=None):
    """`layers` (random_network) saved as a MatConvNet .mat file in `layout` (one of VGG_LAYOUTS)."""
    import scipy.io
    class_names = class_names or [f"Person_{i}" for i in range(VGG_CLASSES)]
    classes = {"name": cell(class_names), "description": cell([n.replace("_", " ") for n in class_names])}
    if layout == "simplenn-old":
        # An average *image*: the importer must reduce it to its per-channel mean.
        offsets = np.array([-2.0, 2.0])[:, None, None] * np.ones([2, 3, 3])
        normalization = {"averageImage": np.asarray(mean) + offsets, "imageSize": np.array([size, size, 3.0])}
    else:
        normalization = {"averageImage": np.asarray(mean, np.float32).reshape(1, 1, 3),
                         "imageSize": np.array([size, size, 3.0])}
    meta = {"normalization": normalization, "classes": classes}
    if layout == "dagnn":
        records, params = [], []
        previous = "input"
        for name, kind, filters, biases in layers:
            block = {}
            names = []
            if kind == "conv":
                names = [f"{name}f", f"{name}b"]
                params += [{"name": names[0], "value": filters}, {"name": names[1], "value": biases[:, None]}]
                block = {"size": np.array(filters.shape, float), "hasBias": True, "stride": np.array([1.0, 1.0]),
                         "pad": np.zeros(4) if name.startswith("fc") else np.ones(4)}
            elif kind == "pool":
                block = {"method": "max", "poolSize": np.array([2.0, 2.0]), "stride": np.array([2.0, 2.0]),
                         "pad": np.zeros(4)}
            dag_type = {"conv": "dagnn.Conv", "relu": "dagnn.ReLU", "pool": "dagnn.Pooling",
                        "softmax": "dagnn.SoftMax"}[kind]
            records.append({"name": name, "type": dag_type, "inputs": cell([previous]), "outputs": cell([name]),
                            "params": cell(names), "block": block})
            previous = name
        content = {"layers": struct_array(records), "params": struct_array(params), "meta": meta,
                   "vars": struct_array([{"name": "input", "precious": False}])}
    else:
        old = layout == "simplenn-old"
        net_layers = cell([simplenn_layer(*layer, old=old) for layer in layers])
        if old:
            content = {"net": {"layers": net_layers, "normalization": normalization, "classes": classes}}
        elif layout == "simplenn-net":
            content = {"net": {"layers": net_layers, "meta": meta}}
        else:
            content = {"layers": net_layers, "meta": meta}
    scipy.io.savemat(path, content)
    return path


def jpeg_that_decodes_past_damage(size=64):
    """A noise JPEG whose picture data is scrambled in the middle without creating a marker: libjpeg still returns an
    image, printing "Corrupt JPEG data: ... extraneous bytes before marker 0xd9" (a warning, not an error)."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (size, size, 3), np.uint8)).save(buffer, format="JPEG",
                                                                                              quality=95)
    data = bytearray(buffer.getvalue())
    middle = (data.index(b"\xff\xda") + len(data)) // 2
    for k in range(middle, middle + 40):
        if data[k] != 0xFF and data[k - 1] != 0xFF:
            data[k] = (data[k] * 7 + 13) % 255 or 0x12
            if data[k] == 0xFF:
                data[k] = 0x12
    return bytes(data)


def png_claiming(width, height):
    """A tiny PNG whose header claims width x height pixels (a decompression bomb, or a huge panorama)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def assert_frozen_identity_gives_g_gradients(identity, faces):
    """PAGAN (tiny, at 32 px) with `identity` as its identity network, on `faces` [N, 32, 32, 3] in [-1, 1]: L_ide
    alone gives G's variables non-zero gradients, and a training step leaves the identity network's weights as
    they were (it is a frozen judge, like VGG-Face)."""
    import numpy as np
    import tensorflow as tf
    from face_aging.models.pagan.config import LossWeights, PAGANConfig
    from face_aging.models.pagan.model import PAGAN
    from face_aging.models.pagan.vgg import VGG16, scaled_channels
    assert not identity.trainable_variables
    phi_age = VGG16(4, 32, scaled_channels(1 / 16), fc_units=8, name="phi_age")
    model = PAGAN(PAGANConfig(image_size=32, gen_channels=4, res_blocks=1, head_width=1 / 16,
                              weights=LossWeights(0.0, 0.0, 1.0)), phi_age, identity)
    x = tf.constant(faces, tf.float32)
    before = [w.numpy().copy() for w in identity.weights]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model._identity(x) - model._identity(model.generator(x, training=True))))
    grads = tape.gradient(loss, model.generator.trainable_variables)
    assert float(loss) > 0 and sum(float(tf.reduce_sum(tf.abs(g))) for g in grads if g is not None) > 0
    terms, _ = model.train_step(x, x)
    assert float(terms["L_ide"]) > 0
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, identity.weights))
