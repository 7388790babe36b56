"""Atomic file writes: a file appears under its final name only once it is complete, so a run killed while writing
never leaves a half-written image or options file where a finished one was.

The temporary files are named `.tmp-*` beside the target; a run killed mid-write leaves one behind, which no reader
takes for an output (the name is hidden and not the target's) and `remove_stale_temp_files` clears at the next start.
A full disk (or a file-size limit) is a `DiskFullError` naming the file, not a traceback.
"""

import contextlib
import errno
import os
import uuid

from face_aging.errors import FaceAgingError

TEMP_PREFIX = ".tmp-"
# ENOSPC: no space left on device; EFBIG: over the file-size limit (ulimit -f); EDQUOT: over the disk quota.
DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e is not None)


def printable(path):
    """`path` as text that can always be printed and written as UTF-8: bytes of a file name that are not UTF-8
    (os.listdir gives them as surrogate escapes) are shown as \\xNN, as `ls -b` does."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def link_problem(path):
    """The reason a symbolic link cannot be followed (a loop, or a missing target), else None."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop (too many levels of symbolic links)"
        if error.errno == errno.ENOENT:
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return f"broken symbolic link (its target {printable(target)!r} does not exist)"
        return f"cannot be read ({error.strerror or error})"
    return None


class DiskFullError(FaceAgingError, OSError):
    """A file could not be written for lack of space (or over a size limit or quota); the message names it."""

    def __init__(self, message, code=None, filename=None):
        super().__init__(message)
        self.errno, self.filename = code, filename

    def __str__(self):
        return self.args[0]


def is_disk_full(error):
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path`; on success rename it to `path`, on any error remove it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Not tempfile.mkstemp: its files are 0600, and the rename would leave every output readable by its owner only.
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}{os.path.splitext(path)[1]}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name is: a crash never leaves an empty file
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.remove(tmp)
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            raise DiskFullError(f"Could not write {path}: {error.strerror or error} (the disk is full, or the file "
                                f"is over a size limit or quota); a file already under that name is unchanged",
                                error.errno, path) from error
        raise


def remove_stale_temp_files(folder):
    """Remove the `.tmp-*` files an interrupted atomic_write left in `folder` (not in its subfolders); returns
    their paths. Call it only where no other process is writing."""
    removed = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        if name.startswith(TEMP_PREFIX) and os.path.isfile(path):
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def shown_path(path):
    """`path` as a user finds it in a message: relative to the working directory when it lies below it (a clone run
    from its root), else absolute (an installed package lies elsewhere; on Windows it may even be on another drive,
    where relpath fails)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith(os.pardir) else relative
