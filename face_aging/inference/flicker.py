"""Flicker of an aged clip, as the video issue defines it: inside the face, the mean frame-to-frame change of the
output, over that of the input. 1 means the aging added no change of its own from frame to frame; the target is at
most 1.3 (docs/test_mode.md#videos). Measured on rendered clips, whose faces' places are known
(face_aging.data.synthetic_video), by the video tests and benchmark."""

import numpy as np


def face_mask(shape, boxes):
    """bool [H, W]: the inner ellipse of each face box (x, y, side) -- the face itself, without hair or background."""
    height, width = shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    mask = np.zeros((height, width), bool)
    for x, y, side in boxes:
        cx, cy = x + side / 2, y + 0.55 * side
        mask |= ((xs - cx) / (0.28 * side)) ** 2 + ((ys - cy) / (0.34 * side)) ** 2 <= 1
    return mask


def upright_frames(path):
    """Every frame of a clip, decoded, as uint8 RGB the way a player shows it (display matrix applied)."""
    from face_aging.inference import videoio
    reader = videoio.ClipReader(path)
    try:
        turns = None
        for frame in reader.frames():
            if turns is None:
                turns = videoio.rotation_of(frame)
            yield videoio.upright(videoio.to_rgb(frame), turns)
    finally:
        reader.close()


def mean_changes(path, boxes):
    """[F - 1]: per pair of consecutive frames, the mean absolute change (grey levels, over RGB) inside the faces
    of both frames (NaN where neither has a face)."""
    changes, previous = [], None
    for index, frame in enumerate(upright_frames(path)):
        frame = frame.astype(np.float32)
        if previous is not None:
            mask = face_mask(frame.shape, list(boxes[index - 1]) + list(boxes[index]))
            changes.append(float(np.abs(frame - previous)[mask].mean()) if mask.any() else float("nan"))
        previous = frame
    return np.array(changes)


def flicker_ratio(input_path, output_path, boxes):
    """(ratio, input's mean change, output's) inside the faces at `boxes` (per frame: [(x, y, side)])."""
    before, after = mean_changes(input_path, boxes), mean_changes(output_path, boxes)
    if len(before) != len(after):
        raise ValueError(f"{output_path} has {len(after) + 1} frames, {input_path} {len(before) + 1}")
    keep = np.isfinite(before) & np.isfinite(after)
    before, after = float(before[keep].mean()), float(after[keep].mean())
    return after / before, before, after
