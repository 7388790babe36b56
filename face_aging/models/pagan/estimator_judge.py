"""The package's age estimator (face_aging/models/estimator) as a frozen judge of PAGAN's training, two ways, each a
recipe option off by default (docs/pagan_recipe.md, "An age estimator in the generator's objective"):

- as phi_age (`--age_classifier estimator`): its stages' ReLU outputs are the pyramid discriminator's four feature
  maps instead of a VGG-16's, so D judges age on the features of a network that tells ages far better than the
  recipe's small phi_age (5.1 years of error on the test faces against a balanced accuracy of 0.55-0.58 over four
  clusters);
- as the reader of L_est (`--estimator_age WEIGHT`, losses.py): the years it reads in G(x), averaged over random
  views, pulled up towards `--estimator_target`.

Alone, the reading is a target G can fool: it learnt to draw diagonal streaks the estimator takes for age (pilots R
and S). With D on the same estimator's features, D, which keeps learning, tells the streaks from old faces, and the
generator keeps more faces at dlib's stricter threshold at the same age than every other option did (pilot X).

Not one of `--eval`'s judges: the figures still come from networks no model here was trained against.
"""

import os

import keras
import tensorflow as tf

from face_aging.models.caae.residual import smooth
from face_aging.models.estimator.network import expected_age
from face_aging.models.pagan.vgg import TAPS

ESTIMATOR = "estimator"   # --age_classifier's value: phi_age is the estimator of --estimator_dir


class EstimatorError(Exception):
    pass


def load(directory=""):
    """(the frozen estimator, where it came from): the run written by `--model estimator --is_train` in `directory`,
    or the one bundled with the package when `directory` is ''."""
    from face_aging.models.estimator import bundled
    try:
        model, where = bundled.load(directory or None)
    except bundled.EstimatorUnavailable as error:
        raise EstimatorError(str(error)) from None
    if directory and not os.path.abspath(where).startswith(os.path.abspath(directory) + os.sep):
        # bundled.load falls back to the bundled estimator; a folder the user named must not be replaced silently.
        raise EstimatorError(f"--estimator_dir {directory}: no estimator run there (no checkpoint/ beside an "
                             f"options.json of --model estimator); train one with python main.py --model estimator "
                             f"--is_train --savedir {directory}, or leave --estimator_dir empty for the bundled one")
    model.trainable = False
    return model, where


class EstimatorPhi:
    """phi_age's interface (vgg.VGG16.taps, .image_size, .channels) over the estimator's stages: the output of the
    first (stride-1) convolution of its first four stages, after batch norm and ReLU, at 1, 1/2, 1/4 and 1/8 of its
    input size, as VGG-16's conv1_2 ... conv4_3 are. Faces in [-1, 1], the estimator's own input."""

    def __init__(self, estimator, where=""):
        self.estimator, self.image_size = estimator, estimator.image_size
        self.channels = tuple(estimator.blocks[2 * i][0].filters for i in range(len(TAPS)))
        self.trainable = False
        self.info = {"source": f"the age estimator ({where})" if where else "the age estimator"}

    def taps(self, images, names=TAPS, after_relu=True):
        """{name: feature map} for the names of TAPS; `after_relu` is accepted for phi_age's interface (the estimator's
        features are always read after their ReLU)."""
        outputs = self.estimator.stages(tf.cast(images, tf.float32), 2 * len(TAPS) - 1)
        maps = {tap: outputs[2 * i] for i, tap in enumerate(TAPS)}
        return {name: maps[name] for name in ((names,) if isinstance(names, str) else names)}


class AgeReading:
    """Years the estimator reads in a batch of faces [N, S, S, 3] in [-1, 1], differentiable: each face blurred by
    `blur` pixels (the fine detail a generator draws first) and read over `views` random views (mirrored or not,
    rotated by up to `rotation` of a turn, a square crop of `crop`-100% of its side at a random place), then
    averaged, so that no texture tuned to one view carries the reading.

    Build it inside the training strategy's scope: the rotation layer holds a seed variable."""

    def __init__(self, estimator, views=2, blur=1.0, rotation=0.04, crop=0.85):
        self.estimator, self.views, self.blur, self.crop = estimator, int(views), float(blur), float(crop)
        self._rotate = keras.layers.RandomRotation(rotation, fill_mode="reflect") if rotation > 0 else None

    def _view(self, x):
        n = tf.shape(x)[0]
        mirrored = tf.random.uniform([n, 1, 1, 1]) < 0.5
        x = tf.where(mirrored, x[:, :, ::-1], x)
        if self._rotate is not None:
            x = self._rotate(x, training=True)
        side = tf.random.uniform([n, 1], self.crop, 1.0)
        corner = tf.random.uniform([n, 2]) * (1.0 - side)
        size = self.estimator.image_size
        return tf.image.crop_and_resize(x, tf.concat([corner, corner + side], 1), tf.range(n), [size, size])

    def __call__(self, faces):
        x = smooth(faces, self.blur) if self.blur > 0 else tf.cast(faces, tf.float32)
        reads = [expected_age(self.estimator(self._view(x), training=False)[1]) for _ in range(self.views)]
        return tf.add_n(reads) / len(reads)
