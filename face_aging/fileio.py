"""Atomic file writes: a file appears under its final name only once it is complete, so a run killed while writing
never leaves a half-written image or options file where a finished one was."""

import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path`; on success rename it to `path`, on any error remove it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Not tempfile.mkstemp: its files are 0600, and the rename would leave every output readable by its owner only.
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}{os.path.splitext(path)[1]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
