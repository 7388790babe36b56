"""Photos read at the size their faces need (face_aging/faces/photo.py): a photo over the limit is decoded reduced
(a JPEG by libjpeg's DCT scaling) and reduced the rest of the way, a near-blank image far larger than its file is
refused unread, a PNG over the page's limit is refused, the paste-back works a band of rows at a time; and
collect_faces takes its faces, outlines and photo from the reduced reading.

The limits are made small here (tens of thousands of pixels), so the images stay tiny; the figures at the real
limit are in BENCHMARKS.md."""

import io
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import detectable_faces, place, png_claiming, rotation_matrix
from face_aging.data.pipeline import check_image
from face_aging.faces import align as A
from face_aging.faces import inputs, photo as P


def gradient(height, width, seed=0):
    """A photo-like picture: a colour gradient with a little noise (a flat one would compress to nothing)."""
    ys, xs = np.mgrid[0:height, 0:width]
    noise = np.random.RandomState(seed).normal(0, 4, (height, width, 3))
    picture = np.stack([40 + 150 * xs / width, 60 + 150 * ys / height, np.full(xs.shape, 110.0)], axis=-1)
    return np.clip(picture + noise, 0, 255).astype(np.uint8)


def save(array, path, **options):
    Image.fromarray(array).save(path, **options)
    return str(path)


def test_a_photo_within_the_limit_is_read_whole(tmp_path):
    picture = gradient(120, 160)
    path = save(picture, tmp_path / "small.png")
    photo = P.read_photo(path, P.PhotoLimits(max_pixels=160 * 120))
    assert np.array_equal(photo.pixels, picture) and not photo.reduced and photo.full_size == (160, 120)


def test_a_large_jpeg_is_decoded_reduced_by_libjpeg(tmp_path):
    path = save(gradient(600, 800), tmp_path / "big.jpg", quality=92)
    # 480,000 pixels for a limit of 40,000: libjpeg's 1/4 decodes 30,000, the smallest scale within twice the limit.
    assert P.dct_ratio((800, 600), 40_000) == 4 and P.dct_ratio((800, 600), 480_000) == 1
    photo = P.read_photo(path, P.PhotoLimits(max_pixels=40_000))
    with open(path, "rb") as f:
        expected = tf.io.decode_jpeg(f.read(), channels=3, ratio=4).numpy()
    assert np.array_equal(photo.pixels, expected)              # libjpeg's own reduced decode, not a resize
    assert photo.reduced and photo.full_size == (800, 600) and photo.describe_reduction() == "800x600 read at 200x150"


def test_a_reduced_photo_is_upright_and_within_the_limit(tmp_path):
    upright = gradient(300, 200)                                # portrait, as the user sees it
    exif = Image.Exif()
    exif[0x0112] = 6                                            # stored on its side, as phones store photos
    path = tmp_path / "portrait.jpg"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(path, quality=95, exif=exif)
    photo = P.read_photo(str(path), P.PhotoLimits(max_pixels=20_000))
    height, width = photo.pixels.shape[:2]
    assert photo.full_size == (200, 300) and height * width <= 20_000 and abs(height / width - 1.5) < 0.02
    small = np.asarray(Image.fromarray(upright).resize((width, height), Image.BOX)).astype(int)
    assert np.abs(photo.pixels.astype(int) - small).mean() < 3      # the same picture, upright


def test_reduce_to_and_box_reduce():
    image = gradient(700, 1000)
    out = P.reduce_to(image, 100_000)
    assert out.shape[0] * out.shape[1] <= 100_000 and abs(out.shape[1] / out.shape[0] - 1000 / 700) < 0.01
    assert P.reduce_to(image, 700_000) is image
    block = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    expected = np.rint(block.reshape(2, 2, 3, 2, 3).mean(axis=(1, 3)))
    assert np.array_equal(P.box_reduce(block, 2), expected)


