"""Adding an aged face's change to a frame, instead of pasting the aged face (face_aging.faces.align.paste_back).

paste_back puts back the whole aged crop: the photo's own pixels are cut out, warped to the crop and warped back, two
resamplings that soften the face a little and, as the crop follows a moving face by fractions of a pixel, soften it
a little differently in every frame. A video adds only the model's change, warped straight from the model's size to
the frame (one bicubic warp), to the frame's own pixels: every pixel of the input's detail stays exactly as it was
in every frame, and what varies from frame to frame is the aging alone. The blend weight is paste_back's soft
ellipse, so the two agree on where a face ends.
"""

import numpy as np
from PIL import Image

from face_aging.faces.align import _affine3, _paste_mask, _pillow_data


class ChangeBlend:
    """Where one face's change lands in a frame of `shape`: the crop made by `matrix` (frame -> crop at `size`),
    for a change of side `side` (the model's). Made once per face and frame, applied per age."""

    def __init__(self, shape, matrix, size, side):
        forward = _affine3(matrix)
        forward[:2] *= side / size
        self.side = side
        height, width = shape[:2]
        corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], np.float64)
        footprint = (np.linalg.inv(forward) @ corners.T)[:2]
        x0, y0 = np.maximum(np.floor(footprint.min(axis=1)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(footprint.max(axis=1)).astype(int), [width, height])
        self.box = (x0, y0, x1, y1)
        self.empty = x1 <= x0 or y1 <= y0
        if self.empty:
            return
        self.out_to_in = _pillow_data(forward @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
        crop_xy = np.stack([xs, ys], axis=-1) @ forward[:2, :2].T + forward[:2, 2]
        self.mask = _paste_mask(crop_xy, side)[..., None].astype(np.float32)

    def apply(self, frame, change):
        """`frame` (uint8 [H, W, 3], not modified) plus `change` ([side, side, 3], in the models' [-1, 1] units)
        inside the face's ellipse: a new frame."""
        if self.empty:
            return frame
        x0, y0, x1, y1 = self.box
        size = (x1 - x0, y1 - y0)
        warped = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(change[..., c], np.float32)).transform(
            size, Image.AFFINE, self.out_to_in, resample=Image.BICUBIC)) for c in range(3)], axis=-1)
        region = frame[y0:y1, x0:x1].astype(np.float32)
        if np.ptp(region, axis=-1).max() <= 2:
            # A black-and-white clip: the models only make colour changes, which would tint the face.
            warped = np.repeat(warped @ np.array([[0.299], [0.587], [0.114]], np.float32), 3, axis=-1)
        result = frame.copy()
        result[y0:y1, x0:x1] = np.clip(np.rint(region + 127.5 * warped * self.mask), 0, 255).astype(np.uint8)
        return result
