"""The age-and-gender estimator this package ships (face_aging/pretrained/estimator_utkface96/): trained here on
UTKFace's training faces with `python main.py --model estimator --is_train` (its defaults are this model's
settings), measured on the held-out test faces; MODEL_CARD.md beside it says how, with what result and where it
fails.

`load(savedir)` is what test mode, the page and --eval use: a run directory's own estimator when it has one, else
this one.
"""

import json
import os

NAME = "estimator_utkface96"
# face_aging/pretrained/NAME: the package's data, beside its code
DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pretrained",
                         NAME)
CARD = os.path.join(DIRECTORY, "MODEL_CARD.md")


def prefix(directory=DIRECTORY):
    return os.path.join(directory, "estimator")


def available(directory=DIRECTORY):
    return os.path.exists(prefix(directory) + ".index") and os.path.exists(os.path.join(directory, "options.json"))


def card_path():
    """MODEL_CARD.md as a user finds it (fileio.shown_path)."""
    from face_aging.fileio import shown_path
    return shown_path(CARD)


def _read_options(directory):
    with open(os.path.join(directory, "options.json")) as f:
        return json.load(f)


def _restore(recorded, checkpoint_path):
    import tensorflow as tf
    from face_aging.models.estimator import network
    model = network.build(int(recorded["image_size"]), int(recorded["width"]))
    tf.train.Checkpoint(model=model).restore(checkpoint_path).expect_partial().assert_existing_objects_matched()
    return model


class EstimatorUnavailable(FileNotFoundError):
    """No estimator in the run directory and none bundled."""


def load(savedir=None, directory=DIRECTORY):
    """(model, where it came from): SAVEDIR's own estimator run when it has a checkpoint, else the bundled one."""
    import tensorflow as tf
    if savedir:
        checkpoint_dir = os.path.join(savedir, "checkpoint")
        latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
        options = os.path.join(savedir, "options.json")
        if latest and os.path.exists(options):
            with open(options) as f:
                recorded = json.load(f)
            if recorded.get("model") == "estimator":
                return _restore(recorded, latest), latest
    if not available(directory):
        raise EstimatorUnavailable(f"No age-and-gender estimator: {directory} holds none (train one with python "
                                   f"main.py --model estimator --is_train)")
    where = (f"the bundled estimator {NAME} ({card_path()})" if directory == DIRECTORY else prefix(directory))
    return _restore(_read_options(directory), prefix(directory)), where


def write(savedir, directory=DIRECTORY, figures=None):
    """Make a run's latest checkpoint the bundled estimator: the network alone (no optimiser state) as
    DIRECTORY/estimator.*, and the run's options.json with where it came from and `figures` (its held-out test
    figures). For maintainers: `python -m face_aging.models.estimator.bundled SAVEDIR`. Returns the prefix written."""
    import tensorflow as tf
    checkpoint_dir = os.path.join(savedir, "checkpoint")
    latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    if not latest:
        raise FileNotFoundError(f"{checkpoint_dir}: no estimator checkpoint to bundle")
    recorded = _read_options(savedir)
    model = _restore(recorded, latest)
    os.makedirs(directory, exist_ok=True)
    checkpoint = tf.train.Checkpoint(model=model)
    checkpoint.save_counter  # created, so that a restore of the network alone matches every object written
    written = checkpoint.write(prefix(directory))
    recorded["_bundled_from"] = f"{os.path.basename(latest)} of {savedir}"
    if figures:
        recorded["_test_figures"] = figures
    with open(os.path.join(directory, "options.json"), "w") as f:
        json.dump(recorded, f, indent=2, sort_keys=True)
        f.write("\n")
    return written


if __name__ == "__main__":
    import sys
    print(write(sys.argv[1]))
