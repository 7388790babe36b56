"""How the identity network is stored: DIR/identity (a TF checkpoint of the network alone) beside DIR/identity.json
(its architecture, how it was trained), in the same form as phi_age and a converted VGG-Face (vgg_store.py)."""

import os

from face_aging.models.pagan.vgg_store import read_vgg, write_vgg

NAME = "identity"
FORMAT = "face_aging.instance_identity"
TRAIN_COMMAND = "python main.py --model identity --is_train --prepared_dir DIR"


def is_identity_folder(directory):
    """Whether `directory` holds what save() writes (PAGAN's --identity takes it as its identity network)."""
    return os.path.isfile(os.path.join(directory, NAME + ".json"))


def save(model, directory, info):
    return write_vgg(model, directory, NAME, {"format": FORMAT, **info})


def _missing(path):
    return (f"The identity network is missing: {path} does not exist. Train it with: {TRAIN_COMMAND}; nothing is "
            f"downloaded.")


def load(directory):
    """The stored network, frozen, its record as .info (MissingWeightsError / WeightsError naming the file)."""
    from face_aging.models.identity.network import InstanceIdentity
    return read_vgg(directory, NAME, FORMAT, _missing, TRAIN_COMMAND, cls=InstanceIdentity)
