"""Tests of image grids and atomic image files."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from face_aging import fileio
from face_aging.images import make_grid, save_grid, save_image, to_uint8


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".tmp-") or ".tmp" in n]


def read(path):
    with Image.open(path) as image:
        return np.asarray(image).copy(), image.format


# ---------------------------------------------------------------------------------------------------------------------
# to_uint8.


def test_to_uint8_maps_the_ends_and_clips():
    out = to_uint8(np.array([-1.0, 1.0, -5.0, 7.0, -1.0001, 1.0001, 0.0]))
    assert out.dtype == np.uint8
    assert out[:6].tolist() == [0, 255, 0, 255, 0, 255]
    assert out[6] in (127, 128)


def test_to_uint8_is_linear_and_rounds():
    x = np.linspace(-1.0, 1.0, 1001, dtype=np.float32)
    out = to_uint8(x).astype(np.float64)
    assert np.all(np.abs(out - (x.astype(np.float64) + 1.0) * 127.5) <= 0.5 + 1e-4)
    assert np.all(np.diff(out) >= 0)
    assert set(out.tolist()) == set(range(256))  # every level used, none lost


def test_to_uint8_inverts_the_input_scaling():
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    np.testing.assert_array_equal(to_uint8(levels / 127.5 - 1.0), levels)  # x * 2 / 255 - 1, as the input pipeline


def test_to_uint8_other_range_and_shape():
    images = np.array([[[[0.0, 0.5, 1.0]]]])
    out = to_uint8(images, value_range=(0.0, 1.0))
    assert out.shape == images.shape
    assert out.ravel().tolist()[0] == 0 and out.ravel().tolist()[2] == 255 and out.ravel()[1] in (127, 128)


# ---------------------------------------------------------------------------------------------------------------------
# make_grid.


def tiles(n, h=3, w=5, c=3):
    """n images, image i filled with i + 1 (so an empty cell, 0, is told apart from image 0)."""
    return np.stack([np.full((h, w, c), i + 1, np.uint8) for i in range(n)])


def cell(grid, r, k, h=3, w=5):
    return grid[r * h:(r + 1) * h, k * w:(k + 1) * w]


@pytest.mark.parametrize("n, rows, cols, shape", [
    (7, None, 3, (3, 3)),
    (7, 2, None, (2, 4)),
    (10, None, 10, (1, 10)),
    (10, 10, 1, (10, 1)),
    (9, None, None, (3, 3)),
    (10, None, None, (3, 4)),  # no empty row
    (100, 10, 10, (10, 10)),
])
def test_make_grid_places_image_i_at_row_i_div_cols(n, rows, cols, shape):
    images = tiles(n)
    grid = make_grid(images, rows=rows, cols=cols)
    grid_rows, grid_cols = shape
    assert grid.shape == (grid_rows * 3, grid_cols * 5, 3)
    assert grid.dtype == images.dtype
    for i in range(grid_rows * grid_cols):
        expected = i + 1 if i < n else 0
        block = cell(grid, i // grid_cols, i % grid_cols)
        assert np.all(block == expected), (i, np.unique(block))


def test_make_grid_keeps_each_image_intact():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(6, 4, 7, 3)).astype(np.float32)
    grid = make_grid(images, rows=2, cols=3)
    for i in range(6):
        np.testing.assert_array_equal(cell(grid, i // 3, i % 3, 4, 7), images[i])


# ---------------------------------------------------------------------------------------------------------------------
# save_image and save_grid.


def test_save_image_writes_the_pixels(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    path = tmp_path / "samples" / "01.png"  # the folder is created
    save_image(array, str(path))
    pixels, fmt = read(path)
    assert fmt == "PNG"
    np.testing.assert_array_equal(pixels, array)
    assert leftovers(path.parent) == []


def test_save_image_as_jpeg(tmp_path):
    array = np.full((16, 16, 3), 120, np.uint8)
    save_image(array, str(tmp_path / "face.jpg"))
    pixels, fmt = read(tmp_path / "face.jpg")
    assert fmt == "JPEG" and pixels.shape == (16, 16, 3)
    assert np.abs(pixels.astype(int) - 120).max() <= 2
    assert leftovers(tmp_path) == []


def test_save_image_replaces_an_existing_file(tmp_path):
    path = tmp_path / "02.png"
    save_image(np.zeros((8, 8, 3), np.uint8), str(path))
    save_image(np.full((6, 10, 3), 200, np.uint8), str(path))
    pixels, _ = read(path)
    assert pixels.shape == (6, 10, 3) and np.all(pixels == 200)
    assert sorted(os.listdir(tmp_path)) == ["02.png"]


def test_saved_file_has_ordinary_permissions(tmp_path):
    """Atomic writing must not leave outputs readable by their owner only (a temp file's 0600)."""
    reference = tmp_path / "plain.bin"
    reference.write_bytes(b"x")  # what the umask gives an ordinary file
    save_image(np.zeros((4, 4, 3), np.uint8), str(tmp_path / "03.png"))
    mode = stat.S_IMODE(os.stat(tmp_path / "03.png").st_mode)
    assert mode == stat.S_IMODE(os.stat(reference).st_mode)


@pytest.mark.parametrize("bad, path", [
    (np.zeros((8, 8, 3), np.float64), "out.png"),     # unsupported dtype
    (np.zeros((8, 8, 5), np.uint8), "out.png"),       # unsupported shape
    (np.zeros((8, 8, 4), np.uint8), "out.jpg"),       # RGBA cannot be a JPEG
])
def test_a_failed_save_leaves_the_previous_file_and_no_temp(tmp_path, bad, path):
    target = tmp_path / path
    save_image(np.full((8, 8, 3), 77, np.uint8), str(target))
    before = target.read_bytes()
    with pytest.raises(Exception):
        save_image(bad, str(target))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == [path]


def test_a_save_killed_half_way_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "04.png"
    save_image(np.full((8, 8, 3), 33, np.uint8), str(target))
    before = target.read_bytes()

    def half_written(self, fp, *args, **kwargs):
        fp.write(before[:len(before) // 2])  # some bytes reach the disk, then the write dies
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_written)
    with pytest.raises(OSError, match="space"):
        save_image(np.full((8, 8, 3), 99, np.uint8), str(target))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["04.png"]


def test_save_image_writes_under_a_temporary_name_first(tmp_path, monkeypatch):
    """The final name only ever appears by a rename of a complete file."""
    target = tmp_path / "05.png"
    seen = []
    real_replace = os.replace

    def checking_replace(src, dst):
        assert os.path.abspath(dst) == str(target)
        assert os.path.dirname(os.path.abspath(src)) == str(tmp_path)  # same folder: the rename is atomic
        assert not os.path.exists(dst)
        pixels, _ = read(src)  # the temporary file is already complete
        seen.append(pixels)
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", checking_replace)
    save_image(np.full((5, 5, 3), 10, np.uint8), str(target))
    assert len(seen) == 1 and np.all(seen[0] == 10)
    assert np.all(read(target)[0] == 10) and leftovers(tmp_path) == []


def test_save_grid_saves_and_returns_the_uint8_grid(tmp_path):
    images = np.stack([np.full((4, 6, 3), v, np.float32) for v in (-1.0, 1.0, 0.0, -2.0, 0.5)])
    grid = save_grid(images, str(tmp_path / "grid.png"), rows=2, cols=3)
    assert grid.dtype == np.uint8 and grid.shape == (8, 18, 3)
    expected_levels = [0, 255, None, 0, None]
    for i, level in enumerate(expected_levels):
        block = cell(grid, i // 3, i % 3, 4, 6)
        if level is not None:
            assert np.all(block == level)
        assert len(np.unique(block)) == 1
    assert cell(grid, 0, 2, 4, 6)[0, 0, 0] in (127, 128)
    np.testing.assert_array_equal(read(tmp_path / "grid.png")[0], grid)
    assert leftovers(tmp_path) == []
