"""Aged faces at the face's own resolution (face_aging/inference/fullres.py, faces/inputs.py): the model's change
carried to the full-resolution crop, the crop's side, and the ghost guard and ghost figures (docs/photos.md)."""

import numpy as np
import pytest
from PIL import Image


def test_carry_change_keeps_the_inputs_detail_and_adds_the_change():
    from face_aging.inference.fullres import carry_change
    rng = np.random.RandomState(0)
    full = rng.uniform(-0.8, 0.8, (96, 96, 3)).astype(np.float32)             # detail the model never saw
    small = np.asarray(Image.fromarray(np.uint8((full + 1) * 127.5)).resize((32, 32), Image.BOX),
                       np.float32) / 127.5 - 1
    # No change: the full-resolution face comes back exactly (not the 32-px input scaled up).
    np.testing.assert_allclose(carry_change(full, small, small), full, atol=1e-6)
    # A uniform change is added everywhere; a change in one quadrant stays in that quadrant.
    np.testing.assert_allclose(carry_change(full, small, small + 0.1), np.clip(full + 0.1, -1, 1), atol=1e-5)
    step = small.copy()
    step[:16, :16] += 0.3
    out = carry_change(full, small, step)
    assert out.shape == (96, 96, 3)
    assert np.abs(out[:40, :40] - full[:40, :40]).mean() > 0.2 and np.abs(out[56:, 56:] - full[56:, 56:]).max() < 1e-5
    # At the model's own size, the model's output itself.
    assert np.array_equal(carry_change(small, small, step), step)
    # Frames and batches: one full face with [F, s, s, 3] frames, or N faces with N outputs.
    assert carry_change(full, small, np.stack([small, step])).shape == (2, 96, 96, 3)
    assert carry_change(np.stack([full, full]), np.stack([small, small]), np.stack([small, step])).shape == \
        (2, 96, 96, 3)


def test_own_side_is_the_faces_size_in_the_photo_capped():
    from face_aging.faces.inputs import own_side
    scale = 0.25                      # a 64-px crop made from 256 photo pixels
    matrix = np.array([[scale, 0, -10], [0, scale, -5]])
    assert own_side(matrix, 64, 512) == 256
    assert own_side(matrix, 64, 200) == 200
    rotated = np.array([[0, -scale, 3], [scale, 0, 1]])
    assert own_side(rotated, 64, 512) == 256


def test_an_image_used_as_it_is_keeps_its_own_size(tmp_path):
    from face_aging.faces.inputs import collect_faces
    picture = np.random.RandomState(1).randint(0, 255, (80, 96, 3), np.uint8)
    Image.fromarray(picture).save(tmp_path / "face.png")
    crops, _, _ = collect_faces([str(tmp_path / "face.png")], "caae", 32, "off", output_size=512)
    assert crops[0].crop.shape == (32, 32, 3) and crops[0].full.shape == (80, 80, 3)     # its centre square
    assert np.abs((crops[0].full + 1) * 127.5 - picture[:, 8:88]).max() < 0.6
    crops, _, _ = collect_faces([str(tmp_path / "face.png")], "caae", 32, "off", output_size=48)
    assert crops[0].full.shape == (48, 48, 3)
    crops, _, _ = collect_faces([str(tmp_path / "face.png")], "caae", 32, "off")
    assert crops[0].full is None                                               # not asked for


def test_ghost_figures_catch_new_features_and_patches_not_the_input_itself():
    from face_aging.eval.metrics import ghost_figures
    rng = np.random.RandomState(2)
    face = np.full((4, 96, 96, 3), 150, np.uint8)
    face[:, 30:36, 25:40] = 60                                                 # an eye; the rest plain skin
    same = ghost_figures(face, face)
    assert same["new_edges"]["mean"] == 0 and same["blotch"]["mean"] == 0
    ghost = face.copy()
    ghost[:, 60:66, 35:62] = 40                                                # a second, dark mouth
    assert ghost_figures(face, ghost)["new_edges"]["mean"] > 1
    darker = face.astype(int)
    darker[:, 20:50, 50:80] -= 40                                              # a soft dark patch, no sharp edge
    darker = np.uint8(np.clip(darker + rng.randint(0, 2, darker.shape), 0, 255))
    blotch = ghost_figures(face, darker)["blotch"]["mean"]
    assert blotch > 5
    # A uniform change of brightness is no blotch.
    assert ghost_figures(face, face + 20)["blotch"]["mean"] < 0.5


def test_the_ghost_guard_follows_the_inputs_edges():
    from face_aging.models.caae.residual import guarded_change
    face = np.full((1, 32, 32, 3), -0.2, np.float32)
    face[:, :, 16:] = 0.6                                                      # one vertical edge
    change = np.zeros((1, 1, 32, 32, 3), np.float32)
    change[..., 8:24, 8:24, :] = -0.4                                          # G's dark square, across the edge
    guarded = guarded_change(face, change).numpy()[0, 0]
    # Inside a flat half, the square's own edges are spread out: no sharp new edge is drawn.
    jump_before = np.abs(np.diff(change[0, 0, 16, 4:14, 0])).max()
    jump_after = np.abs(np.diff(guarded[16, 4:14, 0])).max()
    assert jump_after < 0.5 * jump_before
    # A constant change passes unchanged.
    flat = np.full((2, 1, 32, 32, 3), 0.25, np.float32)
    np.testing.assert_allclose(guarded_change(face, flat).numpy(), 0.25, atol=1e-5)
