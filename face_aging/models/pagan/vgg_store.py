"""How a VGG16 of this package is stored (phi_age, a converted VGG-Face): DIR/NAME, a TF checkpoint of the model,
beside DIR/NAME.json, its architecture and where it came from."""

import glob
import json
import os
import shutil
import uuid

from face_aging.errors import FaceAgingError
from face_aging.fileio import atomic_write
from face_aging.models.pagan.vgg import VGG16


class WeightsError(FaceAgingError):
    """A VGG-Face source (or converted) file cannot be read, or does not hold the expected network."""


class MissingWeightsError(FaceAgingError):
    """A converted VGG-Face file PAGAN needs is not there."""


def write_vgg(model, directory, name, info):
    """Write DIR/NAME (a TF checkpoint of the VGG16) and DIR/NAME.json ({"config": ..., **info}).

    The JSON is written last: a writer killed part-way leaves no JSON, which read_vgg reports as missing rather than
    loading a half-written checkpoint.
    """
    import tensorflow as tf

    prefix, json_path = os.path.join(directory, name), os.path.join(directory, name + ".json")
    os.makedirs(directory, exist_ok=True)
    staging = os.path.join(directory, f".tmp-{uuid.uuid4().hex}")
    try:
        tmp_prefix = tf.train.Checkpoint(model=model).write(os.path.join(staging, name))
        written = glob.glob(glob.escape(tmp_prefix) + ".*")
        # Retire the old files before the new ones take their names: a kill in between then leaves a missing
        # checkpoint, never new data under an old index.
        for old in [json_path, prefix + ".index"] + glob.glob(glob.escape(prefix) + ".data-*"):
            if os.path.exists(old):
                os.remove(old)
        # Data shards first, index last: the index is what makes a checkpoint exist.
        for tmp in sorted(written, key=lambda p: p.endswith(".index")):
            os.replace(tmp, prefix + tmp[len(tmp_prefix):])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with atomic_write(json_path, "w") as f:
        json.dump({"config": model.get_config(), **info}, f, indent=2)
    return prefix


def read_vgg(directory, name, fmt, missing_message, remake_command, cls=VGG16):
    """The VGG16 (or other network class `cls`: the instance-discrimination identity network) stored by write_vgg in
    DIR/NAME, frozen (trainable False), with its JSON record as `.info`.

    MissingWeightsError(missing_message(path)) if a file is missing; WeightsError naming the file if it is damaged.
    """
    import tensorflow as tf

    prefix, json_path = os.path.join(directory, name), os.path.join(directory, name + ".json")
    if not os.path.isfile(json_path):
        raise MissingWeightsError(missing_message(json_path))
    for needed in [prefix + ".index"] + ([] if glob.glob(glob.escape(prefix) + ".data-*") else
                                         [prefix + ".data-00000-of-00001"]):
        if not os.path.isfile(needed):
            raise MissingWeightsError(missing_message(needed))
    try:
        with open(json_path) as f:
            info = json.load(f)
        config = dict(info["config"])
        if info.get("format") != fmt:
            raise ValueError(f"format is {info.get('format')!r}, not {fmt!r}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"{json_path} is not a description of a {fmt} network ({error}); re-run "
                           f"`{remake_command}`") from error
    try:
        model = cls.from_config(config)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"{json_path}: its config cannot build a {cls.__name__} ({error}); re-run "
                           f"`{remake_command}`") from error
    try:
        tf.train.Checkpoint(model=model).read(prefix).assert_consumed()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise WeightsError(f"checkpoint {prefix} does not match {json_path} or is damaged ({error}); re-run "
                           f"`{remake_command}`") from error
    model.trainable = False
    model.info = info
    return model