def test_a_near_blank_image_far_larger_than_its_file_is_refused_unread(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (2200, 2200), 0).save(bomb)                   # 4.8 megapixels in a few hundred bytes
    assert bomb.stat().st_size < 2000

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")
    monkeypatch.setattr(P, "decode_rgb", no_decoding)
    with pytest.raises(P.PhotoError, match=r"2200x2200 pixels stored in \d+ bytes: nearly every pixel has the same "
                                           r"value"):
        P.read_photo(str(bomb))
    # A JPEG of one colour cannot compress that far; a photo-like PNG is nowhere near.
    flat = io.BytesIO()
    Image.new("RGB", (2200, 2200), (120, 80, 60)).save(flat, "JPEG", quality=90)
    assert P.expansion_problem((2200, 2200), len(flat.getvalue())) is None
    assert P.expansion_problem((2200, 2200), 2200 * 2200 * 3 // 950) is None
    assert P.expansion_problem((1500, 1500), 10) is None         # small images are cheap to read anyway


def test_a_png_over_the_decode_limit_is_refused(tmp_path):
    path = save(gradient(300, 400), tmp_path / "wide.png")
    with pytest.raises(P.PhotoError, match=r"a 0.1-megapixel PNG \(400x300\): a PNG cannot be read at a reduced size, "
                                           r"and 0.1 megapixels is the most read whole"):
        P.read_photo(path, P.PhotoLimits(max_pixels=20_000, max_decoded=100_000))
    photo = P.read_photo(path, P.PhotoLimits(max_pixels=20_000))    # test mode: decoded whole, then reduced
    assert photo.reduced and photo.pixels.shape[0] * photo.pixels.shape[1] <= 20_000


def test_an_image_past_twice_the_pixel_limit_gets_the_documented_reason(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(40000, 40000))           # Pillow refuses to open it at all
    assert check_image(str(path)).startswith("too large (40000x40000 = 1600 megapixels; the limit is Pillow's "
                                             "decompression-bomb limit of 89 megapixels")


def test_paste_back_in_bands_is_the_same_picture(monkeypatch):
    photo = gradient(300, 260)
    face = np.random.RandomState(1).randint(0, 255, (64, 64, 3), np.uint8)
    matrix = np.linalg.inv(np.vstack([rotation_matrix(12.0, 3.0, 40.0, 30.0), [0, 0, 1]]))[:2]
    whole = A.paste_back(photo, face, matrix, 64)
    monkeypatch.setattr(A, "PASTE_BAND_ROWS", 7)
    banded = A.paste_back(photo, face, matrix, 64)
    assert np.array_equal(banded, whole) and not np.array_equal(whole, photo)


# ---------------------------------------------------------------------------------------------------- collect_faces

@pytest.fixture(scope="module")
def two_faces():
    pytest.importorskip("mtcnn")
    return [face for face, _ in detectable_faces(2)]


def test_faces_of_a_reduced_photo_come_from_the_reduced_reading(two_faces, tmp_path, caplog):
    canvas = gradient(900, 1200)
    picture = place(canvas, two_faces[0], rotation_matrix(5.0, 2.4, 600.0, 250.0))
    path = save(picture, tmp_path / "group.jpg", quality=92)
    limits = P.PhotoLimits(max_pixels=300_000)
    with caplog.at_level(logging.WARNING):
        crops, no_face, skipped = inputs.collect_faces([path], "caae", 32, "on", output_size=512, limits=limits)
    assert no_face == [] and skipped == [] and len(crops) == 1
    assert "1 photo(s) larger than 0.3 megapixels read reduced" in caplog.text
    assert "group.jpg (1200x900 read at 600x450)" in caplog.text
    crop = crops[0]
    reduced = crop.photo()
    assert reduced.shape == (450, 600, 3) and crop.reduced_from == (1200, 900) and crop.limits == limits
    # The outline and the crop are in the reduced photo's pixels: the face (about 300 px there) is inside it.
    corners = A.crop_corners(crop.matrix, 32)
    assert (corners > 0).all() and (corners[:, 0] < 600).all() and (corners[:, 1] < 450).all()
    # At its own side in the reduced photo: half the side the whole photo gives it (within what detecting on two
    # sizes moves the landmarks).
    (whole,), _, _ = inputs.collect_faces([path], "caae", 32, "on", output_size=512)
    assert whole.reduced_from is None and abs(whole.full.shape[0] - 2 * crop.full.shape[0]) <= 6
    pasted = A.paste_back(reduced, np.zeros((32, 32, 3), np.uint8), crop.matrix, 32)
    assert pasted.shape == reduced.shape


def test_a_photo_with_more_faces_than_allowed_is_skipped(two_faces, tmp_path):
    canvas = gradient(300, 560)
    picture = place(canvas, two_faces[1], rotation_matrix(-10.0, 1.1, 330.0, 60.0))
    picture[100:228, 30:158] = two_faces[0]
    path = save(picture, tmp_path / "two.jpg", quality=95)
    crops, _, skipped = inputs.collect_faces([path], "caae", 32, "on", limits=P.PhotoLimits(max_faces=1))
    assert crops == [] and skipped == [(path, "2 faces found; at most 1 are aged from one photo (crop it to the "
                                              "faces wanted)")]


def test_a_large_image_used_as_it_is_comes_from_the_reduced_reading(two_faces, tmp_path, monkeypatch):
    path = save(gradient(400, 400), tmp_path / "square.jpg", quality=92)
    monkeypatch.setattr(inputs, "read_face", lambda *a, **k: pytest.fail("read again whole"))
    crops, _, _ = inputs.collect_faces([path], "caae", 32, "auto", output_size=512,
                                       limits=P.PhotoLimits(max_pixels=20_000))
    (crop,) = crops
    assert crop.matrix is None and crop.image.shape == (32, 32, 3) and crop.reduced_from == (400, 400)
    assert crop.full.shape == (141, 141, 3)                     # the reduced photo's side: at most 20,000 pixels


@pytest.mark.parametrize("shape, name, max_pixels", [((600, 800), "a.jpg", 40_000), ((601, 799), "b.jpg", 200_000),
                                                      ((300, 400), "c.png", 20_000), ((90, 120), "d.jpg", 20_000)],
                         ids=["dct", "dct_then_resize", "png", "whole"])
def test_read_size_is_the_size_read_photo_reads_at(tmp_path, shape, name, max_pixels):
    path = save(gradient(*shape), tmp_path / name, **({"quality": 90} if name.endswith(".jpg") else {}))
    limits = P.PhotoLimits(max_pixels=max_pixels)
    height, width = P.read_photo(path, limits).pixels.shape[:2]
    assert P.read_size(path, limits) == (width, height) and width * height <= max_pixels
