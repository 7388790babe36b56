"""Face alignment: a similarity transform from a face's five landmarks to a fixed template per model, the warp that
cuts the aligned crop out of a photo, the inverse warp that pastes an aged crop back, and the test whether an image
already is an aligned crop.

Coordinates are continuous pixel coordinates, as Pillow's: pixel (row i, column j) spans [j, j+1) x [i, i+1), so its
centre is (j + 0.5, i + 0.5). Then a template point p (in units of the crop side) sits at p * size in a crop of any
size, and a matrix made for one crop size serves another by scaling it.
"""

import dataclasses

import numpy as np
from PIL import Image

# --align: auto (face chips as they are, photos detected and aligned), on (always detect), off (as they are).
ALIGN_MODES = ("auto", "on", "off")
PASTE_BAND_ROWS = 256


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    points: np.ndarray     # [5, 2] (x, y) in units of the crop side, in the order of detect.LANDMARKS
    source: str            # how the numbers were derived (docs/alignment.md has the details)


# CAAE trains on UTKFace's aligned & cropped 200x200 chips: its template is where MTCNN finds the landmarks on them,
# the per-landmark median over 491 chips (python scripts/measure_template.py DIR --limit 500).
CAAE_TEMPLATE = Template(
    name="caae",
    points=np.array([[0.2989, 0.2896], [0.6840, 0.2893], [0.4881, 0.5190], [0.3170, 0.6867], [0.6639, 0.6862]]),
    source="median MTCNN landmarks of 491 UTKFace aligned&cropped chips (scripts/measure_template.py)",
)

# The ArcFace/insightface 112x112 five-point template, zoomed out by 1.3 about the crop centre (VGGFace2's box
# enlargement), so the 224 crop keeps hair and chin as CACD's loose faces and VGG-Face's inputs do.
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]])
PAGAN_TEMPLATE = Template(
    name="pagan",
    points=0.5 + (_ARCFACE_112 / 112.0 - 0.5) / 1.3,
    source="ArcFace 112x112 five-point template zoomed out 1.3x about the centre (VGGFace2-style loose crop)",
)

# By model (its default), or by the crops a run was trained on: "utkface" is UTKFace's chips, CAAE's template.
_TEMPLATES = {"caae": CAAE_TEMPLATE, "pagan": PAGAN_TEMPLATE, "utkface": CAAE_TEMPLATE}
TEMPLATE_NAMES = tuple(_TEMPLATES)


def template_for(model):
    """The template of model "caae" or "pagan" (their defaults), or of a run's recorded crop ("utkface")."""
    try:
        return _TEMPLATES[model]
    except KeyError:
        raise ValueError(f"no face template for model {model!r}; expected one of {sorted(_TEMPLATES)}") from None


def similarity_transform(src, dst):
    """[2, 3] M of the rotation, uniform scale and translation (no reflection) that best maps `src` onto `dst` in
    least squares (Umeyama 1991): dst ~= M[:, :2] @ p + M[:, 2]."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"similarity_transform needs two [N, 2] point sets, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum() / len(src)
    if src_var < 1e-12:
        raise ValueError("similarity_transform: the source points all coincide")
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    # Forcing det(R) = +1 keeps a mirrored point set from turning into a mirrored face.
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_var
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def crop_matrix(landmarks, template, size):
    """[2, 3]: photo coordinates -> pixel coordinates of the size x size crop where `landmarks` meet `template`."""
    return similarity_transform(landmarks, np.asarray(template.points) * size)


def _affine3(matrix):
    return np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])


def _pillow_data(out_to_in):
    """Pillow's AFFINE data: the [3, 3] map from output to input coordinates, as (a, b, c, d, e, f)."""
    return tuple(np.asarray(out_to_in)[:2].ravel())


