"""Image grids and image files (written atomically)."""

import numpy as np
from PIL import Image

from face_aging.fileio import atomic_write


def to_uint8(images, value_range=(-1.0, 1.0)):
    """Images in `value_range` (the models' [-1, 1]) -> uint8 [0, 255]."""
    low, high = value_range
    images = (np.asarray(images, dtype=np.float32) - low) / (high - low)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def make_grid(images, rows=None, cols=None):
    """[N, H, W, C] -> one [rows*H, cols*W, C] frame filled row by row (the original's save_batch_images)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    if rows is None and cols is None:
        cols = int(np.ceil(np.sqrt(n)))
    if cols is None:
        cols = int(np.ceil(n / rows))
    if rows is None:
        rows = int(np.ceil(n / cols))
    frame = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
    for i, image in enumerate(images[:rows * cols]):
        r, k = divmod(i, cols)
        frame[r * h:(r + 1) * h, k * w:(k + 1) * w] = image
    return frame


# zlib level 1: a strip of five aged faces of 200 px is written in 18 ms, against 27 at level 3 and 86 at Pillow's
# default 6, for a file 6% and 16% larger (test mode writes several such files per face; BENCHMARKS.md).
PNG_COMPRESS_LEVEL = 1


def save_image(array, path, jpeg_quality=75):
    """Write a uint8 image atomically; JPEG (at `jpeg_quality`) or PNG by the file name."""
    options = {"format": "JPEG", "quality": jpeg_quality} if path.lower().endswith((".jpg", ".jpeg")) else {
        "format": "PNG", "compress_level": PNG_COMPRESS_LEVEL}
    with atomic_write(path) as f:
        Image.fromarray(np.asarray(array)).save(f, **options)


def save_grid(images, path, rows=None, cols=None):
    """Save model outputs in [-1, 1] as one grid image; returns the uint8 grid (for TensorBoard)."""
    grid = make_grid(to_uint8(images), rows, cols)
    save_image(grid, path)
    return grid
