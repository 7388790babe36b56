"""Face detection, alignment, paste-back and the photo -> face crop step of test mode (face_aging.faces).

All images are made here: synthetic faces (face_aging.data.synthetic), dots, flat colours and noise."""

import logging
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers import detectable_face, detectable_faces, place, rotation_matrix, synthetic_face
from face_aging.data.pipeline import read_face
from face_aging.faces import align as A
from face_aging.faces import detect, inputs
from face_aging.images import to_uint8


def apply(matrix, points):
    return np.asarray(points) @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def save(array, path):
    Image.fromarray(array).save(path)
    return str(path)


# ---------------------------------------------------------------------------------------------------- alignment


def test_crop_matrix_recovers_a_known_similarity():
    template = A.CAAE_TEMPLATE
    crop_to_photo = rotation_matrix(17.0, 2.3, 300.0, 150.0)
    landmarks = apply(crop_to_photo, template.points * 128)
    matrix = A.crop_matrix(landmarks, template, 128)
    expected = np.linalg.inv(np.vstack([crop_to_photo, [0, 0, 1]]))[:2]
    np.testing.assert_allclose(matrix, expected, atol=1e-9)
    assert np.abs(apply(matrix, landmarks) - template.points * 128).max() < 1e-6
    # A mirrored point set is fitted by a rotation, never a reflection.
    mirrored = A.similarity_transform(landmarks * [-1, 1], template.points * 128)
    assert np.linalg.det(mirrored[:, :2]) > 0
    with pytest.raises(ValueError, match="coincide"):
        A.similarity_transform(np.ones((5, 2)), template.points)


def test_templates():
    assert A.template_for("caae") is A.CAAE_TEMPLATE and A.template_for("pagan") is A.PAGAN_TEMPLATE
    with pytest.raises(ValueError, match="caae"):
        A.template_for("vgg")
    for template in (A.CAAE_TEMPLATE, A.PAGAN_TEMPLATE):
        points = template.points
        assert points.shape == (5, 2) and ((points > 0.1) & (points < 0.9)).all() and template.source
        assert points[0, 0] < points[2, 0] < points[1, 0] and points[3, 0] < points[4, 0]   # image-left first
        assert points[:2, 1].max() < points[2, 1] < points[3:, 1].min()                      # eyes, nose, mouth


@pytest.mark.parametrize("scale, degrees", [(2.5, 30.0), (0.7, -12.0)])
def test_warp_face_puts_marked_landmarks_on_the_template(scale, degrees):
    size, template = 128, A.PAGAN_TEMPLATE
    crop_to_photo = rotation_matrix(degrees, scale, 260.0, 40.0)
    landmarks = apply(crop_to_photo, template.points * size)
    photo = np.full((420, 560, 3), 40, np.uint8)
    ys, xs = np.mgrid[0:420, 0:560] + 0.5
    for x, y in landmarks:     # a disc of radius 2.5 crop pixels, centred on the landmark
        photo[np.hypot(xs - x, ys - y) <= 2.5 * scale] = 255
    crop = A.warp_face(photo, A.crop_matrix(landmarks, template, size), size).astype(np.float64)[..., 0]
    cys, cxs = np.mgrid[0:size, 0:size] + 0.5
    for x, y in template.points * size:
        near = (np.abs(cxs - x) <= 6) & (np.abs(cys - y) <= 6)
        weight = np.clip(crop - 40, 0, None) * near
        centroid = (weight * cxs).sum() / weight.sum(), (weight * cys).sum() / weight.sum()
        assert np.hypot(centroid[0] - x, centroid[1] - y) < 1.0


def test_warp_face_repeats_the_edge_outside_the_photo():
    photo = np.zeros((100, 150, 3), np.uint8)
    photo[:, :, 0] = 120
    photo[:, :, 1] = np.arange(150)[None, :] // 2
    # A crop centred on the photo's top-left corner: three quarters of it lie outside the photo.
    crop = A.warp_face(photo, rotation_matrix(20.0, 1.0, 32.0, 32.0), 64)
    assert (crop[..., 0] == 120).all() and (crop[..., 2] == 0).all()


def test_looks_like_chip():
    template = A.CAAE_TEMPLATE
    chip = detect.Face((0, 0, 200, 200), 0.99, (template.points * 200).astype(np.float32))
    assert A.looks_like_chip((200, 200), chip, template)
    assert A.looks_like_chip((200, 200, 3), chip, template)
    small = detect.Face((0, 0, 200, 200), 0.99, (template.points * 200 * 0.5 + 100).astype(np.float32))
    assert not A.looks_like_chip((400, 400), small, template)    # the chip shrunk into a larger canvas
    rotated = detect.Face((0, 0, 200, 200), 0.99,
                          apply(rotation_matrix(25.0, 1.0, 0, 0), template.points * 200 - 100) + 100)
    assert not A.looks_like_chip((200, 200), rotated, template)
    assert not A.looks_like_chip((200, 300), chip, template)    # not square


