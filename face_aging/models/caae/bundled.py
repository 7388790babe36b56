"""The CAAE this package ships: E and G trained here with the aging recipe on UTKFace (face_aging/pretrained/).

Test mode, --eval and --export use it when the run directory has no checkpoint of its own and no original TF1
checkpoint is given or present, so a fresh clone ages photos without training. Its MODEL_CARD.md says how it was
made, what it was measured to do and where it fails.
"""

import json
import os

from face_aging.models.caae.config import CAAEConfig

NAME = "caae_utkface64"
# face_aging/pretrained/NAME: the package's data, beside its code
DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pretrained",
                         NAME)
PREFIX = os.path.join(DIRECTORY, "model")
OPTIONS = os.path.join(DIRECTORY, "options.json")
CARD = os.path.join(DIRECTORY, "MODEL_CARD.md")


def available():
    return os.path.exists(PREFIX + ".index") and os.path.exists(OPTIONS)


def architecture():
    """{image_size, z_dim, enc_channels, gen_channels} of the bundled model."""
    with open(OPTIONS) as f:
        recorded = json.load(f)
    return {name: recorded[name] for name in CAAEConfig.ARCHITECTURE}


def residual():
    """The residual aging strength (caae/residual.py) test mode uses with the bundled model unless --residual
    says otherwise: the one chosen on the held-out val faces, recorded as _test_residual in its options.json."""
    with open(OPTIONS) as f:
        return float(json.load(f).get("_test_residual", 0.0))


def describe():
    a = architecture()
    return (f"the bundled model {NAME} ({a['image_size']}x{a['image_size']}, trained on UTKFace with the aging "
            f"recipe; see {card_path()})")


def card_path():
    """MODEL_CARD.md as a user finds it (fileio.shown_path)."""
    from face_aging.fileio import shown_path
    return shown_path(CARD)


def write(savedir, directory=DIRECTORY, test_residual=0.0):
    """Make a run's latest checkpoint the bundled model: E and G only (no discriminators, no optimiser state) as
    DIRECTORY/model.*, and the run's options.json beside them with `test_residual` (see residual()). For
    maintainers: `python -m face_aging.models.caae.bundled SAVEDIR [STRENGTH]`. Returns the prefix written."""
    import tensorflow as tf
    from face_aging.models.caae.model import AgingModel
    from face_aging.training.rundir import RunDir
    run = RunDir(savedir)
    recorded = run.read_options()
    latest = tf.train.latest_checkpoint(run.checkpoint)
    if not latest or not recorded:
        raise FileNotFoundError(f"{savedir} has no checkpoint or no options.json")
    model = AgingModel(CAAEConfig(**{name: recorded[name] for name in CAAEConfig.ARCHITECTURE}))
    model.weights_checkpoint().restore(latest).expect_partial().assert_existing_objects_matched()
    os.makedirs(directory, exist_ok=True)
    checkpoint = model.weights_checkpoint()
    checkpoint.save_counter  # created, so that test mode's restore of E and G alone matches every object it holds
    prefix = checkpoint.write(os.path.join(directory, "model"))
    from face_aging.models.caae.model import checkpoint_value
    recorded["_test_residual"] = float(test_residual)
    recorded["_bundled_from"] = f"{os.path.basename(latest)} of {savedir} (step {checkpoint_value(latest, 'step')})"
    with open(os.path.join(directory, "options.json"), "w") as f:
        json.dump(recorded, f, indent=2, sort_keys=True)
        f.write("\n")
    return prefix


if __name__ == "__main__":
    import sys
    print(write(sys.argv[1], test_residual=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
