"""Photos read at the size their faces need (docs/photos.md, "Large photos").

A photo is needed for three things: its faces are searched for on a copy at most detect.DETECT_MAX_SIDE (1024)
pixels on its long side; each face is cut out at its own resolution, at most --output_size (512) pixels across; and
the aged faces go back into the photo. A phone photo (12 megapixels) needs all its pixels for the last, so a photo
of up to WORK_MAX_PIXELS (16 megapixels) is read whole, as it always was. Beyond that, more pixels cost memory and
time and give the outputs nothing a 16-megapixel copy lacks: a face whose aligned crop covers at least output_size
pixels of the reduced photo still comes out at output_size, and at 16 megapixels that is every face whose crop is
about 1/8 of the photo's side or more (in a 4000x4000 copy, 512 pixels). So a larger photo is read reduced to at
most WORK_MAX_PIXELS, and at least half that: a JPEG by libjpeg's DCT scaling while it is decoded (1/2, 1/4 or 1/8,
the first that decodes at most twice WORK_MAX_PIXELS), then a resize; a PNG, which cannot be decoded in part,
decoded whole and then reduced (the page refuses a PNG that large instead: PhotoLimits.max_decoded).

Before anything is decoded, an image of more than BOMB_CHECK_PIXELS whose file is tiny for its pixels (more than
MAX_EXPANSION bytes of RGB pixels per byte of file) is refused: only an image whose pixels are nearly all one value
compresses that far (a JPEG cannot: its floor is about 200), and decoding one costs memory and time for nothing.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from face_aging import exif
from face_aging.data.decode_check import libjpeg_warnings, unusable_reason
from face_aging.data.pipeline import check_image, decode_rgb, warn_damaged
from face_aging.errors import FaceAgingError

WORK_MAX_PIXELS = 16_000_000
BOMB_CHECK_PIXELS = 4_000_000
MAX_EXPANSION = 10_000
# A flat 1-bit PNG stores 88 megapixels in 11 KB (24,000 bytes of RGB per byte); a flat RGB PNG at zlib's best,
# or a smooth gradient, about 950; a JPEG of one colour about 190.

_DCT_RATIOS = (1, 2, 4, 8)
_BOX_BAND_ROWS = 64                 # output rows per step of the box reduction: a few MB at a time


class PhotoError(FaceAgingError, ValueError):
    """A photo that cannot be used; `reason` says why, as the skip reasons of face_aging.data.pipeline do."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PhotoLimits:
    """How much of a photo is read, and how many faces are taken from it."""
    max_pixels: int = WORK_MAX_PIXELS   # read reduced to at most this many pixels
    max_decoded: int = None             # a format that cannot be decoded reduced (PNG) is refused beyond this many
                                        # pixels (None: only Pillow's decompression-bomb limit)
    max_faces: int = None               # a photo with more faces is refused (None: any number)


@dataclasses.dataclass
class Photo:
    pixels: np.ndarray                  # uint8 [h, w, 3], upright, at most PhotoLimits.max_pixels
    full_size: tuple                    # (width, height) of the whole photo, upright

    @property
    def reduced(self):
        return (self.pixels.shape[1], self.pixels.shape[0]) != tuple(self.full_size)

    def describe_reduction(self):
        """"8000x8000 read at 4000x4000"."""
        (width, height), (h, w) = self.full_size, self.pixels.shape[:2]
        return f"{width}x{height} read at {w}x{h}"


def megapixels(pixels):
    """"16", "0.3": a count of pixels in megapixels, as a message says it."""
    if pixels >= 9.5e6:
        return f"{pixels / 1e6:.0f}"
    return f"{pixels / 1e6:.1g}" if pixels < 1e5 else f"{pixels / 1e6:.1f}"


def _header(path):
    """(format, (width, height) as stored) from the file's header."""
    with Image.open(path) as image:
        return ("JPEG" if image.format == "MPO" else image.format), image.size


def expansion_problem(size, file_bytes):
    """The reason an image of `size` (width, height) stored in `file_bytes` is refused unread, else None."""
    width, height = size
    pixels = width * height
    if pixels <= BOMB_CHECK_PIXELS or 3 * pixels <= MAX_EXPANSION * max(file_bytes, 1):
        return None
    stored = f"{file_bytes:,} bytes" if file_bytes < 10_000 else f"{file_bytes / 1024:,.0f} KB"
    return (f"{width}x{height} pixels stored in {stored}: nearly every pixel has the same value, so there is no photo "
            f"to read (a decompression bomb?)")


