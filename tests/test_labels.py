"""Tests of UTKFace name parsing, CAAE's ten age groups and the -1/+1 one-hot label encoding."""

import numpy as np
import pytest

from face_aging.data.labels import (AGE_GROUP_NAMES, NUM_AGE_GROUPS, LabelError, age_to_group, group_centre_age,
                                    parse_utkface_name, plus_minus_one_hot)

# The groups as the original defines them (inclusive bounds); 71+ is open-ended.
GROUPS = ((0, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, 40), (41, 50), (51, 60), (61, 70), (71, 10_000))


def expected_group(age):
    return next(g for g, (lo, hi) in enumerate(GROUPS) if lo <= age <= hi)


# ---------------------------------------------------------------------------------------------------------------------
# Parsing names.


@pytest.mark.parametrize("name, expected", [
    ("100_0_0_20170112215240346.jpg.chip.jpg", (100, 0, 0)),
    ("1_1_4_20161221193016140.jpg.chip.jpg", (1, 1, 4)),
    ("26_1_2_20170116184024662.jpg.chip.jpg", (26, 1, 2)),
    ("116_1_0_20170120134921760.jpg.chip.jpg", (116, 1, 0)),
    ("9_0_3_20161220222856346.jpg.chip.jpg", (9, 0, 3)),
    ("35_0_1_20170117154326133.png", (35, 0, 1)),          # the synthetic set's PNG names
    ("42_1_3_20170117154326133.jpg", (42, 1, 3)),          # without the .chip suffix (the in-the-wild set)
    ("73_0_2_20170117154326133.JPG.CHIP.JPG", (73, 0, 2)),  # case does not matter
    ("18_1_4_20170117154326133.jpeg", (18, 1, 4)),
])
def test_parse_real_style_names(name, expected):
    result = parse_utkface_name(name)
    assert tuple(result) == expected
    assert all(isinstance(v, int) for v in result)


@pytest.mark.parametrize("name", [
    "39_1_20170116174525125.jpg.chip.jpg",      # real UTKFace file: the race field is missing
    "61_1_20170109142408075.jpg.chip.jpg",      # real UTKFace file: the race field is missing
])
def test_missing_field_is_rejected_and_says_how_many_fields(name):
    with pytest.raises(LabelError) as info:
        parse_utkface_name(name)
    message = str(info.value)
    assert "AGE_GENDER_RACE" in message      # says what a name should look like
    assert "3" in message and "field" in message  # and what is wrong with this one


@pytest.mark.parametrize("name", [
    "55_0_0_20170116232725357jpg.chip.jpg",     # real UTKFace file: 'jpg' without its dot
    "61_1_3_20170109150557335.jpg .chip.jpg",   # real UTKFace file: a stray space
    "24_0_1_ 20170116220224657.jpg.chip.jpg",   # a space inside the date field
    "24 _0_1_20170116220224657.jpg.chip.jpg",
    "2a_0_1_20170116220224657.jpg.chip.jpg",    # not digits
    "24_0_1_.jpg.chip.jpg",                     # empty date field
    "24_0_1_20170116220224657.gif",             # not an image type we read
    "24_0_1_20170116220224657.jpg.chip.jpg.bak",
    "._24_0_1_20170116220224657.jpg.chip.jpg",  # macOS resource fork left by unpacking the tar on a Mac
    "24_0_1_2_3_20170116220224657.jpg.chip.jpg",  # too many fields
])
def test_malformed_names_are_rejected_with_the_expected_form(name):
    with pytest.raises(LabelError) as info:
        parse_utkface_name(name)
    assert "AGE_GENDER_RACE" in str(info.value)


@pytest.mark.parametrize("name", ["", "face.jpg", "a_b.jpg"])
def test_names_with_too_few_fields_are_rejected(name):
    with pytest.raises(LabelError, match="AGE_GENDER_RACE"):
        parse_utkface_name(name)


