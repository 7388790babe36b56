"""Errors a user can act on. main.py prints them as one line (no traceback) and exits with status 1."""


class FaceAgingError(Exception):
    """Base of every error whose message tells the user what is wrong and what to do."""


class FlagError(ValueError):
    """A command-line flag has a bad value; the message names the flag and what is allowed (exit status 2)."""


USER_ERRORS = (FaceAgingError, FileNotFoundError)
