"""Photos -> face crops for test mode: every face found, aligned to the model's template, or the image as it is when
it already is a face crop (`--align auto|on|off`, see docs/alignment.md)."""

import dataclasses
import logging
import os

import numpy as np
from PIL import Image

from face_aging.data.labels import LabelError, parse_utkface_name
from face_aging.data.pipeline import printable, read_face, square_and_resize
from face_aging.faces import align as A
from face_aging.faces import detect
from face_aging.faces.photo import PhotoError, PhotoLimits, box_reduce, megapixels, read_photo
from face_aging.images import to_uint8


# An image this close to square where no face is found is taken for a face crop the detector cannot see (tiny,
# synthetic or unusual faces); a wider or taller one is a photo without a face.
SQUARE_ASPECT = 0.1


def load_photo(path, limits=PhotoLimits()):
    """A photo as uint8 RGB [H, W, 3], upright, at most `limits.max_pixels` (face_aging.faces.photo): the array
    faces are detected in and pasted into. Raises PhotoError when it cannot be used."""
    return read_photo(path, limits).pixels


@dataclasses.dataclass
class FaceCrop:
    source: str                  # the photo's path
    index: int                   # 0-based face number in that photo (left to right)
    count: int                   # faces found in that photo
    crop: np.ndarray             # uint8 [size, size, 3]
    matrix: np.ndarray = None    # photo -> crop coordinates [2, 3]; None when the image was used as it is
    image: np.ndarray = None     # used as it is: float32 [size, size, 3] in [-1, 1], exactly as read (no uint8 step)
    full: np.ndarray = None      # the same face at its own resolution (at most --output_size): float32 [T, T, 3] in
                                 # [-1, 1]; what the model changes is carried to it (face_aging.inference.fullres)
    limits: PhotoLimits = PhotoLimits()   # how the photo was read: `matrix` is in the pixels of that reading
    reduced_from: tuple = None   # the whole photo's (width, height) when it was read reduced (faces.photo)

    @property
    def name(self):
        """The file name up to its first "." (UTKFace's AGE_GENDER_RACE_DATE.jpg.chip.jpg -> AGE_GENDER_RACE_DATE),
        plus _faceN when the photo holds several faces."""
        base = os.path.basename(self.source)
        stem = base.split(".")[0] or os.path.splitext(base)[0]
        return f"{stem}_face{self.index + 1}" if self.count > 1 else stem

    def photo(self):
        """The photo (re-read, so that a folder of photos is never all in memory), as it was read for `matrix`."""
        return load_photo(self.source, self.limits)


def is_chip_name(path):
    """True for UTKFace's name of an aligned & cropped face, AGE_GENDER_RACE_DATE.jpg.chip.jpg (or .png): with
    --align auto such a file is used as it is, without detection (UTKFace's in-the-wild photos lack the .chip)."""
    name = os.path.basename(path)
    if ".chip." not in name.lower():
        return False
    try:
        parse_utkface_name(name)
    except LabelError:
        return False
    return True


def _square(shape):
    height, width = shape[:2]
    return abs(width / height - 1.0) <= SQUARE_ASPECT


def _square_of(pixels, side):
    """The centre square of uint8 `pixels` as float32 [side, side, 3] in [-1, 1] (pipeline.square_and_resize),
    box-reduced first when it is far larger, so that the resize never holds a 16-megapixel float copy."""
    height, width = pixels.shape[:2]
    square = min(height, width)
    top, left = (height - square) // 2, (width - square) // 2
    pixels = pixels[top:top + square, left:left + square]
    factor = square // (2 * side)
    if factor >= 2:
        pixels = box_reduce(pixels, factor)
    return square_and_resize(pixels, side).numpy()


def own_side(matrix, size, output_size):
    """The side of the aligned crop at the photo's own scale: as many pixels as the face covers in the photo (the
    crop of `size` made by `matrix` scaled back to photo pixels), at most `output_size`."""
    scale = np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2])))     # crop pixels per photo pixel
    return int(max(1, min(output_size, round(size / scale))))


