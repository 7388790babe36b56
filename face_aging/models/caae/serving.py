"""The CAAE as a SavedModel that needs nothing of this package to run (`--export DIR`, face_aging/inference/export.py):

    m = tf.saved_model.load(DIR)
    out = m.signatures["serving_default"](image=uint8 [N, H, W, 3], age_group=int32 [N], gender=int32 [N])
    out["aged"]                    # uint8 [N, S, S, 3]: each face at its age group (0-9: 0-5 ... 71+),
                                   #   with its gender label (0 male, 1 female)
    m.signatures["progression"](image=..., gender=...)["aged"]    # uint8 [N, 10, S, S, 3]: every age group
    m.signatures["residual_progression"](image=..., gender=..., strength=float32 scalar)["aged"]
                                   # the same with residual aging (face_aging/models/caae/residual.py)

A length-1 age_group or gender applies to the whole batch.
"""

import os

import numpy as np
import tensorflow as tf

from face_aging.models.caae.residual import residual_progression
from face_aging.data import labels as L
from face_aging.models.ager import ExportParts
from face_aging.models.serving import IMAGE_SPEC, postprocess, preprocess, tf_variable


def _labels(indices, depth, n, name):
    """-1/+1 one-hot [n, depth] of int32 indices ([n] or [1], broadcast), checked to be in 0..depth-1."""
    indices = tf.broadcast_to(indices, [n])
    checks = [tf.debugging.assert_greater_equal(indices, 0, message=f"{name} must be 0-{depth - 1}"),
              tf.debugging.assert_less(indices, depth, message=f"{name} must be 0-{depth - 1}")]
    with tf.control_dependencies(checks):
        return tf.one_hot(indices, depth, on_value=1.0, off_value=-1.0, dtype=tf.float32)


def _label_spec(name):
    return tf.TensorSpec([None], tf.int32, name=name)


class CAAEServing(tf.Module):
    """E and G of a CAAE behind the serving functions; only TensorFlow is needed to load it.

    The Keras models are reached through the functions' closures, not attributes: a Keras 3 model held by a
    tf.Module would be saved with a default signature of its own, which E's and G's multi-input calls cannot trace.
    Their variables are tracked explicitly instead (as keras.export.ExportArchive does).
    """

    def __init__(self, encoder, generator, image_size):
        super().__init__(name="caae")
        self.image_size = image_size
        self.model_variables = [tf_variable(v) for v in encoder.weights + generator.weights]
        groups, genders = L.NUM_AGE_GROUPS, len(L.GENDER_NAMES)

        @tf.function(input_signature=[IMAGE_SPEC, _label_spec("age_group"), _label_spec("gender")])
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

        @tf.function(input_signature=[IMAGE_SPEC, _label_spec("gender")])
        def progression(image, gender):
            return {"aged": face_major(every_group(preprocess(image, image_size), gender))}

        @tf.function(input_signature=[IMAGE_SPEC, _label_spec("gender"),
                                      tf.TensorSpec([], tf.float32, name="strength")])
        def residual(image, gender, strength):
            x = preprocess(image, image_size)
            return {"aged": face_major(residual_progression(x, every_group(x, gender), strength))}

        self.serve, self.progression, self.residual = serve, progression, residual


USAGE = """\
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


def export_parts(model, folder, path, source="", residual=0.0):
    """Write `model` (an AgingModel: E and G) as a SavedModel into `folder`, to be moved to `path`. `residual` is
    the residual aging strength the README and export.json recommend (the signature takes any)."""
    size = model.config.image_size
    module = CAAEServing(model.encoder, model.generator, size)
    tf.saved_model.save(module, folder, signatures={"serving_default": module.serve,
                                                    "progression": module.progression,
                                                    "residual_progression": module.residual})
    record = {
        "model": "caae", "image_size": size, "source_checkpoint": source,
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
                                    f"change from its own group (face_aging/models/caae/residual.py)"}}},
        "recommended_residual_strength": residual}
    usage = USAGE.format(path=path, size=size, groups=", ".join(L.AGE_GROUP_NAMES), residual=residual)
    said = (f"{path}: signatures serving_default (image, age_group, gender -> aged), progression (image, gender -> "
            f"aged at every age group) and residual_progression (image, gender, strength -> the same, residual "
            f"aging); see {os.path.join(path, 'README.txt')}")
    return ExportParts(record=record, title="CAAE", usage=usage, size=f"{size}x{size}", said=said)