@pytest.mark.parametrize("name, what", [
    ("30_3_0_20170116220224657.jpg.chip.jpg", "gender 3"),
    ("30_2_0_20170116220224657.jpg.chip.jpg", "gender 2"),
    ("30_0_7_20170116220224657.jpg.chip.jpg", "race 7"),
    ("30_0_5_20170116220224657.jpg.chip.jpg", "race 5"),
    ("200_0_0_20170116220224657.jpg.chip.jpg", "age 200"),
    ("999_1_1_20170116220224657.jpg.chip.jpg", "age 999"),
])
def test_impossible_values_are_rejected_naming_the_value(name, what):
    with pytest.raises(LabelError) as info:
        parse_utkface_name(name)
    assert what in str(info.value)


def test_label_error_is_a_value_error():
    # Callers that only know about ValueError (argument checking) still catch it.
    with pytest.raises(ValueError):
        parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg")


# ---------------------------------------------------------------------------------------------------------------------
# Age groups.


@pytest.mark.parametrize("age", [0, 1, 5, 6, 10, 11, 15, 16, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71, 90, 116])
def test_every_age_group_boundary(age):
    group = age_to_group(age)
    assert int(group) == expected_group(age)


def test_age_to_group_on_arrays_matches_the_table():
    ages = np.arange(0, 121)
    groups = age_to_group(ages)
    assert groups.shape == ages.shape
    assert np.issubdtype(groups.dtype, np.integer)
    np.testing.assert_array_equal(groups, [expected_group(a) for a in ages])
    # Ten groups, all used, in increasing order of age.
    assert NUM_AGE_GROUPS == 10 == len(AGE_GROUP_NAMES)
    assert sorted(set(groups.tolist())) == list(range(10))
    assert np.all(np.diff(groups) >= 0)


def test_group_names_describe_the_groups():
    for g, name in enumerate(AGE_GROUP_NAMES):
        lo = GROUPS[g][0]
        assert name.startswith(str(lo))
        if g < 9:
            assert name == f"{GROUPS[g][0]}-{GROUPS[g][1]}"
    assert AGE_GROUP_NAMES[9] == "71+"


def test_group_centre_age_lies_inside_its_group():
    for g in range(NUM_AGE_GROUPS):
        centre = group_centre_age(g)
        assert GROUPS[g][0] <= centre <= GROUPS[g][1]
        assert int(age_to_group(centre)) == g


# ---------------------------------------------------------------------------------------------------------------------
# -1/+1 one-hot.


def test_plus_minus_one_hot_has_one_plus_one_per_row_at_the_index():
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 10, size=57)
    labels = plus_minus_one_hot(indices, 10)
    assert labels.shape == (57, 10)
    assert labels.dtype == np.float32
    assert set(np.unique(labels).tolist()) == {-1.0, 1.0}
    np.testing.assert_array_equal((labels == 1.0).sum(axis=1), np.ones(57))
    np.testing.assert_array_equal(np.argmax(labels, axis=1), indices)
    for row, index in zip(labels, indices):
        expected = -np.ones(10, np.float32)
        expected[index] = 1.0
        np.testing.assert_array_equal(row, expected)


def test_plus_minus_one_hot_gender_and_every_class():
    np.testing.assert_array_equal(plus_minus_one_hot([0, 1, 1], 2), [[1, -1], [-1, 1], [-1, 1]])
    np.testing.assert_array_equal(plus_minus_one_hot(np.arange(10), 10), 2 * np.eye(10) - 1)
    # A scalar index gives one row.
    np.testing.assert_array_equal(plus_minus_one_hot(3, 4), [[-1, -1, -1, 1]])


def test_plus_minus_one_hot_of_age_groups():
    ages = [3, 8, 14, 19, 25, 35, 45, 55, 65, 80]
    labels = plus_minus_one_hot(age_to_group(ages), NUM_AGE_GROUPS)
    np.testing.assert_array_equal(labels, 2 * np.eye(10) - 1)
