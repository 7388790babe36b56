"""Load a checkpoint written by the original TF1 CAAE code into the Keras networks.

People who trained the original code (Zhang et al., CVPR 2017) hold TF1 Saver checkpoints whose tensors are named
after its variable scopes: `E_conv0/w`, `G_fc/b`, `D_z_bn1/moving_mean`, ... (69 of them at 128x128), next to
optimiser state (`E_conv0/w/Adam`, `beta1_power`, ...) and `global_step`. The Keras layers in `networks.py` carry
the same scope names, and their kernel layouts are the TF1 ones (conv [k,k,in,out], transposed conv [k,k,out,in],
dense [in,out]), so the mapping is name for name with no transposes:

    SCOPE/w -> layer.kernel         SCOPE/beta            -> BatchNormalization.beta
    SCOPE/b -> layer.bias           SCOPE/moving_mean     -> BatchNormalization.moving_mean
                                    SCOPE/moving_variance -> BatchNormalization.moving_variance

The original's batch norm had no gamma (scale=False), and neither do the Keras layers. The map is derived from the
built models rather than written down, so it follows whatever image size and widths the models were built with;
ORIGINAL_VARIABLES_128 is the released 128x128 checkpoint's listing, kept as the reference the derivation must meet.

Loading is all or nothing: every name and shape is checked, and every value read, before any variable is assigned,
so a wrong checkpoint leaves the models exactly as they were and the error lists everything wrong at once.
"""

import glob
import os
import re

import numpy as np
import tensorflow as tf

from face_aging.errors import FaceAgingError

__all__ = [
    "ORIGINAL_VARIABLES_128",
    "CheckpointMismatchError",
    "resolve_tf1_prefix",
    "is_tf1_checkpoint",
    "tf1_variable_map",
    "load_tf1_checkpoint",
]

# tf.train.list_variables of the original's released `model-init` checkpoint (image 128, z 50, E 64.., G 1024..).
ORIGINAL_VARIABLES_128 = {
    "E_conv0/w": (5, 5, 3, 64),
    "E_conv0/b": (64,),
    "E_conv1/w": (5, 5, 64, 128),
    "E_conv1/b": (128,),
    "E_conv2/w": (5, 5, 128, 256),
    "E_conv2/b": (256,),
    "E_conv3/w": (5, 5, 256, 512),
    "E_conv3/b": (512,),
    "E_conv4/w": (5, 5, 512, 1024),
    "E_conv4/b": (1024,),
    "E_fc/w": (16384, 50),
    "E_fc/b": (50,),
    "G_fc/w": (150, 16384),
    "G_fc/b": (16384,),
    "G_deconv0/w": (5, 5, 512, 1024),
    "G_deconv0/b": (512,),
    "G_deconv1/w": (5, 5, 256, 512),
    "G_deconv1/b": (256,),
    "G_deconv2/w": (5, 5, 128, 256),
    "G_deconv2/b": (128,),
    "G_deconv3/w": (5, 5, 64, 128),
    "G_deconv3/b": (64,),
    "G_deconv4/w": (5, 5, 32, 64),
    "G_deconv4/b": (32,),
    "G_deconv5/w": (5, 5, 16, 32),
    "G_deconv5/b": (16,),
    "G_deconv6/w": (5, 5, 3, 16),
    "G_deconv6/b": (3,),
    "D_z_fc0/w": (50, 64),
    "D_z_fc0/b": (64,),
    "D_z_fc1/w": (64, 32),
    "D_z_fc1/b": (32,),
    "D_z_fc2/w": (32, 16),
    "D_z_fc2/b": (16,),
    "D_z_fc3/w": (16, 1),
    "D_z_fc3/b": (1,),
    "D_z_bn0/beta": (64,),
    "D_z_bn0/moving_mean": (64,),
    "D_z_bn0/moving_variance": (64,),
    "D_z_bn1/beta": (32,),
    "D_z_bn1/moving_mean": (32,),
    "D_z_bn1/moving_variance": (32,),
    "D_z_bn2/beta": (16,),
    "D_z_bn2/moving_mean": (16,),
    "D_z_bn2/moving_variance": (16,),
    "D_img_conv0/w": (5, 5, 3, 16),
    "D_img_conv0/b": (16,),
    "D_img_conv1/w": (5, 5, 36, 32),
    "D_img_conv1/b": (32,),
    "D_img_conv2/w": (5, 5, 32, 64),
    "D_img_conv2/b": (64,),
    "D_img_conv3/w": (5, 5, 64, 128),
    "D_img_conv3/b": (128,),
    "D_img_bn0/beta": (16,),
    "D_img_bn0/moving_mean": (16,),
    "D_img_bn0/moving_variance": (16,),
    "D_img_bn1/beta": (32,),
    "D_img_bn1/moving_mean": (32,),
    "D_img_bn1/moving_variance": (32,),
    "D_img_bn2/beta": (64,),
    "D_img_bn2/moving_mean": (64,),
    "D_img_bn2/moving_variance": (64,),
    "D_img_bn3/beta": (128,),
    "D_img_bn3/moving_mean": (128,),
    "D_img_bn3/moving_variance": (128,),
    "D_img_fc1/w": (8192, 1024),
    "D_img_fc1/b": (1024,),
    "D_img_fc2/w": (1024, 1),
    "D_img_fc2/b": (1,),
}

