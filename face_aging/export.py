"""Export trained models as TensorFlow SavedModels that need nothing of this package to run.

`python main.py --model caae --export DIR` writes one SavedModel at DIR:

    m = tf.saved_model.load(DIR)
    out = m.signatures["serving_default"](image=uint8 [N, H, W, 3], age_group=int32 [N], gender=int32 [N])
    out["aged"]                    # uint8 [N, S, S, 3]: each face at its age group (0-9: 0-5 ... 71+),
                                   #   with its gender label (0 male, 1 female)
    m.signatures["progression"](image=..., gender=...)["aged"]    # uint8 [N, 10, S, S, 3]: every age group
    m.signatures["residual_progression"](image=..., gender=..., strength=float32 scalar)["aged"]
                                   # the same with residual aging (face_aging/caae/residual.py)

`python main.py --model pagan --export DIR` writes DIR/clusterK/ (a SavedModel) for every trained generator:

    tf.saved_model.load(DIR + "/cluster2").signatures["serving_default"](image=uint8 [N, H, W, 3])["aged"]

The images are face crops already (UTKFace-style chips for CAAE, eye-aligned crops for PAGAN), all of one size in
a batch, any size: the graph centre-crops a non-square batch to a square and resizes it to the model size S
(bilinear, antialiased) and scales it to [-1, 1] exactly as the package's own read path does
(face_aging.data.pipeline.decode_and_resize), and turns the model's [-1, 1] output into uint8 as
face_aging.images.to_uint8 does. A length-1 age_group or gender applies to the whole batch. DIR/export.json records
the signatures, the image size, the age groups and the checkpoint exported; DIR/README.txt says how to use it.

The export is written into DIR.tmp-export and renamed to DIR once complete. An existing DIR is replaced only when it
is empty or a previous export (it has an export.json written here); anything else is refused.
"""

import json
import os
import shutil
import time

import numpy as np
import tensorflow as tf

from face_aging.caae.residual import residual_progression
from face_aging.data import labels as L
from face_aging.errors import FaceAgingError

EXPORT_FILE = "export.json"
EXPORT_FORMAT = "face_aging-savedmodel"
TEMP_SUFFIX = ".tmp-export"


class ExportError(FaceAgingError, RuntimeError):
    """The export cannot be written; the message names the folder and what to do."""


def destination_problem(path):
    """None if `path` may be written (absent, an empty folder or a previous export), else the reason it may not."""
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        return "exists and is not a folder"
    if not os.listdir(path) or _is_previous_export(path):
        return None
    return (f"is a folder that is not empty and not a previous export (no {EXPORT_FILE} of format "
            f"{EXPORT_FORMAT!r}); give a new folder or remove it")


def _is_previous_export(path):
    try:
        with open(os.path.join(path, EXPORT_FILE)) as f:
            return json.load(f).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


# --- The graph: preprocessing and postprocessing as the package does them ------------------------------------------

