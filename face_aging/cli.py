"""Command line: the original CAAE's flags (absl), validated before any work, dispatched to the library.

Defining the flags is a function (`define_flags`), so importing this module has no side effects; `main.py` calls it.
"""

import logging
import os
import sys

from absl import flags

from face_aging.errors import USER_ERRORS

MODELS = ("caae",)
PLANNED_MODELS = ("pagan", "age")
ARCHITECTURE_FLAGS = ("image_size", "z_dim", "enc_channels", "gen_channels")
DEFAULT_INIT_CHECKPOINT = os.path.join("checkpoints", "caae", "model-init")
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


class FlagError(ValueError):
    """A flag has a bad value; the message names the flag and what is allowed."""


def define_flags(fv=flags.FLAGS):
    d = dict(flag_values=fv)
    flags.DEFINE_string("model", "caae", f"Model: {', '.join(MODELS)} ({', '.join(PLANNED_MODELS)} are planned).", **d)
    flags.DEFINE_boolean("is_train", True, "Train (True) or age the faces in --testdir (False). "
                         "'--is_train False', '--is_train=false' and '--nois_train' all select test mode.", **d)
    flags.DEFINE_integer("epoch", 50, "Number of training epochs (the total: a resumed run stops there).", **d)
    flags.DEFINE_string("dataset", "UTKFace", "A folder name under ./data (the original's convention), a path to a "
                        "folder of AGE_GENDER_RACE_*.jpg faces, or 'synthetic' for the built-in faces.", **d)
    flags.DEFINE_string("savedir", "save", "Run directory: summary/, samples/, test/, checkpoint/, options.json.", **d)
    flags.DEFINE_string("testdir", "None", "Test mode: a folder of face images (JPEG/PNG) or one image.", **d)
    flags.DEFINE_boolean("use_trained_model", True, "Continue from --savedir's checkpoint if there is one; False "
                         "trains from scratch, starting with --pretrain_epochs of plain autoencoder training.", **d)
    flags.DEFINE_boolean("use_init_model", True, "With no checkpoint in --savedir, start from --init_checkpoint "
                         "when it exists.", **d)
    flags.DEFINE_string("init_checkpoint", DEFAULT_INIT_CHECKPOINT, "An original TF1 CAAE checkpoint (prefix or "
                        "folder) to start training from, or to test with when --savedir has no checkpoint.", **d)
    flags.DEFINE_integer("image_size", 128, "Image size: a power of two >= 32 (32, 64, 128, ...).", **d)
    flags.DEFINE_integer("batch_size", 100, "Batch size.", **d)
    flags.DEFINE_integer("target_age", None, "Test mode: also write one image per input aged to this many years.", **d)
    flags.DEFINE_enum("gender", "auto", ["auto", "male", "female"], "Test mode with --target_age: the gender label; "
                      "auto reads it from UTKFace-style names (AGE_GENDER_RACE_*).", **d)
    flags.DEFINE_list("weights", ["1e-4", "0", "0"], "Loss weights w0,w1,w2 of G's adversarial term, E's adversarial "
                      "term and total variation (the original's 1e-4,0,0).", **d)
    flags.DEFINE_float("learning_rate", 2e-4, "Adam learning rate of all three optimisers.", **d)
    flags.DEFINE_float("beta1", 0.5, "Adam beta1.", **d)
    flags.DEFINE_float("decay_rate", 1.0, "Learning-rate decay every 2 epochs (staircase; 1.0 = constant).", **d)
    flags.DEFINE_integer("pretrain_epochs", 10, "Epochs of pre-training (all loss weights 0) when "
                         "--use_trained_model=False.", **d)
    flags.DEFINE_integer("z_dim", 50, "Length of z (a multiple of 10).", **d)
    flags.DEFINE_integer("enc_channels", 64, "Channels of the encoder's first convolution (doubling per layer).", **d)
    flags.DEFINE_integer("gen_channels", 1024, "Channels of the generator's 4x4 map (halving per layer).", **d)
    flags.DEFINE_integer("num_synthetic", 6000, "Faces rendered for --dataset synthetic.", **d)
    flags.DEFINE_integer("seed", 2017, "Seed of the data shuffle, the synthetic faces, the initial weights and the "
                         "z prior.", **d)
    flags.DEFINE_float("checkpoint_minutes", 10.0, "Also save a checkpoint every this many minutes of training.", **d)
    flags.DEFINE_integer("save_every_epochs", 5, "Save a checkpoint every this many epochs.", **d)
    flags.DEFINE_integer("summary_every", 1, "Write TensorBoard scalars and histograms every this many steps.", **d)


