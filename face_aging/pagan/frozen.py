"""PAGAN's two frozen networks, from checkpoints/: phi_age (the age classifier the user trains) and the identity network
(VGG-Face, converted from its public weights). A missing file is an error that names it and the command that makes
it; nothing is downloaded.

Both are VGG16 instances stored the same way (vgg_store.py): DIR/NAME (a TF checkpoint of the model) beside
DIR/NAME.json (its architecture and where it came from).
"""


import keras

from face_aging.pagan.config import AGE_CLASSIFIER_DIR, VGG_FACE_DIR, PAGANConfig
from face_aging.pagan.vgg import VGG16, scaled_channels
from face_aging.pagan.vgg_store import read_vgg, write_vgg

AGE_CLASSIFIER_NAME = "age_classifier"
VGG_FACE_NAME = "vgg_face"
VGG_FACE_FORMAT = "face_aging.vgg_face"
IMPORT_COMMAND = "python main.py --model import --source PATH/TO/vgg_face.mat"
RANDOM_IDENTITY = "random"
AGE_COMMAND = "python main.py --model age --is_train --prepared_dir DIR"
AGE_FORMAT = "face_aging.age_classifier"


def _age_missing(path):
    return (f"The age classifier phi_age is missing: {path} does not exist. Train it with: {AGE_COMMAND} "
            f"(after python main.py --model prepare --dataset ... --prepared_dir DIR); nothing is downloaded.")


def save_age_classifier(model, directory, info):
    return write_vgg(model, directory, AGE_CLASSIFIER_NAME, {"format": AGE_FORMAT, **info})


def load_age_classifier(directory=AGE_CLASSIFIER_DIR):
    return read_vgg(directory, AGE_CLASSIFIER_NAME, AGE_FORMAT, _age_missing, AGE_COMMAND)


def random_identity_network(image_size, seed):
    """A small randomly initialised VGG16 standing in for VGG-Face (for trying the pipeline without the weights):
    its descriptor still ties G(x) to x, but it knows nothing about faces."""
    keras.utils.set_random_seed(seed)
    size = min(image_size, 64) // 32 * 32
    # Inputs scaled to about unit range (as a VGG-16 trained from scratch here sees them): with VGG-Face's 0-255
    # range, random He-initialised layers give descriptors in the hundreds and an identity term thousands of times
    # larger than the adversarial one.
    model = VGG16(num_classes=16, image_size=size, channels=scaled_channels(1 / 8), fc_units=256,
                  input_scale=1 / 127.5, name="random_identity")
    model.trainable = False
    model.info = {"source": "random (no VGG-Face)", "seed": seed}
    return model


def load_identity_network(source=VGG_FACE_DIR, image_size=224, seed=PAGANConfig.seed):
    """VGG-Face from `source` (a folder written by `--model import`), or `random` for random_identity_network."""
    if source == RANDOM_IDENTITY:
        return random_identity_network(image_size, seed)
    model = load_vggface(source)
    model.trainable = False
    return model


def _vggface_missing(path):
    return (f"VGG-Face weights not found: {path} is missing. PAGAN's identity loss needs them, converted once "
            f"from the public VGG-Face release (nothing is downloaded): run `{IMPORT_COMMAND}` (vgg_face.mat or "
            f"vgg-face.mat from the MatConvNet release; vgg_face_dag.pth works too where torch is installed).")


def load_vggface(directory=VGG_FACE_DIR):
    """The converted VGG-Face network from `directory`, frozen (trainable False).

    MissingWeightsError (with the import command) if the conversion is not there; WeightsError if it is damaged.
    """
    return read_vgg(directory, VGG_FACE_NAME, VGG_FACE_FORMAT, _vggface_missing, IMPORT_COMMAND)