def preprocess(image, size):
    """uint8 [N, H, W, 3] -> float32 [N, S, S, 3] in [-1, 1]: centre square, antialiased bilinear resize, x/127.5-1
    (pipeline.decode_and_resize on a decoded image)."""
    shape = tf.shape(image)
    side = tf.minimum(shape[1], shape[2])
    image = tf.image.crop_to_bounding_box(image, (shape[1] - side) // 2, (shape[2] - side) // 2, side, side)
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def postprocess(images):
    """[-1, 1] -> uint8, rounding as face_aging.images.to_uint8 (round half to even, then clip)."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) / 2.0 * 255.0), 0.0, 255.0), tf.uint8)


def _labels(indices, depth, n, name):
    """-1/+1 one-hot [n, depth] of int32 indices ([n] or [1], broadcast), checked to be in 0..depth-1."""
    indices = tf.broadcast_to(indices, [n])
    checks = [tf.debugging.assert_greater_equal(indices, 0, message=f"{name} must be 0-{depth - 1}"),
              tf.debugging.assert_less(indices, depth, message=f"{name} must be 0-{depth - 1}")]
    with tf.control_dependencies(checks):
        return tf.one_hot(indices, depth, on_value=1.0, off_value=-1.0, dtype=tf.float32)


_IMAGE = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")
_LABEL = lambda name: tf.TensorSpec([None], tf.int32, name=name)  # noqa: E731


class CAAEServing(tf.Module):
    """E and G of a CAAE behind the serving functions; only TensorFlow is needed to load it.

    The Keras models are reached through the functions' closures, not attributes: a Keras 3 model held by a
    tf.Module would be saved with a default signature of its own, which E's and G's multi-input calls cannot trace.
    Their variables are tracked explicitly instead (as keras.export.ExportArchive does).
    """

    def __init__(self, encoder, generator, image_size):
        super().__init__(name="caae")
        self.image_size = image_size
        self.model_variables = [_tf_variable(v) for v in encoder.weights + generator.weights]
        groups, genders = L.NUM_AGE_GROUPS, len(L.GENDER_NAMES)

        @tf.function(input_signature=[_IMAGE, _LABEL("age_group"), _LABEL("gender")])
        def serve(image, age_group, gender):
            x = preprocess(image, image_size)
            n = tf.shape(x)[0]
            out = generator(encoder(x, training=False), _labels(age_group, groups, n, "age_group"),
                            _labels(gender, genders, n, "gender"), training=False)
            return {"aged": postprocess(out)}

        def every_group(x, gender):
            """G(E(x), g) for every group g: [10, N, S, S, 3] in [-1, 1]."""
            n = tf.shape(x)[0]
            z = encoder(x, training=False)
            labels = _labels(gender, genders, n, "gender")
            # Face-major: row i * 10 + g is face i at group g.
            ages = tf.tile(tf.constant(L.plus_minus_one_hot(np.arange(groups), groups)), [n, 1])
            out = generator(tf.repeat(z, groups, axis=0), ages, tf.repeat(labels, groups, axis=0), training=False)
            return tf.transpose(tf.reshape(out, [n, groups, image_size, image_size, 3]), [1, 0, 2, 3, 4])

        def face_major(groups_first):
            return tf.transpose(postprocess(groups_first), [1, 0, 2, 3, 4])

        @tf.function(input_signature=[_IMAGE, _LABEL("gender")])
        def progression(image, gender):
            return {"aged": face_major(every_group(preprocess(image, image_size), gender))}

        @tf.function(input_signature=[_IMAGE, _LABEL("gender"), tf.TensorSpec([], tf.float32, name="strength")])
        def residual(image, gender, strength):
            x = preprocess(image, image_size)
            return {"aged": face_major(residual_progression(x, every_group(x, gender), strength))}

        self.serve, self.progression, self.residual = serve, progression, residual


class PAGANServing(tf.Module):
    """One PAGAN generator behind its serving function (the generator in a closure, as in CAAEServing)."""

    def __init__(self, generator, image_size):
        super().__init__(name="pagan")
        self.image_size = image_size
        self.model_variables = [_tf_variable(v) for v in generator.weights]

        @tf.function(input_signature=[_IMAGE])
        def serve(image):
            return {"aged": postprocess(generator(preprocess(image, image_size), training=False))}

        self.serve = serve


def _tf_variable(variable):
    """The tf.Variable behind a Keras 3 variable."""
    return variable if isinstance(variable, tf.Variable) else variable.value


# --- Writing ---------------------------------------------------------------------------------------------------

README = """\
TensorFlow SavedModel exported by face_aging ({model}); loading it needs TensorFlow only.

    import tensorflow as tf
{usage}

Images: uint8 RGB in [0, 255], [N, H, W, 3], a batch of face crops of one size, any size (a non-square batch is
centre-cropped; every image is resized to {size} inside the graph).
See export.json for the details.
"""

CAAE_USAGE = """\
    model = tf.saved_model.load("{path}")
    aged = model.signatures["serving_default"](image=images, age_group=tf.constant([7], tf.int32),
                                               gender=tf.constant([0], tf.int32))["aged"]
    # uint8 [N, {size}, {size}, 3]
    # age_group 0-9 = {groups}; gender 0 male, 1 female; a length-1 label applies to every image.
    every_group = model.signatures["progression"](image=images, gender=tf.constant([0], tf.int32))["aged"]
    # uint8 [N, 10, {size}, {size}, 3]
    residual = model.signatures["residual_progression"](image=images, gender=tf.constant([0], tf.int32),
                                                        strength=tf.constant({residual}))["aged"]
    # the same, residual aging: the input plus strength x G's change from its own age group (keeps the identity
    # detail G's code loses; {residual} is what this model's maker recommends, 0 = progression's faces)"""

PAGAN_USAGE = """\
    model = tf.saved_model.load("{path}/clusterK")    # K = {clusters}
    aged = model.signatures["serving_default"](image=images)["aged"]   # uint8 [N, S, S, 3]"""


def _save(module, path, signatures):
    tf.saved_model.save(module, path, signatures=signatures)


def _write_json(path, record):
    with open(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")


def _replace(tmp, path):
    """Move the finished export at `tmp` to `path`, replacing an empty folder or a previous export there."""
    old = None
    if os.path.lexists(path):
        old = path + ".old-export"
        if os.path.lexists(old):
            shutil.rmtree(old)
        os.rename(path, old)
    os.rename(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _write(path, build):
    """Run build(tmp_folder) -> record, write export.json and move the folder to `path` (see the module docstring)."""
    path = os.path.normpath(path)
    problem = destination_problem(path)
    if problem:
        raise ExportError(f"--export {path} {problem}")
    tmp = path + TEMP_SUFFIX
    if os.path.lexists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    try:
        record = build(tmp)
        record.update(format=EXPORT_FORMAT, exported=time.strftime("%Y-%m-%d %H:%M:%S %z"),
                      tensorflow=tf.__version__)
        _write_json(os.path.join(tmp, EXPORT_FILE), record)
        _replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def export_caae(model, path, source="", residual=0.0):
    """Write `model` (an AgingModel: E and G) as a SavedModel at `path`; returns the path. `residual` is the
    residual aging strength the README and export.json recommend (the signature takes any)."""
    size = model.config.image_size

    def build(tmp):
        module = CAAEServing(model.encoder, model.generator, size)
        _save(module, tmp, {"serving_default": module.serve, "progression": module.progression,
                            "residual_progression": module.residual})
        usage = CAAE_USAGE.format(path=path, size=size, groups=", ".join(L.AGE_GROUP_NAMES), residual=residual)
        with open(os.path.join(tmp, "README.txt"), "w") as f:
            f.write(README.format(model="CAAE", usage=usage, size=f"{size}x{size}"))
        return {"model": "caae", "image_size": size, "source_checkpoint": source,
                "architecture": {name: getattr(model.config, name) for name in model.config.ARCHITECTURE},
                "age_groups": list(L.AGE_GROUP_NAMES), "genders": list(L.GENDER_NAMES),
                "signatures": {
                    "serving_default": {"inputs": {"image": "uint8 [N, H, W, 3]", "age_group": "int32 [N] (0-9)",
                                                   "gender": "int32 [N] (0 male, 1 female)"},
                                        "outputs": {"aged": f"uint8 [N, {size}, {size}, 3]"}},
                    "progression": {"inputs": {"image": "uint8 [N, H, W, 3]", "gender": "int32 [N]"},
                                    "outputs": {"aged": f"uint8 [N, 10, {size}, {size}, 3] (age groups in order)"}},
                    "residual_progression": {
                        "inputs": {"image": "uint8 [N, H, W, 3]", "gender": "int32 [N]",
                                   "strength": "float32 scalar (0: progression's faces)"},
                        "outputs": {"aged": f"uint8 [N, 10, {size}, {size}, 3]: the input plus strength x G's "
                                            f"change from its own group (face_aging/caae/residual.py)"}}},
                "recommended_residual_strength": residual}
    return _write(path, build)


def export_pagan(generators, path):
    """Write DIR/clusterK/ for each {cluster: (generator, config, checkpoint)} (pagan.infer.load_generators)."""
    def build(tmp):
        clusters = {}
        for k, (generator, config, checkpoint) in sorted(generators.items()):
            module = PAGANServing(generator, config.image_size)
            _save(module, os.path.join(tmp, f"cluster{k}"), {"serving_default": module.serve})
            clusters[f"cluster{k}"] = {
                "ages": L.AGE_CLUSTER_NAMES[k], "image_size": config.image_size, "source_checkpoint": checkpoint,
                "architecture": {name: getattr(config, name) for name in config.ARCHITECTURE},
                "signatures": {"serving_default": {
                    "inputs": {"image": "uint8 [N, H, W, 3]"},
                    "outputs": {"aged": f"uint8 [N, {config.image_size}, {config.image_size}, 3]"}}}}
        usage = PAGAN_USAGE.format(path=path, clusters=", ".join(str(k) for k in sorted(generators)))
        sizes = ", ".join(f"{name}: {c['image_size']}x{c['image_size']}" for name, c in clusters.items())
        with open(os.path.join(tmp, "README.txt"), "w") as f:
            f.write(README.format(model="PAGAN, one SavedModel per target age cluster", usage=usage,
                                  size=f"the generator's size ({sizes})"))
        return {"model": "pagan", "clusters": clusters,
                "input_cluster": f"{L.AGE_CLUSTER_NAMES[0]} (the young input faces)"}
    return _write(path, build)