def crop_corners(matrix, size):
    """Where the corners of the size x size crop that `matrix` (photo -> crop) describes lie in the photo: (x, y)
    [4, 2], clockwise from the crop's top left."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [size, size, 1], [0, size, 1]], np.float64)
    return (np.linalg.inv(_affine3(matrix)) @ corners.T).T[:, :2]


def warp_face(image, matrix, size):
    """The size x size crop of `image` (uint8 [H, W, 3]) that `matrix` (photo -> crop) describes."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    forward = _affine3(matrix)
    inverse = np.linalg.inv(forward)
    footprint = crop_corners(matrix, size).T
    margin = 3.0 / np.sqrt(abs(np.linalg.det(forward[:2, :2])))    # bicubic reads 2 pixels either side
    x0, y0 = np.floor(footprint.min(axis=1) - margin).astype(int)
    x1, y1 = np.ceil(footprint.max(axis=1) + margin).astype(int)
    # Only the part of the photo under the crop is handled: a 12 MP photo is never copied whole.
    cx0, cy0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    cx1, cy1 = max(min(x1, width), cx0 + 1), max(min(y1, height), cy0 + 1)
    region = Image.fromarray(image[cy0:cy1, cx0:cx1])
    # Image.transform does not low-pass filter, so a face much larger than the crop would alias (jagged edges,
    # moire in hair): shrink the region first with an antialiasing resize to about 1.5 photo pixels per crop pixel.
    shrink = min(1.0, 1.5 * np.sqrt(abs(np.linalg.det(forward[:2, :2]))))
    small_w, small_h = max(1, round(region.width * shrink)), max(1, round(region.height * shrink))
    if (small_w, small_h) != region.size:
        region = region.resize((small_w, small_h), Image.LANCZOS)
    sx, sy = region.width / (cx1 - cx0), region.height / (cy1 - cy0)
    # Outside the photo the edge pixels are repeated, not black: a black wedge in a crop is something the models
    # never saw in training and shows up in the aged face; a smeared border is closer to a plain background.
    pad_l, pad_t = int(np.ceil(max(0, cx0 - x0) * sx)) + 1, int(np.ceil(max(0, cy0 - y0) * sy)) + 1
    pad_r, pad_b = int(np.ceil(max(0, x1 - cx1) * sx)) + 1, int(np.ceil(max(0, y1 - cy1) * sy)) + 1
    padded = np.pad(np.asarray(region), ((pad_t, pad_b), (pad_l, pad_r), (0, 0)), mode="edge")
    # photo -> padded array: shift to the region, scale by the shrink, shift by the padding.
    to_padded = np.array([[sx, 0, pad_l - sx * cx0], [0, sy, pad_t - sy * cy0], [0, 0, 1]], np.float64)
    out_to_in = to_padded @ inverse
    return np.asarray(Image.fromarray(padded).transform((size, size), Image.AFFINE, _pillow_data(out_to_in),
                                                        resample=Image.BICUBIC))


def _paste_mask(coords, side):
    """Blend weight at crop coordinates `coords` [..., 2] of a side x side crop: 1 inside an ellipse nearly filling
    the crop, easing to 0 over its outer quarter and 0 beyond, so the pasted face has no visible seam."""
    u = coords[..., 0] / side - 0.5
    v = coords[..., 1] / side - 0.5
    r = np.sqrt((u / 0.46) ** 2 + (v / 0.48) ** 2)
    t = np.clip((1.0 - r) / 0.25, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)    # smoothstep: no kink where the feathering starts


