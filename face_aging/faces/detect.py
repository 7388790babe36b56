"""Face detection with MTCNN, an optional extra (requirements-photos.txt): five landmarks per face.

mtcnn is imported only when a detector is first needed, so training and `--align off` work without it.
"""

import dataclasses
import functools

import numpy as np
from PIL import Image

from face_aging.errors import FaceAgingError

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")   # image-left first, as mtcnn names them

# MTCNN's image pyramid makes a 12 MP photo take many seconds; faces worth aging are still 20+ px at this size.
DETECT_MAX_SIDE = 1024


class DetectorUnavailable(FaceAgingError, RuntimeError):
    """Face detection was asked for but mtcnn cannot be imported."""

    def __init__(self, detail=""):
        message = ("mtcnn is not installed; `pip install -r requirements-photos.txt` (an installed package: "
                   "`pip install \"face-aging[photos]\"`); "
                   "or pass --align off for images that are already face crops")
        super().__init__(f"{message} ({detail})" if detail else message)


@dataclasses.dataclass
class Face:
    box: tuple                 # (x, y, w, h) in pixels of the image searched
    confidence: float
    landmarks: np.ndarray      # float32 [5, 2] (x, y) in the order of LANDMARKS


def _import_mtcnn():
    """The MTCNN class, or DetectorUnavailable. Imported on every call (a dictionary look-up once loaded), so a
    test that hides the module (sys.modules['mtcnn'] = None) sees the detector as missing."""
    try:
        from mtcnn import MTCNN
    except ImportError as error:
        # A missing dependency of mtcnn (lz4, joblib) is named, since installing mtcnn again would not help.
        raise DetectorUnavailable("" if error.name == "mtcnn" else f"importing it failed: {error}") from None
    return MTCNN


def require_detector():
    """DetectorUnavailable unless mtcnn can be imported (naming a broken dependency of mtcnn if that is why)."""
    _import_mtcnn()


def detector_available():
    """True when mtcnn can be imported."""
    try:
        require_detector()
    except DetectorUnavailable:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _detector(mtcnn_class):
    # Building MTCNN loads its three networks' weights: once per process.
    return mtcnn_class()


def _downscaled(image, max_side):
    """`image` with its long side at most `max_side`, and the (x, y) factors back to the original's pixels."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, (1.0, 1.0)
    ratio = max_side / max(height, width)
    small_w, small_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    small = np.asarray(Image.fromarray(image).resize((small_w, small_h), Image.BILINEAR, reducing_gap=2.0))
    return small, (width / small_w, height / small_h)


def detect_faces(image, min_confidence=0.9, max_side=DETECT_MAX_SIDE):
    """Every face in `image` (uint8 [H, W, 3]) with MTCNN's confidence >= `min_confidence`, left to right.

    Searched on a copy whose long side is at most `max_side`; boxes and landmarks are in `image`'s pixels
    (continuous coordinates: pixel (row i, column j) spans [j, j+1) x [i, i+1))."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detect_faces needs a uint8 [H, W, 3] image, got {image.dtype} {list(image.shape)}")
    detector = _detector(_import_mtcnn())
    small, (sx, sy) = _downscaled(image, max_side)
    # The numpy output keeps sub-pixel landmarks (the JSON output rounds them to integers). Its rows are
    # [image, x1, y1, x2, y2, confidence, five landmark x, five landmark y].
    rows = np.asarray(detector.detect_faces(small, output_type="numpy", box_format="xyxy"), dtype=np.float64)
    faces = []
    for row in rows.reshape(-1, rows.shape[-1] if rows.ndim == 2 else 16):
        if row.shape[0] < 16 or row[5] < min_confidence:
            continue
        x1, y1, x2, y2 = row[1] * sx, row[2] * sy, row[3] * sx, row[4] * sy
        landmarks = np.stack([row[6:11] * sx, row[11:16] * sy], axis=1).astype(np.float32)
        faces.append(Face(box=(float(x1), float(y1), float(x2 - x1), float(y2 - y1)),
                          confidence=float(row[5]), landmarks=landmarks))
    return sorted(faces, key=lambda face: face.box[0] + face.box[2] / 2)