def bool_flag_names(fv=flags.FLAGS):
    return {name for name, flag in fv._flags().items() if isinstance(flag, flags.BooleanFlag)}


def normalize_bool_args(argv, bool_names):
    """Merge `--flag VALUE` into `--flag=VALUE` for boolean flags.

    absl reads `--is_train False` as `--is_train` followed by a stray argument 'False', so test mode would silently
    train (the PyTorch PAGAN reproduction shipped exactly that bug). The original TF1 code accepted the space form.
    """
    out, i = [argv[0]], 1
    while i < len(argv):
        arg = argv[i]
        name = arg.lstrip("-")
        if (arg.startswith("-") and "=" not in arg and name in bool_names and i + 1 < len(argv)
                and argv[i + 1].lower() in _TRUE + _FALSE):
            out.append(f"--{name}={argv[i + 1]}")
            i += 2
            continue
        if arg == "--":
            out.extend(argv[i:])
            break
        out.append(arg)
        i += 1
    return out


def parse_flags(argv, fv=flags.FLAGS):
    """The flags parser for absl.app.run: bool flags with a separate value, then absl's own parsing."""
    try:
        return fv(normalize_bool_args(argv, bool_flag_names(fv)))
    except flags.Error as error:
        sys.stderr.write(f"{os.path.basename(argv[0])}: error: {error}\nPass --help to see the flags.\n")
        sys.exit(2)


def _power_of_two(n):
    return n >= 32 and n & (n - 1) == 0


def validate(fv=flags.FLAGS):
    """Check every flag value before any work; FlagError names the first bad flag and what is allowed."""
    if fv.model not in MODELS:
        later = " (planned, not in this version yet)" if fv.model in PLANNED_MODELS else ""
        raise FlagError(f"--model={fv.model}{later}: allowed values are {', '.join(MODELS)}")
    if not _power_of_two(fv.image_size):
        raise FlagError(f"--image_size={fv.image_size}: must be a power of two >= 32 (32, 64, 128, 256, ...)")
    for name in ("batch_size", "epoch", "enc_channels", "gen_channels", "num_synthetic", "save_every_epochs",
                 "summary_every"):
        if fv[name].value < 1:
            raise FlagError(f"--{name}={fv[name].value}: must be a positive integer")
    if fv.pretrain_epochs < 0:
        raise FlagError(f"--pretrain_epochs={fv.pretrain_epochs}: must be 0 or more")
    if fv.z_dim < 10 or fv.z_dim % 10:
        raise FlagError(f"--z_dim={fv.z_dim}: must be a positive multiple of 10 (the age label is tiled z_dim/10 "
                        f"times)")
    layers = fv.image_size.bit_length() - 1 - 2
    if fv.gen_channels // 2 ** (layers + 1) < 1:
        raise FlagError(f"--gen_channels={fv.gen_channels}: too narrow for --image_size={fv.image_size} "
                        f"(halved {layers + 1} times); use at least {2 ** (layers + 1)}")
    try:
        weights = tuple(float(w) for w in fv.weights)
    except ValueError:
        raise FlagError(f"--weights={','.join(fv.weights)}: must be three numbers, e.g. 1e-4,0,0") from None
    if len(weights) != 3 or min(weights) < 0:
        raise FlagError(f"--weights={','.join(fv.weights)}: must be three numbers >= 0 (w0,w1,w2), e.g. 1e-4,0,0")
    if not fv.learning_rate > 0:
        raise FlagError(f"--learning_rate={fv.learning_rate}: must be > 0")
    if not 0 <= fv.beta1 < 1:
        raise FlagError(f"--beta1={fv.beta1}: must be in [0, 1)")
    if not fv.decay_rate > 0:
        raise FlagError(f"--decay_rate={fv.decay_rate}: must be > 0")
    if not fv.checkpoint_minutes > 0:
        raise FlagError(f"--checkpoint_minutes={fv.checkpoint_minutes}: must be > 0")
    if fv.target_age is not None and not 0 <= fv.target_age <= 120:
        raise FlagError(f"--target_age={fv.target_age}: must be an age in years, 0-120")
    if not fv.dataset:
        raise FlagError("--dataset is empty: give a folder name under ./data, a folder path, or 'synthetic'")
    if fv["init_checkpoint"].present and fv.init_checkpoint:
        from face_aging.caae.tf1_checkpoint import resolve_tf1_prefix  # imports TensorFlow: only when needed
        try:
            resolve_tf1_prefix(fv.init_checkpoint)
        except FileNotFoundError as error:
            raise FlagError(f"--init_checkpoint={fv.init_checkpoint}: {error}") from None
    if not fv.is_train:
        if fv.testdir in ("", "None"):
            raise FlagError("--testdir is required in test mode (--is_train False): a folder of face images")
        if not os.path.exists(fv.testdir):
            raise FlagError(f"--testdir={fv.testdir}: no such file or folder")
    return weights


