"""A black-and-white face stays black and white when aged (face_aging/colour.py): on a face with no colour of its own
the models' changes keep only their luminance; on a colour face they are left as they are."""

import numpy as np
import pytest

from face_aging import colour
from face_aging.inference.agers import load_ager
from helpers import write_pagan_run

LUMA = np.array(colour.LUMA, np.float32)


def colour_faces(n, size=32, seed=3):
    return np.random.default_rng(seed).uniform(-0.8, 0.8, (n, size, size, 3)).astype(np.float32)


def grey(images):
    """The images in black and white: their luminance in R, G and B."""
    return np.repeat((np.asarray(images) @ LUMA)[..., None], 3, -1)


def channel_gap(images):
    """The largest difference between two colour channels of any pixel."""
    images = np.asarray(images)
    return float(np.abs(images - images[..., :1]).max())


def test_chroma_spread_is_zero_without_colour_and_large_with_it():
    x = colour_faces(2)
    toned = grey(x) + np.array([0.08, 0.0, -0.08], np.float32)      # a toned photo: the same tint everywhere
    spread = colour.chroma_spread(np.concatenate([grey(x), toned, x])).numpy()
    assert spread[:4].max() < 1e-3
    assert spread[4:].min() > 10 * colour.COLOUR_ABOVE


def test_the_weight_of_colour_rises_from_the_mono_to_the_colour_threshold():
    base = grey(colour_faces(1))
    pattern = np.indices((32, 32)).sum(0) % 2 * 2.0 - 1.0             # a checkerboard of +-1 ...
    cr = np.array([1.402, -0.714136, 0.0], np.float32) / 127.5           # ... in Cr alone (one 0-255 unit of it)
    scales = np.linspace(0, 6, 61)
    images = np.concatenate([base + s * pattern[None, :, :, None] * cr for s in scales]).astype(np.float32)
    spread, weight = colour.chroma_spread(images).numpy(), colour.colour_weight(images).numpy()
    np.testing.assert_allclose(spread, scales, atol=1e-2)
    assert np.all(np.diff(weight) >= 0)
    assert (weight[spread < colour.MONO_BELOW] == 0).all() and (weight[spread > colour.COLOUR_ABOVE] == 1).all()
    between = (spread > colour.MONO_BELOW + 0.1) & (spread < colour.COLOUR_ABOVE - 0.1)
    assert between.any() and ((weight[between] > 0) & (weight[between] < 1)).all()


def test_a_change_keeps_only_its_luminance_on_a_face_without_colour():
    x = colour_faces(2)
    faces = np.stack([grey(x[0]), x[1]])                                # one black-and-white face, one colour face
    change = np.random.default_rng(5).normal(0, 0.2, (3, 2, 32, 32, 3)).astype(np.float32)   # three ages
    out = colour.in_the_faces_colours(faces, change).numpy()
    assert channel_gap(out[:, 0]) < 1e-6                                 # the same in R, G and B ...
    np.testing.assert_allclose(out[:, 0] @ LUMA, change[:, 0] @ LUMA, atol=1e-6)   # ... and as bright
    np.testing.assert_array_equal(out[:, 1], change[:, 1])               # the colour face's change as it was


def assert_black_and_white_stays_so(ager, own, ages):
    x = colour_faces(2)
    genders = [0, 1]
    aged = ager.age(grey(x), genders, own, ages)
    assert channel_gap(aged) < 1e-5
    assert np.abs(aged - grey(x)[None]).max() > 0.02                      # aged, not left as it was
    # The same faces in colour: the model's change carries colour of its own, so the check above can fail.
    change = ager.age(x, genders, own, ages) - x[None]
    assert channel_gap(change) > 0.02


def test_the_caae_ages_a_black_and_white_face_in_black_and_white(lively_run):
    assert_black_and_white_stays_so(load_ager("caae", lively_run[0], residual=2.0), [25.0, 25.0], [5, 70])


def test_pagan_ages_a_black_and_white_face_in_black_and_white(tmp_path):
    write_pagan_run(str(tmp_path / "run"), (1, 3))
    assert_black_and_white_stays_so(load_ager("pagan", str(tmp_path / "run")), [20.0, 20.0], [35, 60])


@pytest.mark.slow
def test_the_bundled_pair_ages_a_black_and_white_face_in_black_and_white():
    """--model combined with the bundled models (steered by the bundled estimator), on rendered faces."""
    from face_aging.data.synthetic import make_person, render_face
    from face_aging.data.pipeline import scale_to_unit
    ager = load_ager("combined", "/nonexistent-run-directory")
    faces = np.stack([scale_to_unit(render_face(make_person(k, seed=5), 30, ager.size)).numpy() for k in range(2)])
    aged = ager.age(grey(faces), [0, 1], [30.0, 30.0], [10, 60, 80])
    assert channel_gap(aged) < 1e-5 and np.abs(aged - grey(faces)[None]).max() > 0.05
