"""Errors a user can act on. main.py prints them as one line (no traceback) and exits with status 1."""


class FaceAgingError(Exception):
    """Base of every error whose message tells the user what is wrong and what to do."""


USER_ERRORS = (FaceAgingError, FileNotFoundError)
