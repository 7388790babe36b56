"""The pieces every exported SavedModel graph shares (face_aging/inference/export.py): uint8 images in and out,
converted exactly as the package's own read and write paths do, so that an exported model gives the package's
outputs."""

import tensorflow as tf

IMAGE_SPEC = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")


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


def tf_variable(variable):
    """The tf.Variable behind a Keras 3 variable."""
    return variable if isinstance(variable, tf.Variable) else variable.value