def test_paste_back_changes_only_the_face_region():
    rng = np.random.RandomState(0)
    photo = rng.randint(0, 256, (300, 400, 3)).astype(np.uint8)
    landmarks = apply(rotation_matrix(15.0, 1.4, 120.0, 60.0), A.CAAE_TEMPLATE.points * 128)
    matrix = A.crop_matrix(landmarks, A.CAAE_TEMPLATE, 128)
    face = np.full((64, 64, 3), (200, 30, 90), np.uint8)     # an aged crop at half the crop size
    result = A.paste_back(photo, face, matrix, 128)
    ys, xs = np.mgrid[0:300, 0:400] + 0.5
    crop_xy = apply(matrix, np.stack([xs, ys], axis=-1)) / 128      # photo pixel centres in crop units
    outside = (crop_xy < -0.01).any(axis=-1) | (crop_xy > 1.01).any(axis=-1)
    inside = np.hypot(*(crop_xy - 0.5).transpose(2, 0, 1)) < 0.3
    assert outside.sum() > 50000 and inside.sum() > 5000
    assert np.array_equal(result[outside], photo[outside])
    assert np.abs(result[inside].astype(int) - [200, 30, 90]).max() <= 1
    changed = (result != photo).any(axis=-1)
    assert changed.sum() > inside.sum()      # feathered beyond the inner region, not a hard edge


def test_paste_back_into_a_black_and_white_photo_stays_grey():
    photo = np.repeat(np.random.RandomState(1).randint(0, 256, (200, 200, 1)), 3, axis=-1).astype(np.uint8)
    matrix = A.crop_matrix(A.CAAE_TEMPLATE.points * 200, A.CAAE_TEMPLATE, 64)
    result = A.paste_back(photo, np.full((64, 64, 3), (200, 150, 120), np.uint8), matrix, 64)
    assert (result != photo).any() and np.ptp(result.astype(int), axis=-1).max() <= 1
    colour = photo.copy()
    colour[..., 0] //= 2
    assert np.ptp(A.paste_back(colour, np.full((64, 64, 3), (200, 150, 120), np.uint8), matrix, 64)[100, 100]) > 40


