"""The run directory users know from the original CAAE: summary/, samples/, test/, checkpoint/, plus options.json,
which records how the run was made so that test mode can rebuild the same model without repeating flags."""

import json
import os
import platform
import sys
import time

from face_aging.fileio import atomic_write

SUBDIRS = ("summary", "samples", "test", "checkpoint")
OPTIONS_FILE = "options.json"
SKIPPED_FILE = "skipped_files.txt"   # the input files a run left out, and why


class RunDir:
    def __init__(self, root):
        self.root = root

    def __getattr__(self, name):
        if name in SUBDIRS:
            return os.path.join(self.root, name)
        raise AttributeError(name)

    def make(self):
        for sub in SUBDIRS:
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        return self

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def read_options(self):
        """The options of the last run written here, or {} if there is none."""
        try:
            with open(self.path(OPTIONS_FILE)) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise ValueError(f"{self.path(OPTIONS_FILE)} is unreadable ({error}); remove it or fix it") from None

    def write_options(self, options):
        """options.json: the run's options, the command line, versions and the time, written atomically."""
        import numpy
        import tensorflow as tf
        import keras
        record = dict(options)
        record["_command"] = " ".join(sys.argv)
        record["_started"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        record["_versions"] = {"python": platform.python_version(), "tensorflow": tf.__version__,
                               "keras": keras.__version__, "numpy": numpy.__version__}
        write_text_atomic(self.path(OPTIONS_FILE), json.dumps(record, indent=2, sort_keys=True) + "\n")


def cluster_run(savedir, cluster):
    """PAGAN's run of one target cluster's generator: SAVEDIR/clusterK, itself in this layout."""
    return RunDir(os.path.join(savedir, f"cluster{cluster}"))


def write_text_atomic(path, text):
    with atomic_write(path, "w") as f:
        f.write(text)
