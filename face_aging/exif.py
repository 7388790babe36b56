"""Photos as phones store them: the pixels as the camera sensor saw them, plus an EXIF orientation tag saying how to
turn them for display. Test mode turns every image it reads upright by that tag, so faces are found, aged and
pasted back the way the user sees the photo. (Training reads face crops through tf.data, which ignores the tag, as
the datasets' own chips carry none.)"""

import os
import struct

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_exif(path):
    """The data of a PNG's eXIf chunk, found by walking the chunks' headers, or None. (Pillow decodes the whole
    picture to reach an eXIf chunk stored after it: a 9400x9400 PNG of 11 KB then costs gigabytes.)"""
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return None
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                return f.read(length)
            if kind == b"IEND":
                return None
            f.seek(length + 4, os.SEEK_CUR)         # the data and its CRC


def orientation(path):
    """The EXIF orientation tag (1 = upright) of an image file; 1 when it has none or it cannot be read. Reads
    headers only, never the picture."""
    try:
        with Image.open(path) as image:
            if image.format == "PNG" and "exif" not in image.info:
                data = _png_exif(path)
                if data is None:
                    return 1
                exif = Image.Exif()
                exif.load(data)
            else:
                exif = image.getexif()
            return int(exif.get(EXIF_ORIENTATION, 1))
    except Exception:  # a damaged EXIF block must not lose the photo: it is shown as stored
        return 1


def upright(image, tag):
    """`image` [H, W, C] turned as the EXIF orientation `tag` says (as PIL.ImageOps.exif_transpose); MTCNN does not
    find faces lying on their side either."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
             7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    turn = turns.get(tag)
    return np.ascontiguousarray(turn(image)) if turn else image