# TF1 variable name inside a layer's scope -> Keras attribute. gamma is listed so that a model built with a BN
# scale would still be fully mapped (the original has none; such a model then simply fails the name check).
_DENSE_OR_CONV = (("w", "kernel"), ("b", "bias"))
_BATCH_NORM = (("beta", "beta"), ("gamma", "gamma"), ("moving_mean", "moving_mean"),
               ("moving_variance", "moving_variance"))

# Network tensors of the original, as opposed to optimiser slots (`.../w/Adam`) and counters. Used to refuse a
# checkpoint that holds layers these models lack (a deeper net, a BN with gamma) instead of dropping them silently.
_NETWORK_TENSOR = re.compile(r"^(?P<family>E|G|D_z|D_img)_[A-Za-z]+\d*/(w|b|beta|gamma|moving_mean|moving_variance)$")

_DATA_SUFFIX = re.compile(r"\.(index|meta|data-\d{5}-of-\d{5})$")


class CheckpointMismatchError(FaceAgingError, ValueError):
    """The checkpoint's tensors do not fit the models; nothing was assigned.

    `missing` lists TF1 names the models need but the checkpoint lacks, `mismatched` lists
    (name, checkpoint shape, model shape), `unexpected` lists network tensors the models have no place for.
    """

    def __init__(self, message, prefix=None, missing=(), mismatched=(), unexpected=()):
        super().__init__(message)
        self.prefix = prefix
        self.missing = list(missing)
        self.mismatched = list(mismatched)
        self.unexpected = list(unexpected)


def _prefix_from_directory(directory):
    state_file = os.path.join(directory, "checkpoint")
    if not os.path.isfile(state_file):
        found = sorted(glob.glob(os.path.join(glob.escape(directory), "*.index")))
        hint = (f"; it holds {', '.join(os.path.basename(f) for f in found[:5])}: pass the prefix instead, "
                f"e.g. {found[-1][:-len('.index')]}") if found else ""
        raise FileNotFoundError(f"TF1 checkpoint directory {directory} has no 'checkpoint' state file{hint}")
    latest = tf.train.latest_checkpoint(directory)
    if latest:
        return latest
    # The original saved under a relative './save/checkpoint/model-N' and restored by basename; a state file
    # written that way (or in a directory since moved) names a path that no longer resolves, so do as it did.
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception as error:  # a corrupt state file is a text-format parse error, not an OSError
        raise FileNotFoundError(f"cannot parse the TF1 checkpoint state file {state_file}: {error}") from error
    named = state.model_checkpoint_path if state else ""
    candidate = os.path.join(directory, os.path.basename(named)) if named else ""
    if candidate and os.path.isfile(candidate + ".index"):
        return candidate
    raise FileNotFoundError(f"the TF1 checkpoint state file {state_file} names {named or 'no checkpoint'!r}, "
                            f"but no {os.path.basename(named) or '<prefix>'}.index exists in {directory}")


