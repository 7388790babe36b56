"""A black-and-white face stays black and white when aged (docs/photos.md#black-and-white-photos).

Both models learned their changes on colour faces, and their changes carry colour: on a black-and-white photo they
paint cyan faces, orange backgrounds and blue lips. A face whose own colour does not vary (a black-and-white photo,
or a toned one: sepia, cyanotype) has no colour for a change of age to follow, so there the change keeps only its
luminance, the same amount added to R, G and B, which leaves the photo's tone (Cb, Cr) exactly as it was:

    change' = w * change + (1 - w) * Y(change) (1, 1, 1)
    w = clip((spread - MONO_BELOW) / (COLOUR_ABOVE - MONO_BELOW), 0, 1)

`spread` is the root-mean-square deviation of the face's Cb and Cr from their means over the crop, in 0-255 units.
Faces in between the two thresholds keep part of the change's colour, so a face near them does not switch from frame
to frame of a video.
"""

import tensorflow as tf

# ITU-R BT.601, as JPEG's YCbCr: the luminance row, and the chroma rows (Cb, Cr) of an RGB colour or difference.
LUMA = (0.299, 0.587, 0.114)
CHROMA = ((-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
# On the 595 UTKFace val and test chips, the 21 black-and-white or toned faces spread 0-2.94, the colour faces 4.43 and
# more (1% below 6.2): no face has colour below MONO_BELOW, every one above COLOUR_ABOVE.
MONO_BELOW = 3.0
COLOUR_ABOVE = 4.0


def chroma_spread(images):
    """[...]: how much the colour of each face ([..., H, W, 3] in [-1, 1]) varies over it, 0-255 units."""
    images = tf.convert_to_tensor(images, tf.float32) * 127.5
    spread = 0.0
    for weights in CHROMA:
        channel = tf.reduce_sum(images * tf.constant(weights), -1)
        spread += tf.math.reduce_variance(channel, axis=[-2, -1])
    return tf.sqrt(spread)


def colour_weight(images):
    """[...] in [0, 1]: the share of a change's colour each face keeps (0: no colour of its own, 1: a colour face)."""
    return tf.clip_by_value((chroma_spread(images) - MONO_BELOW) / (COLOUR_ABOVE - MONO_BELOW), 0.0, 1.0)


def in_the_faces_colours(images, change):
    """`change` ([..., N, H, W, 3], any leading dimensions before the faces') with its colour kept as far as each of
    `images` ([N, H, W, 3] in [-1, 1], the faces it is added to) has colour of its own."""
    change = tf.convert_to_tensor(change, tf.float32)
    w = colour_weight(images)[:, tf.newaxis, tf.newaxis, tf.newaxis]
    luminance = tf.reduce_sum(change * tf.constant(LUMA), -1, keepdims=True)
    return w * change + (1.0 - w) * luminance