def test_upright_matches_pillow_exif_transpose(tmp_path):
    from face_aging.exif import EXIF_ORIENTATION
    image = np.random.RandomState(1).randint(0, 256, (20, 30, 3)).astype(np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        path = tmp_path / f"o{orientation}.png"
        Image.fromarray(image).save(path, exif=exif)
        with Image.open(path) as stored:
            expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
        assert np.array_equal(inputs.load_photo(str(path)), expected), orientation


# ---------------------------------------------------------------------------------------------------- detection


@pytest.fixture(scope="module")
def mtcnn():
    return pytest.importorskip("mtcnn")


def test_detect_faces_on_blank_and_noise(mtcnn):
    assert detect.detector_available()
    assert detect.detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []
    assert detect.detect_faces(np.random.RandomState(0).randint(0, 256, (200, 300, 3)).astype(np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        detect.detect_faces(np.zeros((10, 10), np.float32))


@pytest.mark.parametrize("canvas_shape, scale, degrees", [((360, 540), 1.3, 15.0), ((1200, 1600), 3.0, 10.0)])
def test_detect_faces_finds_a_placed_synthetic_face(mtcnn, canvas_shape, scale, degrees):
    face, eyes = detectable_face()
    crop_to_photo = rotation_matrix(degrees, scale, canvas_shape[1] * 0.55, canvas_shape[0] * 0.2)
    photo = place(np.full(canvas_shape + (3,), 90, np.uint8), face, crop_to_photo)
    found = detect.detect_faces(photo)   # the large photo is searched at 1024 px and mapped back
    assert len(found) == 1
    assert found[0].landmarks.dtype == np.float32 and found[0].landmarks.shape == (5, 2)
    eye_distance = np.hypot(*(eyes[1] - eyes[0])) * scale
    error = np.hypot(*(found[0].landmarks[:2] - apply(crop_to_photo, eyes)).T)
    assert error.max() < 0.2 * eye_distance, error / eye_distance


def test_detect_faces_orders_faces_left_to_right(mtcnn):
    (left, _), (right, _) = detectable_faces(2)
    photo = np.full((200, 420, 3), 90, np.uint8)
    photo[40:168, 270:398] = right
    photo[40:168, 20:148] = left
    found = detect.detect_faces(photo)
    assert len(found) == 2 and found[0].box[0] < 150 < 270 <= found[1].box[0] + 5


# ---------------------------------------------------------------------------------------------------- collect_faces


@pytest.fixture
def files(tmp_path):
    """A square synthetic face, a non-square blank photo, a square flat image and a file that is no image."""
    face, _ = synthetic_face(0, size=48)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    return {"face": save(face, tmp_path / "23_1_0_x.jpg.chip.png"),
            "landscape": save(np.full((120, 200, 3), 200, np.uint8), tmp_path / "landscape.png"),
            "flat": save(np.full((64, 64, 3), (90, 140, 60), np.uint8), tmp_path / "flat.png"),
            "broken": str(broken)}


def as_is(path, size):
    return to_uint8(read_face(path, size)[0])


def test_collect_faces_off_is_todays_input(files):
    crops, no_face, skipped = inputs.collect_faces([files["face"], files["landscape"], files["broken"]],
                                                   "caae", 32, align="off")
    assert [c.source for c in crops] == [files["face"], files["landscape"]] and no_face == []
    assert skipped == [(files["broken"], "not an image Pillow can identify")]
    for crop in crops:
        assert crop.matrix is None and crop.count == 1 and crop.crop.dtype == np.uint8
        assert np.array_equal(crop.crop, as_is(crop.source, 32))
        np.testing.assert_allclose(crop.crop / 127.5 - 1, read_face(crop.source, 32)[0], atol=0.5 / 127.5 + 1e-6)
    assert crops[0].name == "23_1_0_x"
    with pytest.raises(ValueError, match="align"):
        inputs.collect_faces([], "caae", 32, align="maybe")


def test_collect_faces_without_mtcnn(files, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "mtcnn", None)      # as if mtcnn were not installed
    assert not detect.detector_available()
    with pytest.raises(detect.DetectorUnavailable, match="requirements-photos.txt"):
        inputs.collect_faces([files["face"]], "caae", 32, align="on")
    with pytest.raises(detect.DetectorUnavailable, match="--align off"):
        detect.detect_faces(np.zeros((32, 32, 3), np.uint8))
    with caplog.at_level(logging.WARNING):
        crops, no_face, skipped = inputs.collect_faces([files["face"], files["landscape"], files["broken"]],
                                                       "caae", 32, align="auto")
    assert [c.source for c in crops] == [files["face"], files["landscape"]] and no_face == []
    assert all(c.matrix is None for c in crops) and len(skipped) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "requirements-photos.txt" in warnings[0].getMessage()


def test_collect_faces_auto_without_a_face(mtcnn, files, caplog):
    with caplog.at_level(logging.WARNING):
        crops, no_face, skipped = inputs.collect_faces([files["flat"], files["landscape"], files["broken"]],
                                                       "caae", 32, align="auto")
    assert [c.source for c in crops] == [files["flat"]] and crops[0].matrix is None
    assert np.array_equal(crops[0].crop, as_is(files["flat"], 32))
    assert no_face == [files["landscape"]] and [p for p, _ in skipped] == [files["broken"]]
    assert "flat.png" in caplog.text
    crops, no_face, _ = inputs.collect_faces([files["flat"], files["landscape"]], "caae", 32, align="on")
    assert crops == [] and no_face == [files["flat"], files["landscape"]]


def test_collect_faces_aligns_every_face_in_a_photo(mtcnn, tmp_path):
    (left, _), (right, _) = detectable_faces(2)
    photo = place(np.full((300, 560, 3), 70, np.uint8), right, rotation_matrix(-10.0, 1.1, 330.0, 60.0))
    photo[100:228, 30:158] = left
    path = save(photo, tmp_path / "party.photo.jpg")
    for align in ("on", "auto"):
        crops, no_face, skipped = inputs.collect_faces([path], "pagan", 64, align=align)
        assert no_face == [] and skipped == []
        assert [(c.index, c.count, c.name) for c in crops] == [(0, 2, "party_face1"), (1, 2, "party_face2")]
        for crop in crops:
            assert crop.crop.shape == (64, 64, 3) and crop.matrix.shape == (2, 3)
    assert crops[0].photo().shape == photo.shape
    # The crop is the aligned face: its eyes where the template puts them (within a few pixels at 64).
    again = detect.detect_faces(crops[1].crop, min_confidence=0.5)
    if again:   # MTCNN is unsure about a 64 px cartoon face; when it sees it, it must be aligned
        assert np.abs(again[0].landmarks[:2] - A.PAGAN_TEMPLATE.points[:2] * 64).max() < 5


def test_collect_faces_auto_keeps_a_chip_as_it_is(mtcnn, tmp_path, monkeypatch):
    face, _ = detectable_face()
    path = save(face, tmp_path / "chip.png")
    found = detect.detect_faces(face)
    # The synthetic faces are smaller in their frame than UTKFace's chips, so use a template measured on this face.
    chip_template = A.Template("caae", found[0].landmarks / 128.0, "this face")
    monkeypatch.setitem(A._TEMPLATES, "caae", chip_template)
    crops, _, _ = inputs.collect_faces([path], "caae", 32, align="auto")
    assert len(crops) == 1 and crops[0].matrix is None and np.array_equal(crops[0].crop, as_is(path, 32))
    crops, _, _ = inputs.collect_faces([path], "caae", 32, align="on")
    assert len(crops) == 1 and crops[0].matrix is not None