def resolve_tf1_prefix(path):
    """The checkpoint prefix (the path without `.index`) of a TF1 checkpoint.

    `path` is a prefix such as `save/checkpoint/model-2360` (a `.index`, `.meta` or `.data-*` file name is accepted
    too) or a directory holding a TF1 `checkpoint` state file, which resolves to its latest checkpoint.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _prefix_from_directory(path)
    prefix = _DATA_SUFFIX.sub("", path)
    if os.path.isfile(prefix + ".index"):
        return prefix
    raise FileNotFoundError(f"no TF1 checkpoint at {path}: expected a checkpoint prefix PREFIX with a PREFIX.index "
                            f"file next to it (e.g. save/checkpoint/model-2360) or a directory holding a "
                            f"'checkpoint' state file")


def is_tf1_checkpoint(path):
    """True if `path` resolves to a checkpoint that holds the original's `E_conv0/w`."""
    try:
        return tf.train.load_checkpoint(resolve_tf1_prefix(path)).has_tensor("E_conv0/w")
    except (OSError, tf.errors.OpError, ValueError):
        return False


def _layer_variables(layer):
    from keras.layers import BatchNormalization  # keras import kept local: TF1-name helpers need no keras

    pairs = _BATCH_NORM if isinstance(layer, BatchNormalization) else _DENSE_OR_CONV
    found = {}
    for tf1_name, attribute in pairs:
        try:
            variable = getattr(layer, attribute, None)
        except (AttributeError, ValueError):  # Keras raises from some weight properties on unbuilt layers
            variable = None
        if variable is not None:
            found[f"{layer.name}/{tf1_name}"] = variable
    return found


def tf1_variable_map(encoder, generator, d_z=None, d_img=None):
    """{original TF1 variable name: the Keras variable it loads into} for the given (built) models.

    Derived from the models' layers, so it holds for any image size and width; for the default 128x128 networks
    its names and shapes are exactly ORIGINAL_VARIABLES_128. d_z / d_img may be None (only E and G mapped).
    """
    mapping = {}
    for model in (encoder, generator, d_z, d_img):
        if model is None:
            continue
        if not model.built or not model.weights:
            raise ValueError(f"model {model.name} has no weights yet: build it first (networks.build_networks)")
        covered = set()
        for layer in model.layers:
            for name, variable in _layer_variables(layer).items():
                if name in mapping:
                    raise ValueError(f"two layers map to the TF1 name {name} (second one in model {model.name})")
                mapping[name] = variable
                covered.add(id(variable))
        # Every model variable must have a TF1 name, or a "successful" load would leave it at its random init.
        unmapped = [w.path for w in model.weights if id(w) not in covered]
        if unmapped:
            raise ValueError(f"model {model.name} has variables with no TF1 counterpart: {', '.join(unmapped)}")
    return mapping


def _shape(variable):
    return tuple(int(d) for d in variable.shape)


def _architecture(shapes):
    """Settings the TF1 names and shapes imply (image_size, z_dim, enc_channels, gen_channels), where visible."""
    settings = {}
    num_enc_convs = sum(1 for n in shapes if re.fullmatch(r"E_conv\d+/w", n))
    if num_enc_convs:
        # The original's E has log2(size) - 2 stride-2 convs.
        settings["image_size"] = 2 ** (num_enc_convs + 2)
    if "E_fc/w" in shapes and len(shapes["E_fc/w"]) == 2:
        settings["z_dim"] = shapes["E_fc/w"][1]
    elif "G_fc/w" in shapes and len(shapes["G_fc/w"]) == 2:
        settings["z_dim"] = shapes["G_fc/w"][0] // 3  # z, tiled age and tiled gender are each z_dim long
    if "E_conv0/w" in shapes and len(shapes["E_conv0/w"]) == 4:
        settings["enc_channels"] = shapes["E_conv0/w"][3]
    if "G_deconv0/w" in shapes and len(shapes["G_deconv0/w"]) == 4:
        settings["gen_channels"] = shapes["G_deconv0/w"][3]
    return settings


