"""Ages in years, not groups: CAAE's age label interpolated between its groups' centres, PAGAN's generators blended
between their clusters' ages, from each face's own age (docs/photos.md)."""

import numpy as np
import pytest


def test_interpolated_labels_are_the_groups_at_their_centres_and_blend_between():
    from face_aging.data import labels as L
    centres = [L.group_centre_age(g) for g in range(L.NUM_AGE_GROUPS)]
    np.testing.assert_array_equal(L.interpolated_group_labels(centres),
                                  L.plus_minus_one_hot(np.arange(L.NUM_AGE_GROUPS), L.NUM_AGE_GROUPS))
    label = L.interpolated_group_labels([37.0])[0]          # 0.15 of the way from 31-40 (35.5) to 41-50 (45.5)
    np.testing.assert_allclose(label[5:7], [2 * 0.85 - 1, 2 * 0.15 - 1], atol=1e-6)
    assert np.all(np.delete(label, [5, 6]) == -1)
    # Past either end: the first or the last group.
    np.testing.assert_array_equal(L.interpolated_group_labels([0, 100]),
                                  L.plus_minus_one_hot([0, 9], L.NUM_AGE_GROUPS))


@pytest.mark.slow
def test_caae_ages_in_years_match_its_groups_at_their_centres(tiny_config, lively_run):
    from face_aging.models.caae.infer import restore_aging_model
    from face_aging.models.caae.model import gender_labels
    from face_aging.data import labels as L
    model, _ = restore_aging_model(tiny_config, lively_run[0])
    faces = np.random.RandomState(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    genders = gender_labels(1, 3)
    groups = model.age_progression(faces, genders)
    centres = [L.group_centre_age(g) for g in (2, 5, 9)]
    np.testing.assert_allclose(model.age_faces(faces, centres, genders), groups[[2, 5, 9]], atol=1e-5)
    between = model.age_faces(faces, [40.5], genders)[0]
    assert not np.allclose(between, groups[5], atol=1e-3) and not np.allclose(between, groups[6], atol=1e-3)
    # Residual aging: at the face's own age the input itself; own ages in years, as the groups do at centres.
    own = np.array([25.5, 35.5, 45.5])
    out = model.age_faces(faces, [25.5, 65.5], genders, residual=2.0, own_ages=own)
    np.testing.assert_allclose(out[0, 0], faces[0], atol=1e-5)
    by_group = model.age_progression(faces, genders, residual=2.0, own_groups=L.age_to_group(own.astype(int)))
    np.testing.assert_allclose(out[1], by_group[8], atol=1e-4)


def test_pagan_blends_its_clusters_by_the_years_each_adds_to_the_faces_own_age():
    from face_aging.models.pagan.infer import AGING_RISE, MAX_WEIGHT, change_weights, face_at_years
    trained = [1, 2, 3]
    r1, r2, r3 = AGING_RISE[1], AGING_RISE[2], AGING_RISE[3]
    assert change_weights(20, 20 + r1, trained) == pytest.approx({1: 1.0})
    assert change_weights(20, 20 + (r1 + r2) / 2, trained) == pytest.approx({1: 0.5, 2: 0.5})
    assert change_weights(20, 20 + r1 / 2, trained) == pytest.approx({1: 0.5})     # halfway to the first rise
    assert change_weights(30, 25, trained) == {} == change_weights(30, 30, trained)  # PAGAN does not make younger
    # The same rise from any own age: a face of 40 asked for 40 + r2 gets 41-50's change alone.
    assert change_weights(40, 40 + r2, trained) == pytest.approx({2: 1.0})
    # Past the last rise: its change scaled on along the same line, at most MAX_WEIGHT times.
    assert change_weights(20, 20 + 1.2 * r3, trained) == pytest.approx({3: 1.2})
    assert change_weights(20, 120, trained) == pytest.approx({3: MAX_WEIGHT})
    # Without 41-50's generator, 31-40 and 51+ share the way between their rises.
    middle = 20 + (r1 + r3) / 2
    assert change_weights(20, middle, [1, 3]) == pytest.approx({1: 0.5, 3: 0.5})
    faces = np.zeros((1, 4, 4, 3), np.float32)
    by_cluster = {0: faces, 1: faces + 0.2, 2: faces + 0.4, 3: faces + 0.6}
    np.testing.assert_allclose(face_at_years(by_cluster, 0, 20, 20 + (r1 + r2) / 2), 0.3, atol=1e-6)
    np.testing.assert_allclose(face_at_years(by_cluster, 0, float("nan"), 25), 0.0, atol=1e-6)   # unknown: 25
    np.testing.assert_allclose(face_at_years(by_cluster, 0, 20, 120), min(0.6 * MAX_WEIGHT, 1.0), atol=1e-6)
