"""Tests of the synthetic face data set: determinism, labels, identity, and that each age cue moves with age."""

import dataclasses
import os
import re

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from face_aging.data.synthetic import (AGE_MAX, Person, face_landmarks, make_dataset, make_person, render_face,
                                       write_utkface_folder)

GROUP_UPPER = (5, 10, 15, 20, 30, 40, 50, 60, 70)  # CAAE's ten groups: 0-5, ..., 61-70, 71+
DARK_HAIR = (22, 19, 19)
PLAIN_BACKGROUND = ((200, 200, 200), (200, 200, 200))


def luminance(image):
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def mean_abs_diff(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def box(image, landmarks_box, size):
    """Crop `image` to a box given in image-side units (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = (int(round(v * size)) for v in landmarks_box)
    return image[y0:y1, x0:x1]


# ---------------------------------------------------------------------------------------------------------------------
# Persons and rendering basics.


def test_make_person_is_deterministic_in_id_and_seed():
    assert make_person(5, seed=1) == make_person(5, seed=1)
    assert make_person(5, seed=1) != make_person(5, seed=2)
    assert make_person(5, seed=1) != make_person(6, seed=1)
    assert make_person(3) == make_person(3, seed=2017)


def test_persons_cover_genders_races_and_traits_are_plain_values():
    persons = [make_person(i) for i in range(200)]
    assert {p.gender for p in persons} == {0, 1}
    assert {p.race for p in persons} == {0, 1, 2, 3, 4}
    for p in persons[:20]:
        assert isinstance(p, Person)
        for field in dataclasses.fields(p):
            value = getattr(p, field.name)
            assert isinstance(value, (int, float, tuple)), (field.name, type(value))
        assert all(0 <= v <= 255 for v in p.skin)
    # Race sets the skin tone range: White and Asian are lighter than Black on average.
    mean_lum = {r: np.mean([np.mean(p.skin) for p in persons if p.race == r]) for r in range(5)}
    assert mean_lum[0] > mean_lum[1] + 60 and mean_lum[2] > mean_lum[1] + 60


@pytest.mark.parametrize("size", [16, 32, 48, 64, 100, 128])
def test_render_face_shape_dtype_and_content(size):
    image = render_face(make_person(1), 33.5, size)
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10  # not a blank frame
    assert image.flags.writeable


def test_render_face_rejects_tiny_sizes():
    with pytest.raises(ValueError):
        render_face(make_person(1), 30, 8)


def test_render_face_is_deterministic_and_clips_age():
    p = make_person(7)
    np.testing.assert_array_equal(render_face(p, 41.25, 64), render_face(p, 41.25, 64))
    np.testing.assert_array_equal(render_face(p, AGE_MAX + 20, 64), render_face(p, AGE_MAX, 64))
    np.testing.assert_array_equal(render_face(p, -3, 64), render_face(p, 0, 64))
    # Float ages are honoured, not rounded.
    assert mean_abs_diff(render_face(p, 70.0, 64), render_face(p, 70.5, 64)) > 0


def test_face_is_centred_and_fills_frame():
    size = 64
    for pid in range(6):
        p = dataclasses.replace(make_person(pid), background=PLAIN_BACKGROUND, clothes=(200, 200, 200))
        image = render_face(p, 35, size).astype(np.int32)
        differs = np.abs(image - 200).sum(axis=2) > 30  # not background
        ys, xs = np.nonzero(differs)
        assert abs(xs.mean() - size / 2) < size * 0.06
        # The middle row crosses the face: most of its width is person, not background.
        assert differs[size // 2].mean() > 0.6


# ---------------------------------------------------------------------------------------------------------------------
# Data sets.


def test_make_dataset_shapes_dtypes_and_labels():
    n, size = 64, 32
    data = make_dataset(n, size, seed=11)
    assert set(data) == {"images", "ages", "genders", "races", "person_ids"}
    assert data["images"].shape == (n, size, size, 3) and data["images"].dtype == np.uint8
    for key in ("ages", "genders", "races", "person_ids"):
        assert data[key].shape == (n,) and data[key].dtype == np.int32, key
    assert data["ages"].min() >= 0 and data["ages"].max() <= AGE_MAX
    assert set(np.unique(data["genders"])) <= {0, 1}
    assert data["races"].min() >= 0 and data["races"].max() <= 4
    # Persons 0..ceil(N/6)-1, six images each, in order; labels agree with the person and the pixels.
    np.testing.assert_array_equal(data["person_ids"], np.arange(n) // 6)
    for i in (0, 7, 30, n - 1):
        person = make_person(int(data["person_ids"][i]), seed=11)
        assert (person.gender, person.race) == (data["genders"][i], data["races"][i])
        np.testing.assert_array_equal(data["images"][i], render_face(person, int(data["ages"][i]), size))


def test_make_dataset_is_deterministic_and_prefix_stable():
    a = make_dataset(30, 32, seed=3)
    b = make_dataset(30, 32, seed=3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = make_dataset(30, 32, seed=4)
    assert not np.array_equal(a["images"], c["images"])
    longer = make_dataset(42, 32, seed=3)
    for key in a:
        np.testing.assert_array_equal(longer[key][:30], a[key])


def test_make_dataset_balances_age_groups():
    # Labels only: rendering is not needed to check the age draw, so use a tiny size.
    data = make_dataset(1200, 16, seed=5)
    groups = np.searchsorted(GROUP_UPPER, data["ages"], side="left")
    counts = np.bincount(groups, minlength=10)
    assert counts.min() > 0.7 * 120 and counts.max() < 1.3 * 120, counts
    assert data["ages"].min() <= 2 and data["ages"].max() >= 85
    # Each person's six ages come from six different groups, so every person is seen young and old.
    per_person = groups.reshape(-1, 6)
    assert all(len(set(row)) == 6 for row in per_person)
    # Both genders and all races are well represented.
    assert 0.4 < data["genders"].mean() < 0.6
    assert np.bincount(data["races"], minlength=5).min() > 60


def test_make_dataset_images_per_person_and_partial_last_person():
    data = make_dataset(10, 16, seed=1, images_per_person=4)
    np.testing.assert_array_equal(data["person_ids"], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    assert make_dataset(0, 16)["images"].shape == (0, 16, 16, 3)


# ---------------------------------------------------------------------------------------------------------------------
# Identity and age cues.


def test_same_person_two_years_apart_is_much_closer_than_two_people():
    size = 64
    persons = [make_person(i) for i in range(8)]
    same = [mean_abs_diff(render_face(p, 30, size), render_face(p, 32, size)) for p in persons]
    at30 = [render_face(p, 30, size) for p in persons]
    other = [mean_abs_diff(at30[i], at30[j]) for i in range(8) for j in range(i + 1, 8)]
    assert max(same) < 0.25 * min(other), (max(same), min(other))


def test_aging_changes_a_face_steadily():
    # Distance from the age-20 rendering grows with the age gap: the benchmark relies on this ordering.
    size = 64
    for pid in range(4):
        p = make_person(pid)
        base = render_face(p, 20, size)
        gaps = [mean_abs_diff(base, render_face(p, age, size)) for age in (30, 50, 70, 90)]
        assert all(a < b for a, b in zip(gaps, gaps[1:])), gaps


def hair_top(person, age, size=128):
    """Mean colour of a patch on top of the head, above the hairline."""
    lm = face_landmarks(person, age)
    y0 = lm["skull_top_y"] + 0.01
    patch = box(render_face(person, age, size), (y0, y0 + 0.07, 0.42, 0.58), size).reshape(-1, 3)
    return patch.astype(np.float64).mean(axis=0)


def test_dark_hair_greys_towards_white_monotonically():
    for pid in range(4):
        p = dataclasses.replace(make_person(pid), gender=1, hair_style=0, hair_colour=DARK_HAIR)
        ages = (30, 45, 60, 75, 85)
        colours = [hair_top(p, age) for age in ages]
        brightness = [c.mean() for c in colours]
        assert all(a < b for a, b in zip(brightness, brightness[1:])), brightness
        assert brightness[0] < 60 and brightness[-1] > 200, brightness  # dark at 30, white at 85
        saturation = [(c.max() - c.min()) / max(c.max(), 1) for c in colours]
        assert saturation[-1] <= saturation[0] + 0.02


def test_hair_starts_greying_only_after_the_thirties():
    p = dataclasses.replace(make_person(2), hair_colour=DARK_HAIR, recede=0.0)
    assert abs(hair_top(p, 20).mean() - hair_top(p, 30).mean()) < 3


def line_energy(person, age, size=128):
    """High-frequency energy of the forehead and cheeks, where only lines (not features) should appear."""
    image = render_face(person, age, size)
    lum = luminance(image)
    high = lum - ndimage.gaussian_filter(lum, 1.0)
    lm = face_landmarks(person, age)
    cx, a, w = lm["centre_x"], lm["face_half_width"], lm["eye_half_width"]
    eye_y = lm["eye_left"][1]
    regions = [
        (lm["hairline_y"] + 0.03, lm["brow_y"] - 0.02, cx - 0.5 * a, cx + 0.5 * a),  # forehead
        (eye_y + 0.05, lm["mouth_y"] + 0.05, cx - 0.72 * a, lm["eye_left"][0] + 0.5 * w),  # left cheek
        (eye_y + 0.05, lm["mouth_y"] + 0.05, lm["eye_right"][0] - 0.5 * w, cx + 0.72 * a),  # right cheek
    ]
    return sum(float((box(high, r, size) ** 2).sum()) for r in regions)


def test_wrinkle_line_energy_grows_from_20_to_70():
    ages = (20, 40, 55, 70)
    table = []
    for pid in range(6):
        # No fringe or beard, whose edges would dominate the measure.
        p = dataclasses.replace(make_person(pid), hair_style=0, beard=0.0)
        energy = [line_energy(p, age) for age in ages]
        assert energy[-1] > 1.8 * energy[0], (pid, energy)
        table.append(energy)
    mean = np.mean(table, axis=0)
    assert all(a < b for a, b in zip(mean, mean[1:])), mean


def test_child_proportions_differ_from_adult():
    size = 128
    for pid in range(6):
        # Light-brown hair and thin brows, so that the pupils are the darkest thing near the eyes.
        p = dataclasses.replace(make_person(pid), gender=1, hair_style=0, hair_colour=(146, 106, 68))
        rows = []
        for age in (3, 30):
            patch = luminance(render_face(p, age, size))[38:90, 36:60]
            rows.append(np.unravel_index(np.argmin(patch), patch.shape)[0])
        assert rows[0] > rows[1] + 4, rows  # a child's eyes sit lower in the frame
    # Geometry: eyes lower on the face, larger relative to it, face lengthening until ~20, then stable.
    p = make_person(0)
    lm = {age: face_landmarks(p, age) for age in (0, 3, 8, 14, 20, 30, 45)}

    def eye_height_on_face(age):
        return (lm[age]["eye_left"][1] - lm[age]["skull_top_y"]) / (lm[age]["chin_y"] - lm[age]["skull_top_y"])

    def lower_face(age):
        return (lm[age]["chin_y"] - lm[age]["eye_left"][1]) / lm[age]["face_half_width"]

    def eye_size(age):
        return lm[age]["eye_half_width"] / lm[age]["face_half_width"]

    young_to_adult = (0, 3, 8, 14, 20)
    for f, direction in ((eye_height_on_face, -1), (lower_face, 1), (eye_size, -1)):
        values = [f(age) for age in young_to_adult]
        assert all(direction * (b - a) > 0 for a, b in zip(values, values[1:])), (f.__name__, values)
        assert f(30) == pytest.approx(f(20)) and f(45) == pytest.approx(f(20))
    assert lm[3]["mouth_half_width"] < 0.75 * lm[30]["mouth_half_width"]
    assert lm[3]["nose_y"] - lm[3]["eye_left"][1] < 0.7 * (lm[30]["nose_y"] - lm[30]["eye_left"][1])


def test_sagging_lowers_the_chin_after_fifty():
    p = make_person(4)
    chin = [face_landmarks(p, age)["chin_y"] for age in (25, 45, 60, 75, 90)]
    assert chin[0] == pytest.approx(chin[1])
    assert chin[1] < chin[2] < chin[3] < chin[4]


def test_gender_cues():
    size = 128
    base = dataclasses.replace(make_person(3), hair_colour=DARK_HAIR, background=PLAIN_BACKGROUND, beard=1.0,
                               hair_style=0)
    female = render_face(dataclasses.replace(base, gender=1), 30, size)
    male = render_face(dataclasses.replace(base, gender=0), 30, size)
    assert mean_abs_diff(female, male) > 8
    # Long hair falls beside the face down to the shoulders for her, background for him.
    beside = (0.62, 0.78, 0.15, 0.2)
    assert luminance(box(female, beside, size)).mean() < luminance(box(male, beside, size)).mean() - 60
    # Coloured lips: the mouth is redder for her.
    lm = face_landmarks(base, 30)
    mouth = (lm["mouth_y"] - 0.015, lm["mouth_y"] + 0.025, 0.5 - 0.04, 0.5 + 0.04)

    def redness(image):
        patch = box(image, mouth, size).astype(np.float64)
        return float((patch[..., 0] - patch[..., 1]).mean())
    assert redness(female) > redness(male) + 10
    # A beard darkens his lower face from ~16 on, never a boy's.
    chin = (lm["chin_y"] - 0.06, lm["chin_y"] - 0.02, 0.42, 0.58)
    beardless = dataclasses.replace(base, gender=0, beard=0.0)
    assert luminance(box(male, chin, size)).mean() < luminance(box(render_face(beardless, 30, size), chin,
                                                                        size)).mean() - 15
    np.testing.assert_array_equal(render_face(dataclasses.replace(base, gender=0), 10, 64),
                                  render_face(beardless, 10, 64))


# ---------------------------------------------------------------------------------------------------------------------
# UTKFace-style folders.

UTK_JPG = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d{17})\.jpg\.chip\.jpg$")
UTK_PNG = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d{17})\.png$")


@pytest.mark.parametrize("ext, pattern", [("jpg", UTK_JPG), ("png", UTK_PNG)])
def test_write_utkface_folder(tmp_path, ext, pattern):
    n, size, seed = 14, 32, 9
    directory = os.path.join(str(tmp_path), "made", "here")
    paths = write_utkface_folder(directory, n, size, seed=seed, ext=ext)
    assert paths == sorted(paths) and len(paths) == n
    assert sorted(os.listdir(directory)) == sorted(os.path.basename(p) for p in paths)
    data = make_dataset(n, size, seed=seed)
    seen = set()
    for path in paths:
        match = pattern.match(os.path.basename(path))
        assert match, path
        age, gender, race, stamp = int(match[1]), int(match[2]), int(match[3]), match[4]
        index, person_id = int(stamp[-7:]), int(stamp[-13:-7])
        seen.add(index)
        assert (age, gender, race, person_id) == (data["ages"][index], data["genders"][index],
                                                   data["races"][index], data["person_ids"][index])
        with Image.open(path) as image:
            assert image.size == (size, size) and image.mode == "RGB"
            pixels = np.asarray(image)
        if ext == "png":
            np.testing.assert_array_equal(pixels, data["images"][index])
        else:
            assert mean_abs_diff(pixels, data["images"][index]) < 4  # JPEG quality 95
    assert seen == set(range(n))


def test_write_utkface_folder_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError):
        write_utkface_folder(str(tmp_path), 2, 16, ext="gif")