def _hint(checkpoint_shapes, model_shapes, missing, mismatched, unexpected):
    if "E_conv0/w" not in checkpoint_shapes:
        return "It holds no E_conv0/w, so it does not look like a checkpoint of the original TF1 CAAE code."
    ours = _architecture(model_shapes)
    theirs = _architecture(checkpoint_shapes)
    differing = [key for key in ours if key in theirs and ours[key] != theirs[key]]
    if differing:
        wanted = ", ".join(f"--{key} {theirs[key]}" for key in differing)
        found = ", ".join(f"{key}={ours[key]}" for key in differing)
        return f"Likely cause: the checkpoint was trained with {wanted}, but these models have {found}."
    if missing and not mismatched and not unexpected:
        if all(name.startswith("D_") for name in missing):
            return ("It lacks discriminator weights: to generate or test with it, load only the encoder and the "
                    "generator (d_z=None, d_img=None).")
        return ("Likely cause: the checkpoint is incomplete (saved with a partial var_list) or comes from a "
                "modified version of the original code.")
    return ("Likely cause: the checkpoint comes from a modified version of the original code (other layer widths "
            "or depths); the models must be built with the architecture the checkpoint was trained with.")


def _mismatch_message(prefix, missing, mismatched, unexpected, checkpoint_shapes, model_shapes):
    lines = [f"TF1 checkpoint {prefix} does not fit the models; nothing was loaded."]
    if missing:
        lines.append(f"Missing from the checkpoint ({len(missing)}):")
        lines += [f"  {name}  (model shape {model_shapes[name]})" for name in missing]
    if mismatched:
        lines.append(f"Shape mismatches ({len(mismatched)}):")
        lines += [f"  {name}: checkpoint {ckpt} vs model {model}" for name, ckpt, model in mismatched]
    if unexpected:
        lines.append(f"Network tensors the models have no layer for ({len(unexpected)}):")
        lines += [f"  {name}  (checkpoint shape {checkpoint_shapes[name]})" for name in unexpected]
    lines.append(_hint(checkpoint_shapes, model_shapes, missing, mismatched, unexpected))
    return "\n".join(lines)


def load_tf1_checkpoint(path, encoder, generator, d_z=None, d_img=None):
    """Load an original-code TF1 checkpoint into built Keras models; returns its global_step (None if absent).

    `path` is a prefix or a checkpoint directory (see resolve_tf1_prefix). Every tensor the given models need is
    checked for presence and shape first; on any problem CheckpointMismatchError lists all of them and no variable
    is touched. d_z / d_img may be None (test mode needs only E and G). Optimiser slots and other extras are ignored.
    """
    prefix = resolve_tf1_prefix(path)
    reader = tf.train.load_checkpoint(prefix)
    checkpoint_shapes = {name: tuple(int(d) for d in shape)
                         for name, shape in reader.get_variable_to_shape_map().items()}
    mapping = tf1_variable_map(encoder, generator, d_z, d_img)
    model_shapes = {name: _shape(variable) for name, variable in mapping.items()}

    missing = [name for name in mapping if name not in checkpoint_shapes]
    mismatched = [(name, checkpoint_shapes[name], model_shapes[name]) for name in mapping
                  if name in checkpoint_shapes and checkpoint_shapes[name] != model_shapes[name]]
    # Only the scopes of the models being loaded count: D tensors are legitimately left over in test mode.
    families = ("E", "G") + (("D_z",) if d_z is not None else ()) + (("D_img",) if d_img is not None else ())
    unexpected = sorted(name for name in checkpoint_shapes
                        if name not in mapping and (m := _NETWORK_TENSOR.match(name))
                        and m.group("family") in families)
    if missing or mismatched or unexpected:
        raise CheckpointMismatchError(
            _mismatch_message(prefix, missing, mismatched, unexpected, checkpoint_shapes, model_shapes),
            prefix=prefix, missing=missing, mismatched=mismatched, unexpected=unexpected)

    if not glob.glob(glob.escape(prefix) + ".data-*"):
        raise FileNotFoundError(f"TF1 checkpoint {prefix}: {prefix}.index is present but its data file(s) "
                                f"{os.path.basename(prefix)}.data-?????-of-????? are not; copy them next to it")
    # Read everything before assigning anything, so a damaged data file cannot leave the models half-loaded.
    values = {}
    for name, variable in mapping.items():
        try:
            values[name] = np.asarray(reader.get_tensor(name), dtype=variable.dtype)
        except tf.errors.OpError as error:
            raise OSError(f"TF1 checkpoint {prefix}: cannot read tensor {name}: {error.message}") from error
    for name, variable in mapping.items():
        variable.assign(values[name])

    if reader.has_tensor("global_step"):
        return int(reader.get_tensor("global_step"))
    return None
