"""Held-out faces: a fixed rule on each file's bytes that no training run and no tuning decision may see past.

A face belongs to a set by where the SHA-256 of its file's contents falls, read as a fraction in [0, 1):

    [0, 0.03)      test  -- the faces the bundled model's figures (docs/caae_recipe.md) are reported on; never tuned on
    [0.03, 0.05)   val   -- the faces the recipe was chosen on
    [0.05, 1)      train

Hashing the contents, not the name, puts byte-identical files (UTKFace has about a hundred, sometimes under two
labels) on the same side, and the rule needs no list to be kept: on the 11,791-face UTKFace sample it holds out 373
test and 222 val faces; on the full 23,708 about 710 and 450.
"""

import hashlib

import numpy as np

SETS = {"test": (0.0, 0.03), "val": (0.03, 0.05)}
HELD_OUT_BELOW = 0.05          # training leaves out both sets
CHOICES = ("none",) + tuple(SETS)


def content_fraction(data):
    """The position in [0, 1) of `data` (bytes) under the rule: its SHA-256's first 32 bits over 2^32."""
    return int(hashlib.sha256(data).hexdigest()[:8], 16) / 2 ** 32


def file_fraction(path):
    with open(path, "rb") as f:
        return content_fraction(f.read())


def in_set(path, name):
    """Whether the file at `path` is in held-out set `name` (test | val)."""
    low, high = SETS[name]
    return low <= file_fraction(path) < high


def training_mask(faces):
    """Boolean [N]: True for the faces of a LabelledFaces that training may use (neither test nor val)."""
    if faces.paths is not None:
        fractions = [file_fraction(p) for p in faces.paths]
    else:  # in-memory faces (the synthetic set): the rule on each image's raw bytes
        fractions = [content_fraction(np.ascontiguousarray(image).tobytes()) for image in faces.images]
    return np.array(fractions) >= HELD_OUT_BELOW


def select(paths, name):
    """The paths (in their order) in held-out set `name`; all of them for "none"."""
    if name == "none":
        return list(paths)
    return [p for p in paths if in_set(p, name)]
