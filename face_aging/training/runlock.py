"""One training per run directory: the same command started twice must not have two processes writing one `save/`
(each would delete the other's checkpoints and half-written files as stale).

A training holds an exclusive `fcntl.flock` on SAVEDIR/.training.lock for as long as it runs. The kernel releases it
when the process ends, however it ends (SIGKILL included), so a lock file left behind never blocks the next run:
only a live process holds the lock. The file also says who holds it (pid, host, start time, command), for the message
the second run gets. Test mode, eval and export take no lock: reading a run that is training is allowed.
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time

from face_aging.errors import FaceAgingError

LOCK_FILE = ".training.lock"


class RunDirInUseError(FaceAgingError):
    """Another live process is training in this run directory."""


def _holder(fd):
    """What the lock file says about the process that holds it (best effort: it may be mid-write)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 1 << 16).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def training_lock(run_root, what="training"):
    """Hold the run directory `run_root` for this process while the block runs; RunDirInUseError at once (no waiting)
    if another process holds it."""
    os.makedirs(run_root, exist_ok=True)
    path = os.path.join(run_root, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # not O_TRUNC: the holder's record must survive our attempt
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _holder(fd)
            who = f"process {holder['pid']}" if "pid" in holder else "another process"
            if holder.get("host") and holder["host"] != socket.gethostname():
                who += f" on {holder['host']}"
            since = f", since {holder['started']}" if holder.get("started") else ""
            command = f" ({holder['command']})" if holder.get("command") else ""
            raise RunDirInUseError(
                f"Run directory {run_root} is in use: {who} is training there{since}{command}. Two trainings in one "
                f"run directory would overwrite each other's checkpoints. Wait for it to end or stop it, or pass "
                f"another --savedir. (Test mode may read a run while it trains.)") from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                  "command": " ".join(sys.argv), "what": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        try:
            yield
        finally:
            # The record goes before the lock does; the file itself stays (removing it could race with a new holder).
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