def dct_ratio(size, max_pixels):
    """The libjpeg scale (1, 2, 4 or 8) a JPEG of `size` is decoded at: the smallest that decodes at most twice
    `max_pixels` (a resize takes it the rest of the way), so never a needlessly whole 60-megapixel picture."""
    pixels = size[0] * size[1]
    return next((r for r in _DCT_RATIOS if pixels / (r * r) <= 2 * max_pixels), _DCT_RATIOS[-1])


def box_reduce(image, factor):
    """`image` (uint8 [H, W, C]) shrunk by a whole `factor`, each output pixel the mean of its factor x factor
    block, a band of rows at a time (a resize of the whole would first copy it, at 4 bytes a pixel)."""
    height, width = image.shape[0] // factor, image.shape[1] // factor
    out = np.empty((height, width, image.shape[2]), np.uint8)
    for top in range(0, height, _BOX_BAND_ROWS):
        bottom = min(top + _BOX_BAND_ROWS, height)
        block = image[top * factor:bottom * factor, :width * factor].reshape(bottom - top, factor, width, factor, -1)
        out[top:bottom] = np.rint(block.mean(axis=(1, 3)))
    return out


def _within(width, height, max_pixels):
    """(width, height) scaled to at most `max_pixels`, the aspect kept, and the scale."""
    if width * height <= max_pixels:
        return (width, height), 1.0
    scale = np.sqrt(max_pixels / (width * height))
    return (max(1, int(width * scale)), max(1, int(height * scale))), scale


def reduce_to(image, max_pixels):
    """`image` (uint8 [H, W, 3]) at most `max_pixels`, its aspect kept: whole factors by box_reduce, the rest by a
    Lanczos resize."""
    height, width = image.shape[:2]
    target, scale = _within(width, height, max_pixels)
    if scale == 1.0:
        return image
    factor = int(1.0 / scale)
    if factor >= 2:
        image = box_reduce(image, factor)
    if (image.shape[1], image.shape[0]) == target:
        return image
    return np.asarray(Image.fromarray(image).resize(target, Image.LANCZOS))


def read_photo(path, limits=PhotoLimits()):
    """The photo at `path` as a Photo: upright by its EXIF orientation, at most `limits.max_pixels`. PhotoError
    saying why when it cannot be used (pipeline.check_image's reasons, a decompression bomb, a PNG over
    `limits.max_decoded`, picture data that does not decode)."""
    reason = check_image(path)
    if reason:
        raise PhotoError(reason)
    try:
        fmt, size = _header(path)
        problem = expansion_problem(size, os.path.getsize(path))
        if problem:
            raise PhotoError(problem)
        pixels = size[0] * size[1]
        if fmt != "JPEG" and limits.max_decoded and pixels > limits.max_decoded:
            raise PhotoError(f"a {megapixels(pixels)}-megapixel {fmt} ({size[0]}x{size[1]}): a {fmt} cannot be read "
                             f"at a reduced size, and {megapixels(limits.max_decoded)} megapixels is the most read "
                             f"whole; save it as a JPEG, or smaller")
        orientation = exif.orientation(path)
        with open(path, "rb") as f:
            contents = tf.constant(f.read())
        with libjpeg_warnings() as captured:
            if fmt == "JPEG" and pixels > limits.max_pixels:
                image = tf.io.decode_jpeg(contents, channels=3, ratio=dct_ratio(size, limits.max_pixels))
            else:
                image = decode_rgb(contents)
            del contents
            image = image.numpy()
    except (tf.errors.OpError, OSError) as error:
        raise PhotoError(unusable_reason(error)) from None
    warn_damaged(path, captured.warnings)
    full = size if orientation not in (5, 6, 7, 8) else size[::-1]
    return Photo(pixels=reduce_to(exif.upright(image, orientation), limits.max_pixels), full_size=full)


def read_size(path, limits=PhotoLimits()):
    """(width, height) as stored that read_photo reads the photo at path at, from its header alone."""
    fmt, (width, height) = _header(path)
    if fmt == "JPEG" and width * height > limits.max_pixels:
        ratio = dct_ratio((width, height), limits.max_pixels)
        width, height = -(-width // ratio), -(-height // ratio)          # libjpeg rounds up
    return _within(width, height, limits.max_pixels)[0]
