"""Export a trained model as TensorFlow SavedModels that need nothing of this package to run (`--export DIR`): the
model's Ager writes its graphs (caae/serving.py: one SavedModel at DIR; pagan/serving.py: DIR/clusterK/ for every
trained generator), this module the rest.

The images are face crops already (UTKFace-style chips for CAAE, eye-aligned crops for PAGAN), all of one size in
a batch, any size: the graph centre-crops a non-square batch to a square and resizes it to the model size S
(bilinear, antialiased) and scales it to [-1, 1] exactly as the package's own read path does
(face_aging.data.pipeline.decode_and_resize), and turns the model's [-1, 1] output into uint8 as
face_aging.images.to_uint8 does. DIR/export.json records
the signatures, the image size, the age groups and the checkpoint exported; DIR/README.txt says how to use it.

The export is written into DIR.tmp-export and renamed to DIR once complete. An existing DIR is replaced only when it
is empty or a previous export (it has an export.json written here); anything else is refused.
"""

import json
import os
import shutil
import time

import tensorflow as tf

from face_aging.errors import FaceAgingError

EXPORT_FILE = "export.json"
EXPORT_FORMAT = "face_aging-savedmodel"
TEMP_SUFFIX = ".tmp-export"


class ExportError(FaceAgingError, RuntimeError):
    """The export cannot be written; the message names the folder and what to do."""


def destination_problem(path):
    """None if `path` may be written (absent, an empty folder or a previous export), else the reason it may not."""
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        return "exists and is not a folder"
    if not os.listdir(path) or _is_previous_export(path):
        return None
    return (f"is a folder that is not empty and not a previous export (no {EXPORT_FILE} of format "
            f"{EXPORT_FORMAT!r}); give a new folder or remove it")


def _is_previous_export(path):
    try:
        with open(os.path.join(path, EXPORT_FILE)) as f:
            return json.load(f).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


README = """\
TensorFlow SavedModel exported by face_aging ({model}); loading it needs TensorFlow only.

    import tensorflow as tf
{usage}

Images: uint8 RGB in [0, 255], [N, H, W, 3], a batch of face crops of one size, any size (a non-square batch is
centre-cropped; every image is resized to {size} inside the graph).
See export.json for the details.
"""


def _write_json(path, record):
    with open(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")


def _replace(tmp, path):
    """Move the finished export at `tmp` to `path`, replacing an empty folder or a previous export there."""
    old = None
    if os.path.lexists(path):
        old = path + ".old-export"
        if os.path.lexists(old):
            shutil.rmtree(old)
        os.rename(path, old)
    os.rename(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _write(path, build):
    """Run build(tmp_folder) -> record, write export.json and move the folder to `path` (see the module docstring)."""
    path = os.path.normpath(path)
    problem = destination_problem(path)
    if problem:
        raise ExportError(f"--export {path} {problem}")
    tmp = path + TEMP_SUFFIX
    if os.path.lexists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    try:
        record = build(tmp)
        record.update(format=EXPORT_FORMAT, exported=time.strftime("%Y-%m-%d %H:%M:%S %z"),
                      tensorflow=tf.__version__)
        _write_json(os.path.join(tmp, EXPORT_FILE), record)
        _replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def export(ager, path):
    """Write `ager`'s model as SavedModel(s) at `path` (see the module docstring); returns what was written, as the
    console says it."""
    said = []

    def build(tmp):
        parts = ager.export(tmp, path)
        with open(os.path.join(tmp, "README.txt"), "w") as f:
            f.write(README.format(model=parts.title, usage=parts.usage, size=parts.size))
        said.append(parts.said)
        return dict(parts.record)
    _write(path, build)
    return said[0]
