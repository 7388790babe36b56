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
    from face_aging.caae.config import TestOptions
    from face_aging.caae.infer import run_test
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