def architecture_from_run(fv=flags.FLAGS):
    """Test mode: take the architecture the run in --savedir was trained with, for flags not given explicitly."""
    from face_aging.rundir import RunDir
    recorded = RunDir(fv.savedir).read_options()
    for name in ARCHITECTURE_FLAGS:
        if name in recorded and not fv[name].present and fv[name].value != recorded[name]:
            logging.info("Using --%s=%s from %s/options.json", name, recorded[name], fv.savedir)
            fv[name].value = recorded[name]


def config_from_flags(fv=flags.FLAGS):
    from face_aging.caae.model import CAAEConfig
    return CAAEConfig(image_size=fv.image_size, z_dim=fv.z_dim, enc_channels=fv.enc_channels,
                      gen_channels=fv.gen_channels, learning_rate=fv.learning_rate, beta1=fv.beta1,
                      decay_rate=fv.decay_rate, seed=fv.seed)


def _no_tensorflow_info(record):
    return record.levelno >= logging.WARNING or f"{os.sep}tensorflow{os.sep}" not in record.pathname


def run(fv=flags.FLAGS):
    """Validate, then train or test. Returns the process exit code."""
    # TensorFlow's own INFO lines (checkpoint sharding timings, ...) come through absl and drown the run's output.
    logging.getLogger("absl").addFilter(_no_tensorflow_info)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    if not fv.is_train:
        architecture_from_run(fv)
    weights = validate(fv)
    init = fv.init_checkpoint if fv.use_init_model else ""
    if fv.is_train:
        print("\n\tTraining Mode")
        from face_aging.caae.train import TrainOptions, train
        train(TrainOptions(
            savedir=fv.savedir, dataset=fv.dataset, epoch=fv.epoch, batch_size=fv.batch_size, weights=weights,
            use_trained_model=fv.use_trained_model, use_init_model=fv.use_init_model, init_checkpoint=init,
            init_checkpoint_explicit=fv["init_checkpoint"].present > 0, pretrain_epochs=fv.pretrain_epochs,
            num_synthetic=fv.num_synthetic, save_every_epochs=fv.save_every_epochs,
            checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every, config=config_from_flags(fv)))
    else:
        print("\n\tTesting Mode")
        from face_aging.caae.infer import TestOptions, run_test
        explicit_init = fv.init_checkpoint if fv["init_checkpoint"].present else ""
        if not explicit_init and os.path.exists(fv.init_checkpoint + ".index"):
            explicit_init = fv.init_checkpoint
        run_test(TestOptions(testdir=fv.testdir, savedir=fv.savedir, target_age=fv.target_age, gender=fv.gender,
                             init_checkpoint=explicit_init, config=config_from_flags(fv)))
    return 0


def main(argv):
    """absl.app.run entry point: known errors are one clear line, not a traceback."""
    if len(argv) > 1:
        sys.stderr.write(f"{os.path.basename(argv[0])}: error: unexpected argument(s) {' '.join(argv[1:])!r}; "
                         f"flags are written --name=value (booleans also --name / --noname)\n")
        return 2
    try:
        return run()
    except FlagError as error:
        sys.stderr.write(f"{os.path.basename(argv[0])}: error: {error}\n")
        return 2
    except USER_ERRORS as error:
        sys.stderr.write(f"Error: {error}\n")
        return 1
