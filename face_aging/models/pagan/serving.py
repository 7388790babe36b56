"""PAGAN's generators as SavedModels that need nothing of this package to run (`--export DIR`,
face_aging/inference/export.py): DIR/clusterK/ for every trained generator,

    tf.saved_model.load(DIR + "/cluster2").signatures["serving_default"](image=uint8 [N, H, W, 3])["aged"]
"""

import os

import tensorflow as tf

from face_aging import colour
from face_aging.data import labels as L
from face_aging.models.ager import ExportParts
from face_aging.models.serving import IMAGE_SPEC, postprocess, preprocess, tf_variable


class PAGANServing(tf.Module):
    """One PAGAN generator behind its serving function (the generator in a closure, as in caae.serving)."""

    def __init__(self, generator, image_size):
        super().__init__(name="pagan")
        self.image_size = image_size
        self.model_variables = [tf_variable(v) for v in generator.weights]

        @tf.function(input_signature=[IMAGE_SPEC])
        def serve(image):
            x = preprocess(image, image_size)
            # As test mode makes it: a black-and-white face stays so (face_aging/colour.py).
            change = colour.in_the_faces_colours(x, generator(x, training=False) - x)
            return {"aged": postprocess(tf.clip_by_value(x + change, -1.0, 1.0))}

        self.serve = serve


USAGE = """\
    model = tf.saved_model.load("{path}/clusterK")    # K = {clusters}
    aged = model.signatures["serving_default"](image=images)["aged"]   # uint8 [N, S, S, 3]"""


def export_parts(generators, folder, path):
    """Write folder/clusterK/ for each {cluster: (generator, config, checkpoint)} (pagan.infer.load_generators)."""
    clusters = {}
    for k, (generator, config, checkpoint) in sorted(generators.items()):
        module = PAGANServing(generator, config.image_size)
        tf.saved_model.save(module, os.path.join(folder, f"cluster{k}"), signatures={"serving_default": module.serve})
        clusters[f"cluster{k}"] = {
            "ages": L.AGE_CLUSTER_NAMES[k], "image_size": config.image_size, "source_checkpoint": checkpoint,
            "architecture": {name: getattr(config, name) for name in config.ARCHITECTURE},
            "signatures": {"serving_default": {
                "inputs": {"image": "uint8 [N, H, W, 3]"},
                "outputs": {"aged": f"uint8 [N, {config.image_size}, {config.image_size}, 3]"}}}}
    usage = USAGE.format(path=path, clusters=", ".join(str(k) for k in sorted(generators)))
    sizes = ", ".join(f"{name}: {c['image_size']}x{c['image_size']}" for name, c in clusters.items())
    said = (f"{', '.join(os.path.join(path, f'cluster{k}') for k in sorted(generators))}: signature serving_default "
            f"(image -> aged); see {os.path.join(path, 'README.txt')}")
    return ExportParts(record={"model": "pagan", "clusters": clusters,
                               "input_cluster": f"{L.AGE_CLUSTER_NAMES[0]} (the young input faces)"},
                       title="PAGAN, one SavedModel per target age cluster", usage=usage,
                       size=f"the generator's size ({sizes})", said=said)
