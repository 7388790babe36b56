"""Age steering (face_aging/inference/steering.py): each face takes the age whose face reads nearest the age asked
for. The faces made here have the brightness of the age they read (the reader is brightness x 100), so what steering
picks can be checked exactly."""

import os

import numpy as np
import pytest

from face_aging.inference import steering
from face_aging.inference.steering import invert, steer

GRID = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0)


def read(images):
    return np.asarray(images).reshape(len(images), -1).mean(1) * 100.0


def maker(reach, gain=1.0, calls=None):
    """Faces that read `gain` x the grid age, capped at `reach` years (a model that cannot age further), one per
    entry of `reach`."""
    def make(grid):
        if calls is not None:
            calls.append(list(grid))
        ages = np.minimum(np.asarray(grid)[:, None] * gain, np.asarray(reach, np.float64)[None, :])   # [G, N]
        return np.broadcast_to((ages / 100.0)[:, :, None, None, None], ages.shape + (2, 2, 3)).astype(np.float32)
    return make


def test_invert_interpolates_the_readings_and_prefers_the_age_asked_among_equals():
    assert invert(GRID, [0, 10, 20, 30, 40, 50], 25.0) == (50.0, 0.0)            # reads half the grid age
    pseudo, miss = invert(GRID, [30, 30, 30, 30, 30, 30], 30.0)                    # a flat curve: every age reads 30
    assert (pseudo, miss) == (30.0, 0.0)
    pseudo, miss = invert(GRID, [0, 20, 40, 40, 40, 40], 70.0)                      # it cannot get there
    assert miss == 30.0 and 40.0 <= pseudo <= 100.0
    assert invert(GRID, [np.nan, 20, np.nan, 60, 80, np.nan], 50.0) == (50.0, 0.0)
    assert invert(GRID, [np.nan] * 6, 50.0)[1] == np.inf


def test_each_face_reads_the_age_asked_where_its_model_gets_there_and_comes_nearest_where_not():
    calls = []
    # Face 0 ages at half the rate asked (as the guarded CAAE does), face 1 cannot read older than 50.
    out = steer(maker([100, 50], gain=0.5, calls=calls), read, [10, 35, 75], GRID)
    assert calls == [list(GRID)]                                   # made once, at the grid only
    np.testing.assert_allclose(read(out.reshape(-1, 2, 2, 3)).reshape(3, 2), [[10, 10], [35, 35], [50, 50]],
                               atol=1e-4)


def test_without_steering_the_same_faces_would_read_the_models_average_rise():
    # What steering corrects: asked for 35, face 0 above reads 17.5 when made at 35.
    made = maker([100, 50], gain=0.5)([35.0])
    np.testing.assert_allclose(read(made[0]), [17.5, 17.5])


def test_a_face_the_estimator_cannot_read_is_made_at_the_age_asked():
    def unreadable(images):
        return np.full(len(images), np.nan)
    out = steer(maker([100], gain=0.5), unreadable, [30], GRID)
    np.testing.assert_allclose(read(out[:, 0]), [15.0], atol=1e-4)        # at 30, which reads 15


def test_readings_are_made_non_decreasing_so_older_asked_is_never_made_younger():
    np.testing.assert_allclose(steering.monotone([37, 32, 33, 36, 38, 50, 45, 70]),
                               [34, 34, 34, 36, 38, 47.5, 47.5, 70])
    # An estimator that wavers: the face made at 20 reads younger than the one made at 0.
    readings = [30, 10, 40, 60, 80, 100]
    pseudo = [invert(GRID, readings, age)[0] for age in range(5, 100, 5)]
    assert all(b >= a for a, b in zip(pseudo, pseudo[1:])), pseudo


