"""The page's fields parsed and bounded (face_aging/inference/page_fields.py): what the browser or the HTTP API may
send for the face number, the target ages, the gender and the age now, and the quoting of bad values. The page
itself is driven through its server in tests/test_app.py."""

import pytest

from face_aging.inference.page_fields import (MAX_AGES, QUOTE_CHARS, PageError, parse_age_now, parse_ages, parse_face,
                                              parse_gender, quoted)


def test_quoted_keeps_at_most_the_quote_length():
    assert quoted("forty") == "'forty'" and quoted(12.5) == "12.5" and quoted(float("inf")) == "inf"
    long = quoted("7" * 1_000_000)
    assert long == "'" + "7" * (QUOTE_CHARS - 3) + "...' (1,000,000 characters)"
    assert quoted(10 ** 5000) == "a whole number of 16,610 bits"          # str() of it would refuse
    assert len(quoted(list(range(100_000)))) <= QUOTE_CHARS
    assert quoted("a\nb") == "'a\\nb'"                                   # one line, whatever was sent


@pytest.mark.parametrize("value, expected", [(None, 1), ("", 1), (2, 2), (2.0, 2), ("2", 2), (" 3 ", 3), ("+1", 1)])
def test_face_numbers(value, expected):
    assert parse_face(value, 3) == expected


@pytest.mark.parametrize("value", ["nan", "inf", float("nan"), float("inf"), "../../etc/passwd", "1.5", 1.5, True,
                                   [1], {"face": 1}, "1e309", 10 ** 400, 1e40, "9" * 20])
def test_what_is_not_a_face_number(value):
    with pytest.raises(PageError, match=r"^The face must be a face number, 1-3, got .{1,80}\.$"):
        parse_face(value, 3)


@pytest.mark.parametrize("value, count, message", [(0, 3, "There is no face 0: the photo has 3 faces, numbered 1-3 "
                                                          "left to right."),
                                                   ("4", 3, "There is no face 4: the photo has 3 faces"),
                                                   (-1, 1, "There is no face -1: the photo has 1 face.")])
def test_a_face_the_photo_lacks(value, count, message):
    with pytest.raises(PageError, match="^" + message.replace(".", r"\.")):
        parse_face(value, count)


def test_ages():
    assert parse_ages("30, 45") == [30, 45] and parse_ages("[30;45 30]") == [30, 45]
    assert parse_ages([70, 20.4, "30"]) == [70, 20, 30] and parse_ages(" 0 , 120 ") == [0, 120]
    assert parse_ages(", ".join(["5"] * 1000)) == [5]                     # the same age, once
    assert len(parse_ages(",".join(map(str, range(MAX_AGES))))) == MAX_AGES
    for value, shown in (("inf", "'inf'"), ("30, 1e309", "'1e309'"), ("nan", "'nan'"), ("121", "'121'"),
                         ("-1", "'-1'"), ({"a": 1}, "{'a': 1}"), ("thirty", "'thirty'")):
        with pytest.raises(PageError, match=f"^Target ages must be years, 0-120, separated by commas; "
                                            f"{shown.replace('{', '[{]')} is not\\.$"):
            parse_ages(value)
    with pytest.raises(PageError, match=f"^At most {MAX_AGES} target ages at a time"):
        parse_ages(",".join(map(str, range(MAX_AGES + 1))))
    for empty in ("", " , ", None, []):
        with pytest.raises(PageError, match="^Choose at least one target age"):
            parse_ages(empty)


def test_age_now_and_gender():
    assert parse_age_now("") == parse_age_now(None) == parse_age_now("  ") == "auto"
    assert parse_age_now("42") == 42 and parse_age_now(41.6) == 42 and parse_age_now("0") == 0
    for value in ("inf", "-inf", "nan", "1e309", "9" * 400, "abc", True, [1]):
        with pytest.raises(PageError, match=r"^The age now must be a number of years, got "):
            parse_age_now(value)
    for value in ("1e308", "121", "-5", 10 ** 20):
        with pytest.raises(PageError, match=r"^The age now must be 0-120 years, got "):
            parse_age_now(value)
    assert parse_gender(" Female ") == "female" and parse_gender("") is None and parse_gender(None) is None
    for value in ("other", 1, ["male"], "x" * 10 ** 6):
        with pytest.raises(PageError, match=r"^The gender must be male or female, got .{1,80}\.$"):
            parse_gender(value)