def collect_faces(paths, model, size, align="auto", output_size=None, limits=PhotoLimits()):
    """(crops, no_face_paths, skipped) for the image files `paths`: FaceCrops in file order (faces left to right),
    the photos where no face was found, and (path, reason) of files that cannot be read.

    align "off": every image as it is; "on": every face MTCNN finds, aligned (DetectorUnavailable without mtcnn);
    "auto": an image that already is an aligned crop (a UTKFace chip name, or one face where the template puts it)
    as it is, otherwise every face aligned; as "off" (with one warning) when mtcnn is not installed.
    `output_size`: each crop also gets `full`, the face at its own resolution up to that side (None: not made).
    `limits` (faces.photo.PhotoLimits): how much of a photo searched for faces is read, and how many faces one may
    hold; a photo read reduced is named in one warning."""
    if align not in A.ALIGN_MODES:
        raise ValueError(f"align must be one of {A.ALIGN_MODES}, got {align!r}")
    template = A.template_for(model)
    needs_detector = align == "on" or align == "auto" and not all(map(is_chip_name, paths))
    if needs_detector and not detect.detector_available():
        if align == "on":
            detect.require_detector()
        logging.warning("Face detection is not available (mtcnn is not installed): images are used as they are, "
                        "which suits face crops only. For photos: pip install -r requirements-photos.txt "
                        "(an installed package: pip install \"face-aging[photos]\").")
        align = "off"
    crops, no_face, skipped, taken_as_is, reduced = [], [], [], [], []

    def add_as_is(path, photo=None):
        if photo is not None and photo.reduced:
            # A photo this large was read reduced: its centre square from that reading, not a second whole decode.
            face, full = _square_of(photo.pixels, size), None
            if output_size:
                side = min(output_size, *photo.pixels.shape[:2])
                full = face if side == size else _square_of(photo.pixels, side)
            crops.append(FaceCrop(path, 0, 1, to_uint8(face), None, face, full, limits, photo.full_size))
            return
        # Read as test mode has always read it (pipeline.read_face); the float image is what the model gets.
        face, reason = read_face(path, size, upright=True)
        if reason:
            skipped.append((path, reason))
            return
        full = None
        if output_size:
            # The same reading at the image's own side (its centre square), or at most output_size.
            with Image.open(path) as picture:       # the header only: turning it upright keeps the shorter side
                side = min(output_size, min(picture.size))
            full = face if side == size else read_face(path, side, upright=True)[0]
        crops.append(FaceCrop(path, 0, 1, to_uint8(face), None, face, full, limits))

    for path in paths:
        if align == "off" or align == "auto" and is_chip_name(path):
            add_as_is(path)
            continue
        try:
            photo = read_photo(path, limits)
        except PhotoError as error:
            skipped.append((path, error.reason))
            continue
        if photo.reduced:
            reduced.append(f"{printable(os.path.basename(path))} ({photo.describe_reduction()})")
        faces = detect.detect_faces(photo.pixels)
        if limits.max_faces and len(faces) > limits.max_faces:
            skipped.append((path, f"{len(faces)} faces found; at most {limits.max_faces} are aged from one photo "
                                  f"(crop it to the faces wanted)"))
            continue
        if align == "auto" and len(faces) == 1 and A.looks_like_chip(photo.pixels.shape, faces[0], template):
            add_as_is(path, photo)
        elif faces:
            for index, face in enumerate(faces):
                matrix = A.crop_matrix(face.landmarks, template, size)
                crop = A.warp_face(photo.pixels, matrix, size)
                full = None
                if output_size:
                    side = own_side(matrix, size, output_size)
                    full = crop if side == size else A.warp_face(photo.pixels, matrix * (side / size), side)
                    full = np.asarray(full, np.float32) / 127.5 - 1.0
                crops.append(FaceCrop(path, index, len(faces), crop, matrix, None, full, limits,
                                      photo.full_size if photo.reduced else None))
        elif align == "auto" and _square(photo.pixels.shape):
            taken_as_is.append(path)
            add_as_is(path, photo)
        else:
            no_face.append(path)
        del photo
    if reduced:
        logging.warning("%d photo(s) larger than %s megapixels read reduced (docs/photos.md, \"Large photos\"): "
                        "%s; their faces and pasted photos come from the reduced photo", len(reduced),
                        megapixels(limits.max_pixels), ", ".join(reduced))
    if taken_as_is:
        logging.warning("No face detected in %d square image(s); used as they are, as already cropped faces: %s",
                        len(taken_as_is), ", ".join(printable(os.path.basename(p)) for p in taken_as_is))
    return crops, no_face, skipped
