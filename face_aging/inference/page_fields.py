"""The page's fields (face_aging/inference/app.py, page_video.py), parsed and bounded: the face number, the target
ages, the gender and the age now, as the browser or the HTTP API sends them (text, numbers, anything JSON holds); and
the message a failed request shows (explain).

Every value the page cannot use is a PageError that names the field and quotes at most QUOTE_CHARS characters of
what was sent: a message is read by a person, and a megabyte of digits drawn into the page froze the browser. Numbers
must be finite: JSON as Python reads it carries Infinity, NaN and integers of any length, and float("1e309") is inf.
"""

import logging
import math
import re
import reprlib

from face_aging.data import labels as L
from face_aging.errors import FaceAgingError

QUOTE_CHARS = 50
MAX_MESSAGE = 300             # no message the page shows is longer
MAX_AGE = 120
MAX_AGES = 10                 # target ages in one request: each is a pasted photo, a face and a strip column
_SEPARATORS = re.compile(r"[,;\s]+")
_WHOLE = re.compile(r"\s*\+?(\d{1,9})\s*")


class PageError(FaceAgingError, ValueError):
    """A request the page cannot do (no face, a broken file, ...); its message is shown on the page."""


def explain(error):
    """The message a failed request shows on the page (the server keeps serving whatever went wrong), at most
    MAX_MESSAGE characters."""
    if isinstance(error, FaceAgingError):
        message = str(error)
    else:
        logging.exception("The request failed")
        message = f"Something went wrong ({type(error).__name__}: {error}); the server's log has the details."
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."


def as_sent(payload):
    """A component's preprocess that hands on the value as sent, for the parsers here: Gradio's own check quotes
    whatever was sent, however long."""
    return payload


_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = QUOTE_CHARS
_short.maxlist = _short.maxtuple = _short.maxdict = 4


def quoted(value, limit=QUOTE_CHARS):
    """`value` as a message quotes it: text in quotes, anything else as Python writes it, cut to `limit` characters
    with its full length said ("'9999...' (1,000,000 characters)")."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a whole number of {value.bit_length():,} bits"       # str() of it can take seconds, or refuse
    text = value if isinstance(value, str) else _short.repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    cut = text[:limit - 3] + "..."
    return f"{cut!r} ({len(text):,} characters)" if isinstance(value, str) else cut


def _number(value):
    """`value` as a finite float, or None (text of a number included; bools are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > 64:                      # no number a person types is longer
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:                        # an int too large for a float
        return None
    return value if math.isfinite(value) else None


def parse_face(value, count):
    """The face number (1-based, of `count` faces found) from the face menu; empty means face 1 (the menu is hidden
    when the photo has one face)."""
    if value is None or value == "":
        return 1
    number = None
    if isinstance(value, str):
        match = _WHOLE.fullmatch(value)
        number = int(match.group(1)) if match else None
    else:
        real = _number(value)
        number = int(real) if real is not None and real == int(real) and abs(real) < 1e9 else None
    if number is None:
        raise PageError(f"The face must be a face number, 1-{count}, got {quoted(value)}.")
    if not 1 <= number <= count:
        faces = "1 face" if count == 1 else f"{count} faces, numbered 1-{count} left to right"
        raise PageError(f"There is no face {number}: the photo has {faces}.")
    return number


def parse_ages(value):
    """The target ages, in years: whole numbers 0-120 (a fraction is rounded), each once, in the order given, at most
    MAX_AGES. The field's text ("30, 45", spaces or semicolons too, "[30, 45]") or a list of numbers."""
    if value is None:
        value = ""
    if isinstance(value, str):
        parts = [part for part in _SEPARATORS.split(value.strip().strip("[]")) if part]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    ages = []
    for part in parts:
        number = _number(part)
        if number is None or not 0 <= number <= MAX_AGE:
            raise PageError(f"Target ages must be years, 0-{MAX_AGE}, separated by commas; {quoted(part)} is not.")
        age = int(round(number))
        if age not in ages:
            ages.append(age)
            if len(ages) > MAX_AGES:
                raise PageError(f"At most {MAX_AGES} target ages at a time, got more.")
    if not ages:
        raise PageError("Choose at least one target age.")
    return ages


def parse_age_now(value):
    """The face's age now, where aging starts: "auto" (the estimate, or a UTKFace-style name's) when empty, else a
    whole number of years 0-120."""
    if value is None or isinstance(value, str) and not value.strip():
        return "auto"
    number = _number(value)
    if number is None:
        raise PageError(f"The age now must be a number of years, got {quoted(value)}.")
    if not 0 <= number <= MAX_AGE:
        raise PageError(f"The age now must be 0-{MAX_AGE} years, got {quoted(value)}.")
    return int(round(number))


def parse_gender(value):
    """"male" or "female" (any case), or None (empty: the estimate)."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, str) and value.strip().lower() in L.GENDER_NAMES:
        return value.strip().lower()
    raise PageError(f"The gender must be {' or '.join(L.GENDER_NAMES)}, got {quoted(value)}.")
