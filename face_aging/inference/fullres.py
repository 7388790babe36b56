"""Aged faces at the face's own resolution (docs/photos.md): the models run at their size (64 or 128 pixels), and
what they change is carried to the face as it is in the photo, so the output keeps every pixel of detail the photo
had and gains only the aging.

    out_T = clip(x_T + up_T(y_s - x_s))

x_s is the model's input and y_s its output at the model's size s, x_T the same aligned crop at side T (the face's
own resolution, at most --output_size), up_T a bicubic resize of the change to T. For PAGAN's residual generators
y_s - x_s is exactly what the generator adds; for the CAAE's residual aging it is G's change of age. At T = s the
output is y_s itself.
"""

import numpy as np
import tensorflow as tf

DEFAULT_OUTPUT_SIZE = 512


def carry_change(full, model_input, model_output):
    """The model's change (`model_output` - `model_input`, [s, s, 3], or [N, s, s, 3] for frames or a batch) added
    to `full` ([T, T, 3], or [N, T, T, 3] for a batch), all in [-1, 1]; the result has `full`'s side."""
    full = np.asarray(full, np.float32)
    model_output = np.asarray(model_output, np.float32)
    side, size = full.shape[-2], model_output.shape[-2]
    if side == size:
        return model_output if np.array_equal(full, model_input) else np.clip(full + model_output - model_input,
                                                                                -1.0, 1.0)
    change = tf.convert_to_tensor(model_output - np.asarray(model_input, np.float32))
    # Upsampling: bicubic (bilinear shows the model's pixel grid as a faint lattice at 4x); downsampling: antialiased.
    change = tf.image.resize(change, [side, side], method="bicubic" if side > size else "area",
                             antialias=side < size).numpy()
    return np.clip(full + change, -1.0, 1.0)


def carry_changes_uint8(fulls, model_inputs, outputs):
    """carry_change for a batch of uint8 outputs [N, s, s, 3] (--eval's form), as uint8 [N, T, T, 3]."""
    from face_aging.images import to_uint8
    if np.shape(outputs)[1:3] == np.shape(fulls)[1:3] and np.array_equal(fulls, model_inputs):
        return np.asarray(outputs)
    return np.concatenate([to_uint8(carry_change(fulls[i:i + 64], model_inputs[i:i + 64],
                                                 np.asarray(outputs[i:i + 64], np.float32) / 127.5 - 1.0))
                           for i in range(0, len(outputs), 64)])


def shared_side(paths, output_size):
    """The side images used as they are are read at: their own (the smallest centre square among them, so that one
    folder gives one size), at most `output_size`."""
    from PIL import Image
    sides = []
    for path in paths:
        with Image.open(path) as picture:
            sides.append(min(picture.size))
    return int(min([output_size] + sides))


class Lift:
    """Per-face lifting for test mode's writers: `at(age, i)` and `frames(i)` at the model's size -> the same at each
    face's own resolution. Faces without a full-resolution crop (None) keep the model's size."""

    def __init__(self, fulls, inputs):
        self.fulls, self.inputs = list(fulls), inputs

    def face(self, i, output):
        full = self.fulls[i]
        return output if full is None else carry_change(full, self.inputs[i], output)

    def input(self, i):
        return self.inputs[i] if self.fulls[i] is None else self.fulls[i]

    def at(self, at):
        return lambda age, i: self.face(i, at(age, i))

    def frames(self, frames):
        return lambda i: self.face(i, frames(i))
