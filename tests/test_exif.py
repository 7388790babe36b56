"""Photos as phones store them: sideways pixels plus an EXIF orientation tag. Every test-mode reader turns them
upright, including images used as they are (--align off, UTKFace chip names) and --eval's reader."""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from face_aging.data.pipeline import square_and_resize
from face_aging.exif import EXIF_ORIENTATION

SIZE = 32


def displayed():
    """What the user sees: an image that no turn or mirror maps onto itself (a red and a green corner on grey)."""
    image = np.full((48, 48, 3), 128, np.uint8)
    image[:24, :24] = (220, 30, 30)
    image[:12, 36:] = (30, 200, 30)
    return image


def phone_jpeg(orientation=6):
    """A JPEG whose pixels are stored sideways, with EXIF orientation 6 (turn 90 degrees clockwise to display) or
    another tag."""
    stored = np.rot90(displayed(), 1)                    # what orientation 6's clockwise turn puts upright
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(stored)).save(buffer, format="JPEG", quality=95, exif=exif)
    data = buffer.getvalue()
    if orientation == 6:
        with Image.open(io.BytesIO(data)) as image:    # the test's own premise: Pillow shows it as displayed()
            assert np.abs(np.asarray(ImageOps.exif_transpose(image)).astype(int) - displayed()).mean() < 3
    return data


def errors(tile):
    """Mean |tile - the upright picture| and |tile - the picture as stored|, in 0-255 levels."""
    levels = (np.asarray(tile, np.float32) + 1.0) * 127.5 if tile.dtype != np.uint8 else tile.astype(np.float32)
    upright = (square_and_resize(displayed(), SIZE).numpy() + 1.0) * 127.5
    sideways = (square_and_resize(np.ascontiguousarray(np.rot90(displayed(), 1)), SIZE).numpy() + 1.0) * 127.5
    return np.abs(levels - upright).mean(), np.abs(levels - sideways).mean()


@pytest.mark.parametrize("name, align", [("phone.jpg", "off"), ("30_0_0_20170101000000001.jpg.chip.jpg", "auto")])
def test_test_mode_uses_the_photo_the_way_the_user_sees_it(lively_run, tiny_config, tmp_path, name, align):
    from face_aging.inference.testmode import TestOptions, run_test
    savedir, _ = lively_run
    testdir = tmp_path / "photos"
    testdir.mkdir()
    (testdir / name).write_bytes(phone_jpeg())
    run_test(TestOptions(testdir=str(testdir), savedir=savedir, align=align, config=tiny_config))
    with Image.open(f"{savedir}/test/input.png") as grid:
        tile = np.asarray(grid.convert("RGB"))[:SIZE, :SIZE]
    upright, sideways = errors(tile)
    assert upright < 6 and sideways > 30, (upright, sideways)


def test_eval_reader_turns_photos_upright(tmp_path):
    from face_aging.inference.testmode import load_test_images
    (tmp_path / "phone.jpg").write_bytes(phone_jpeg())
    images, _ = load_test_images(str(tmp_path), SIZE)
    upright, sideways = errors(images[0])
    assert upright < 6 and sideways > 30, (upright, sideways)


def test_an_image_without_a_tag_is_used_as_stored(tmp_path):
    from face_aging.inference.testmode import load_test_images
    (tmp_path / "plain.jpg").write_bytes(phone_jpeg(orientation=1))
    images, _ = load_test_images(str(tmp_path), SIZE)
    upright, sideways = errors(images[0])
    assert sideways < 6 and upright > 30, (upright, sideways)


def png_with_exif_after_the_picture(orientation):
    """A PNG whose eXIf chunk comes after its picture data (IDAT), where PNG allows it."""
    import struct
    import zlib
    buffer = io.BytesIO()
    Image.fromarray(displayed()).save(buffer, format="PNG")
    data = buffer.getvalue()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    tiff = exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif\x00\x00") else exif.tobytes()
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    end = data.rindex(b"IEND") - 4
    return data[:end] + chunk + data[end:]


def test_a_png_tag_after_the_picture_is_read_without_decoding_it(tmp_path, monkeypatch):
    from PIL import PngImagePlugin
    from face_aging import exif
    path = tmp_path / "late.png"
    path.write_bytes(png_with_exif_after_the_picture(6))
    with Image.open(path) as image:                        # the premise: Pillow must decode to find it
        assert "exif" not in image.info and image.getexif().get(EXIF_ORIENTATION) == 6

    def no_decoding(self):
        raise AssertionError("the picture was decoded")
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    assert exif.orientation(str(path)) == 6
    plain = tmp_path / "plain.png"
    Image.fromarray(displayed()).save(plain)
    assert exif.orientation(str(plain)) == 1
