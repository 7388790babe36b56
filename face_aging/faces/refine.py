"""Following a face from one video frame to the next with MTCNN's last stage alone (its ONet): given where the face
was, one 48x48 look gives its five landmarks in this frame and how sure it is that a face is there. That costs a few
milliseconds, where a full detection (three networks over an image pyramid) costs 0.3-0.4 s on a 720p frame on two
cores, so a video runs the full detection only every few frames and when a face is lost (face_aging.faces.track).

ONet is MTCNN's own network with its own weights, reached through the mtcnn package's stage objects (mtcnn 1.x);
if a later mtcnn arranges them differently, `available()` is False and tracking detects in every frame instead.
"""

import functools

import numpy as np

from face_aging.faces import detect

ONET_SIDE = 48


@functools.lru_cache(maxsize=1)
def _onet():
    """MTCNN's ONet as a traced function of [N, 48, 48, 3] patches, or None when mtcnn's layout is not known."""
    import tensorflow as tf
    try:
        stage = detect._detector(detect._import_mtcnn()).get_stage(stage_id=3)
        model = stage._model
    except (AttributeError, TypeError):
        return None
    if model is None:
        return None
    return tf.function(lambda patches: model(patches), input_signature=[
        tf.TensorSpec([None, ONET_SIDE, ONET_SIDE, 3], tf.float32)], reduce_retracing=True)


def available():
    """True when mtcnn is installed and its ONet can be called on its own."""
    return detect.detector_available() and _onet() is not None


# Measured on 30 UTKFace chips padded into a larger picture: with this box ONet gives back the full detection's
# landmarks to 0.036 of their spread (about 1% of the face's height) at confidence >= 0.98, and from a box moved by a
# tenth of its side to 0.040; a tighter box (2.6 spreads) made it unsure (confidence down to 0.03).
BOX_SPREAD = 3.6
BOX_LIFT = 0.25


def square_box(landmarks):
    """The square box (x1, y1, x2, y2) ONet is shown for a face with these landmarks: BOX_SPREAD times their spread
    (root-mean-square distance from their centre), centred BOX_LIFT spreads above their centre."""
    points = np.asarray(landmarks, np.float64)
    centre = points.mean(axis=0)
    spread = np.sqrt(((points - centre) ** 2).sum(axis=1).mean())
    side = BOX_SPREAD * spread
    cx, cy = centre[0], centre[1] - BOX_LIFT * spread
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])




def _patches(image, boxes):
    """ONet's inputs for `boxes` [N, 4] in `image` (uint8 [H, W, 3]), sampled as MTCNN samples its own: bilinear,
    box coordinates over the image's side, grey (0 after normalisation) outside the image. Only the part of the
    image under the boxes is converted."""
    import tensorflow as tf
    height, width = image.shape[:2]
    boxes = np.asarray(boxes, np.float64)
    # MTCNN passes x / W to crop_and_resize, which samples pixel x / W * (W - 1); the same positions here.
    px = boxes[:, [0, 2]] / width * (width - 1)
    py = boxes[:, [1, 3]] / height * (height - 1)
    x0 = int(max(0, np.floor(px.min()) - 1))
    y0 = int(max(0, np.floor(py.min()) - 1))
    x1 = int(min(width, np.ceil(px.max()) + 2))
    y1 = int(min(height, np.ceil(py.max()) + 2))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = (tf.convert_to_tensor(image[y0:y1, x0:x1], tf.float32) - 127.5) / 128.0
    # A face much larger than the patch is first shrunk with an antialiasing resize (MTCNN sees such a face in its
    # downscaled pyramid; bilinear sampling alone would alias).
    shrink = min(1.0, 2.0 * ONET_SIDE / max(1.0, (px[:, 1] - px[:, 0]).max()))
    if shrink < 0.75:
        size = [max(2, round((y1 - y0) * shrink)), max(2, round((x1 - x0) * shrink))]
        region = tf.image.resize(region, size, method="area")
    rw, rh = x1 - x0 - 1, y1 - y0 - 1
    normalised = np.stack([(py[:, 0] - y0) / rh, (px[:, 0] - x0) / rw, (py[:, 1] - y0) / rh,
                           (px[:, 1] - x0) / rw], axis=1).astype(np.float32)
    return tf.image.crop_and_resize(region[tf.newaxis], normalised, np.zeros(len(boxes), np.int32),
                                    [ONET_SIDE, ONET_SIDE])


def refine(image, boxes):
    """For each box [N, 4] (x1, y1, x2, y2) in `image`: (landmarks [N, 5, 2] in image pixels, confidence [N]), as
    MTCNN's last stage gives them. Boxes wholly outside the image get confidence 0."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    landmarks = np.zeros((len(boxes), 5, 2), np.float32)
    confidence = np.zeros(len(boxes), np.float32)
    onet = _onet()
    patches = _patches(np.asarray(image), boxes) if len(boxes) and onet is not None else None
    if patches is None:
        return landmarks, confidence
    _, points, scores = (t.numpy() for t in onet(patches))
    # As mtcnn's adjust_landmarks: fractions of the box, with its +1 / -1 pixel convention.
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    landmarks[..., 0] = w * points[:, 0:5] + boxes[:, 0:1] - 1
    landmarks[..., 1] = h * points[:, 5:10] + boxes[:, 1:2] - 1
    return landmarks, scores[:, 1]