def test_faces_between_grid_ages_are_their_neighbours_blended():
    faces = np.stack([np.full((2, 2, 3), v, np.float32) for v in (0.0, 1.0, 3.0)])
    np.testing.assert_allclose(steering.at_pseudo_age((0.0, 10.0, 20.0), faces, 15.0), np.full((2, 2, 3), 2.0))
    np.testing.assert_allclose(steering.at_pseudo_age((0.0, 10.0, 20.0), faces, 20.0), np.full((2, 2, 3), 3.0))


@pytest.mark.slow
def test_the_combined_model_steers_with_an_estimator_and_its_unsteered_copy_does_not(lively_run, tmp_path):
    import os
    import shutil
    from test_agers import faces, write_pagan
    from face_aging.inference.agers import load_ager
    from face_aging.inference.combined import CombinedAger
    from face_aging.models.estimator import network
    savedir = str(tmp_path / "run")
    shutil.copytree(lively_run[0], savedir)
    write_pagan(os.path.join(savedir, "pagan"), (1, 2, 3))
    loaded = load_ager("combined", savedir)
    ager = CombinedAger(loaded.caae, loaded.pagan, network.build(32, 4))
    assert ager.steered and "Age steering: each face" in ager.describe()[1]
    x = faces(3)
    own, ages = [8.0, 25.0, 60.0], [10, 40, 75]
    out = ager.age(x, [0, 1, 0], own, ages)
    assert out.shape == (3, 3, 32, 32, 3) and np.isfinite(out).all() and np.abs(out).max() <= 1.0
    frames = ager.unsteered()
    assert not frames.steered and ager.steered                    # a copy: the ager itself still steers
    plain = frames.age(x, [0, 1, 0], own, ages)
    np.testing.assert_array_equal(plain, ager._plain(x, np.array([0, 1, 0]), np.array(own), ages))
    assert not np.array_equal(out, plain)
    # Each steered face is the pair's own face at some age: two neighbouring grid ages' faces blended.
    grid_faces = ager._plain(x, np.array([0, 1, 0]), np.array(own), list(steering.GRID))
    for a in range(len(ages)):
        for i in range(3):
            assert any(_on_segment(out[a, i], grid_faces[k, i], grid_faces[k + 1, i])
                       for k in range(len(steering.GRID) - 1)), (a, i)
    unsteered = CombinedAger(loaded.caae, loaded.pagan, None)
    assert not unsteered.steered and "Age steering: off" in unsteered.describe()[1]


@pytest.mark.slow
def test_nosteer_runs_the_combined_model_unsteered(lively_run, tmp_path, monkeypatch):
    """main.py --model combined --nosteer: test mode says steering is off (no estimator read) and the run's setting
    does not outlive it; without the flag the bundled estimator steers."""
    import shutil
    from PIL import Image
    from helpers import call_main
    from face_aging.inference import combined
    from face_aging.inference.agers import load_ager
    savedir = str(tmp_path / "run")
    shutil.copytree(lively_run[0], savedir)
    assert load_ager("combined", savedir).steered                   # the bundled estimator is there
    photos = tmp_path / "faces"
    photos.mkdir()
    Image.fromarray(((faces_for_cli() + 1) * 127.5).astype(np.uint8)).save(photos / "30_1_0_face.png")
    done = call_main("--model", "combined", "--is_train", "False", "--testdir", str(photos), "--savedir", savedir,
                     "--align", "off", "--target_age", "60", "--nosteer")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Age steering: off (--nosteer" in done.stdout
    assert any("age60" in name for name in os.listdir(tmp_path / "run" / "test"))
    assert combined.STEER is True                                   # the run's setting went with it


def faces_for_cli():
    return np.random.default_rng(5).uniform(-0.6, 0.6, (32, 32, 3))


def _on_segment(face, start, end, atol=1e-4):
    """Whether `face` is (1 - w) * start + w * end for some w in [0, 1]."""
    step = (end - start).ravel()
    w = 0.0 if not step.any() else float(np.clip(np.dot((face - start).ravel(), step) / np.dot(step, step), 0, 1))
    return np.allclose(face, start + w * (end - start), atol=atol)
