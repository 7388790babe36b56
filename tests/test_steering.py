"""Age steering (face_aging/inference/steering.py): each face takes, from the weakest way of aging it that gets there,
the age whose face reads nearest the age asked for. The families here make faces whose brightness is the age they
read (the reader is brightness x 100), so what steering picks can be checked exactly."""

import numpy as np
import pytest

from face_aging.inference import steering
from face_aging.inference.steering import Family, invert, steer

GRID = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0)


def read(images):
    return np.asarray(images).reshape(len(images), -1).mean(1) * 100.0


def family(name, reach, calls, applies=None):
    """Faces that read the grid age, capped at `reach` years (a model that cannot age further; a list: per face)."""
    def make(members, grid):
        calls.append((name, list(members)))
        caps = np.broadcast_to(reach, (max(members) + 1,))[members]
        ages = np.minimum(np.asarray(grid)[:, None], caps[None, :])                 # [G, M]
        return np.broadcast_to((ages / 100.0)[:, :, None, None, None],
                               (len(grid), len(members), 2, 2, 3)).astype(np.float32)
    return Family(name, make, applies=applies)


def test_invert_interpolates_the_readings_and_prefers_the_age_asked_among_equals():
    assert invert(GRID, [0, 10, 20, 30, 40, 50], 25.0) == (50.0, 0.0)            # reads half the grid age
    pseudo, miss = invert(GRID, [30, 30, 30, 30, 30, 30], 30.0)                    # a flat curve: every age reads 30
    assert (pseudo, miss) == (30.0, 0.0)
    pseudo, miss = invert(GRID, [0, 20, 40, 40, 40, 40], 70.0)                      # it cannot get there
    assert miss == 30.0 and 40.0 <= pseudo <= 100.0
    assert invert(GRID, [np.nan, 20, np.nan, 60, 80, np.nan], 50.0) == (50.0, 0.0)
    assert invert(GRID, [np.nan] * 6, 50.0)[1] == np.inf


def test_each_face_takes_the_weakest_family_that_reaches_the_age_asked():
    calls = []
    families = [family("weak", 40, calls), family("strong", 100, calls)]
    out, used = steer(families, read, ages=[10, 35, 75], n=2, grid=GRID, tolerance=1)
    np.testing.assert_allclose(read(out.reshape(-1, 2, 2, 3)).reshape(3, 2), [[10, 10], [35, 35], [75, 75]],
                               atol=1e-4)
    assert used == [["weak", "weak"], ["weak", "weak"], ["strong", "strong"]]
    assert calls == [("weak", [0, 1]), ("strong", [0, 1])]


def test_a_weak_family_is_not_made_again_when_every_age_is_reached():
    calls = []
    steer([family("weak", 100, calls), family("strong", 100, calls)], read, [20, 60], 1, GRID, 1)
    assert calls == [("weak", [0])]


def test_a_stronger_family_is_made_only_for_the_faces_that_need_it():
    calls = []
    families = [family("weak", [100, 50, 100], calls), family("strong", 100, calls)]
    out, used = steer(families, read, [20, 70], 3, GRID, 1)
    assert calls == [("weak", [0, 1, 2]), ("strong", [1])]      # only face 1 reads 50 at most
    assert used == [["weak", "weak", "weak"], ["weak", "strong", "weak"]]
    np.testing.assert_allclose(read(out.reshape(-1, 2, 2, 3)).reshape(2, 3), [[20] * 3, [70] * 3], atol=1e-4)


def test_where_no_family_gets_there_the_nearest_reading_of_any_is_kept():
    calls = []
    out, used = steer([family("weak", 60, calls), family("strong", 40, calls)], read, [80], 1, GRID, 1)
    assert calls == [("weak", [0]), ("strong", [0])] and used == [["weak"]]
    np.testing.assert_allclose(read(out[:, 0]), [60], atol=1e-4)


def test_a_family_that_does_not_apply_to_a_face_is_skipped_for_it():
    calls = []
    families = [family("weak", 40, calls),
                family("adults", 100, calls, applies=lambda members: [m == 1 for m in members])]
    out, used = steer(families, read, [60], 2, GRID, 1)
    assert calls == [("weak", [0, 1]), ("adults", [1])]
    assert used == [["weak", "adults"]]


def test_faces_between_grid_ages_are_their_neighbours_blended():
    faces = np.stack([np.full((2, 2, 3), v, np.float32) for v in (0.0, 1.0, 3.0)])
    np.testing.assert_allclose(steering.at_pseudo_age((0.0, 10.0, 20.0), faces, 15.0), np.full((2, 2, 3), 2.0))
    np.testing.assert_allclose(steering.at_pseudo_age((0.0, 10.0, 20.0), faces, 20.0), np.full((2, 2, 3), 3.0))


@pytest.mark.slow
def test_the_combined_model_steers_with_an_estimator_and_its_frames_do_not(lively_run, tmp_path):
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
    frames = ager.for_frames()
    assert not frames.steered and ager.steered                    # a copy: the ager itself still steers
    plain = frames.age(x, [0, 1, 0], own, ages)
    np.testing.assert_array_equal(plain, ager._plain(x, np.array([0, 1, 0]), np.array(own), ages))
    assert not np.array_equal(out, plain)
    unsteered = CombinedAger(loaded.caae, loaded.pagan, None)
    assert not unsteered.steered and "Age steering: off" in unsteered.describe()[1]
