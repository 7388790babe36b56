"""Loading a trained CAAE for inference (caae/ager.py ages faces with it): E and G from a run's checkpoint, an
original TF1 checkpoint or the bundled model, and the residual aging settings test mode, --eval, --export and the
page share (the strength, each face's own group)."""

import os

import numpy as np
import tensorflow as tf

from face_aging.models.caae import bundled, tf1_checkpoint
from face_aging.models.caae.model import AgingModel, checkpoint_value
from face_aging.data import labels as L
from face_aging.models.ager import AgerError
from face_aging.training.rundir import RunDir


def restore_aging_model(config, savedir, init_checkpoint=""):
    """E and G from the run's latest checkpoint, else from an original TF1 checkpoint, else the bundled model
    (face_aging.models.caae.bundled); (model, description)."""
    model = AgingModel(config)
    run = RunDir(savedir)

    def restore(prefix, misfit):
        """E and G from a checkpoint of this package; AgerError(misfit(first line of the reason)) if they do not
        fit the model asked for."""
        try:
            model.weights_checkpoint().restore(prefix).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as error:
            raise AgerError(misfit(str(error).splitlines()[0])) from None

    latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
    if latest and not tf1_checkpoint.is_tf1_checkpoint(latest):
        restore(latest, lambda why: f"Checkpoint {latest} does not fit a {config.image_size}x{config.image_size} "
                                    f"model (z_dim {config.z_dim}): {why}. Pass the --image_size it was trained with.")
        return model, f"{latest} (step {checkpoint_value(latest, 'step')})"
    source = latest or init_checkpoint
    if source:
        tf1_checkpoint.load_tf1_checkpoint(source, model.encoder, model.generator)
        return model, f"original TF1 checkpoint {source}"
    if bundled.available():
        shape = ", ".join(f"--{k} {v}" for k, v in bundled.architecture().items())
        restore(bundled.PREFIX, lambda why: f"No checkpoint in {run.checkpoint}, and the bundled model ({shape}) does "
                                            f"not fit the model asked for ({why}): drop the architecture flags to use "
                                            f"it, or train first")
        model.residual = bundled.residual()
        return model, bundled.describe()
    raise AgerError(f"No checkpoint in {run.checkpoint}: train first (python main.py --model caae --is_train "
                    f"--savedir {savedir}) or pass --init_checkpoint with an original CAAE checkpoint")


def residual_strength(option, model):
    """The residual aging strength to use: --residual when given (not None), else the one the model came with (the
    bundled model's card value; 0, G's own face, for any other)."""
    return model.residual if option is None else float(option)


def input_groups(ages, input_age):
    """Residual aging's own group of each face (int [N], -1: to be estimated from the reconstructions) from the
    faces' known ages (years, NaN where unknown) and --input_age (auto | estimate | years)."""
    ages = np.asarray(ages, np.float64)
    if input_age == "estimate":
        return np.full(len(ages), -1, np.int32)
    if input_age != "auto":
        return np.full(len(ages), L.age_to_group(int(input_age)), np.int32)
    known = np.isfinite(ages)
    return np.where(known, L.age_to_group(np.where(known, ages, 0).astype(int)), -1).astype(np.int32)


def name_age(path):
    """The age a UTKFace-style name carries, else NaN."""
    try:
        return float(L.parse_utkface_name(os.path.basename(path))[0])
    except L.LabelError:
        return float("nan")