def paste_back(photo, face, matrix, size=None):
    """`photo` with `face` (uint8 [s, s, 3], e.g. the aged crop) warped back where it was cut out and blended in.

    `matrix` is the photo -> crop matrix the crop was made with at crop size `size` (default: s); a face of another
    side is fitted by scaling the matrix. Pixels outside the pasted region are returned unchanged."""
    photo, face = np.asarray(photo), np.asarray(face)
    side = face.shape[0]
    if face.ndim != 3 or face.shape[1] != side:
        raise ValueError(f"paste_back needs a square face crop, got {list(face.shape)}")
    forward = _affine3(matrix)
    forward[:2] *= side / (size or side)
    inverse = np.linalg.inv(forward)
    height, width = photo.shape[:2]
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], np.float64)
    footprint = (inverse @ corners.T)[:2]
    x0, y0 = np.maximum(np.floor(footprint.min(axis=1)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(footprint.max(axis=1)).astype(int), [width, height])
    result = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return result
    # A black-and-white photo: the models only make colour faces, and a skin-toned oval would stand out.
    grey = np.ptp(result[y0:y1, x0:x1], axis=-1).max() <= 2
    face_image = Image.fromarray(face)
    # A band of rows at a time: a face filling a 16-megapixel photo would otherwise need its region's coordinates,
    # mask and warped face at 8 bytes a value all at once (gigabytes); each output pixel is computed alone, so the
    # bands give the same picture.
    for top in range(y0, y1, PASTE_BAND_ROWS):
        bottom = min(top + PASTE_BAND_ROWS, y1)
        # band pixel -> crop coordinates
        out_to_in = forward @ np.array([[1, 0, x0], [0, 1, top], [0, 0, 1]], np.float64)
        warped = np.asarray(face_image.transform((x1 - x0, bottom - top), Image.AFFINE, _pillow_data(out_to_in),
                                                 resample=Image.BICUBIC), np.float32)
        # The mask is computed at each photo pixel's centre mapped into the crop, not warped, so it is exact.
        ys, xs = np.mgrid[top:bottom, x0:x1].astype(np.float64) + 0.5
        crop_xy = np.stack([xs, ys], axis=-1) @ forward[:2, :2].T + forward[:2, 2]
        mask = _paste_mask(crop_xy, side)[..., None]
        region = result[top:bottom, x0:x1].astype(np.float32)
        if grey:
            warped = np.repeat(warped @ np.array([[0.299], [0.587], [0.114]], np.float32), 3, axis=-1)
        blended = np.clip(np.rint(region * (1.0 - mask) + warped * mask), 0, 255).astype(np.uint8)
        result[top:bottom, x0:x1] = np.where(mask > 0, blended, result[top:bottom, x0:x1])
    return result


@dataclasses.dataclass(frozen=True)
class ChipTolerance:
    """How far a face may be from the template and still count as an aligned crop. 99% of UTKFace's chips are
    within 0.14 in size, 7 degrees and 0.04 in shift of CAAE_TEMPLATE (docs/alignment.md); a face at half or twice
    the size, or turned 20 degrees, is not a chip."""
    scale: float = 0.2       # |size of the face / template's - 1|
    degrees: float = 10.0    # rotation of the face against the template's
    shift: float = 0.08      # distance of the face's landmark centre from the template's, in units of the side
    aspect: float = 0.1      # |width / height - 1| of the image


def chip_pose(image_shape, landmarks, template):
    """(scale, degrees, shift) of the similarity transform from `landmarks` to `template` placed on an image of
    `image_shape` (H, W): (1, 0, 0) for a face exactly where the template puts it."""
    height, width = image_shape[:2]
    expected = np.asarray(template.points) * [width, height]
    matrix = similarity_transform(landmarks, expected)
    scale = np.hypot(matrix[0, 0], matrix[1, 0])
    degrees = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
    shift = np.hypot(*(expected.mean(axis=0) - np.mean(landmarks, axis=0))) / ((width + height) / 2)
    # The transform maps the face onto the template, so the face's own size relative to the template is 1/scale.
    return 1.0 / scale, float(degrees), float(shift)


def looks_like_chip(image_shape, face, template, tolerance=ChipTolerance()):
    """True when `face` (a detect.Face) already sits where `template` puts a face on an image of `image_shape`
    (H, W): the image is then an aligned crop to be used as it is."""
    height, width = image_shape[:2]
    if abs(width / height - 1.0) > tolerance.aspect:
        return False
    size, degrees, shift = chip_pose(image_shape, face.landmarks, template)
    return abs(size - 1.0) <= tolerance.scale and abs(degrees) <= tolerance.degrees and shift <= tolerance.shift
