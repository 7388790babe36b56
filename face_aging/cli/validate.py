"""The command line's checks: every flag value is checked before any work, and a bad one is a FlagError naming the
flag and what is allowed."""

import os

from absl import flags

from face_aging import quiet
from face_aging.models.caae.config import image_size_problem as caae_image_size_problem
from face_aging.cli.flags import AGING_MODELS, MODELS
from face_aging.errors import FlagError
from face_aging.fileio import link_problem
from face_aging.models.pagan.config import image_size_problem as pagan_image_size_problem


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
    _validate_serve(fv)
    _validate_test_outputs(fv)
    if fv.output_size < 16:
        raise FlagError(f"--output_size={fv.output_size}: must be at least 16 (pixels a side)")
    _validate_residual(fv)
    training = fv.is_train and not fv.eval and not fv.export
    if fv["strategy"].present and fv.strategy != "default" and not (fv.model in ("caae", "pagan") and training):
        raise FlagError(f"--strategy={fv.strategy}: only CAAE and PAGAN training (--model caae|pagan --is_train) are "
                        f"distributed")
    if (fv["precision"].present and fv.precision != "float32" or fv.xla) and not (
            fv.model in ("caae", "pagan") and training):
        raise FlagError("--precision and --xla apply to training (--model caae or pagan with --is_train); test mode, "
                        "--eval and --export always run float32")
    if fv.model == "combined" and fv.is_train and not (fv.eval or fv.serve or fv.export is not None):
        raise FlagError("--model combined does not train: it ages with the CAAE and PAGAN of --savedir (or the bundled "
                        "ones); train them with --model caae and --model pagan into that --savedir")
    if fv.model in ("caae", "combined"):
        return _validate_caae(fv)
    if fv.model == "prepare":
        if not fv.dataset or fv.dataset == "UTKFace" and not fv["dataset"].present:
            raise FlagError("--model prepare needs --dataset: one or more comma-separated sources (a CACD "
                            "celebrity2000_meta.mat or its folder, an FG-NET folder, a MORPH CSV, a UTKFace-style "
                            "folder, or a folder with young/ elder1/ elder2/ elder3/ val/ test/)")
        if not 0 <= fv.val_fraction < 1:
            raise FlagError(f"--val_fraction={fv.val_fraction}: must be in [0, 1)")
        return None
    if fv.model == "estimator":
        return _validate_estimator(fv)
    if fv.model == "identity":
        return _validate_identity(fv)
    if fv.model == "import":
        if not fv.source:
            raise FlagError("--model import needs --source: the path of vgg_face.mat (MatConvNet) or "
                            "vgg_face_dag.pth")
        if not os.path.lexists(fv.source):
            raise FlagError(f"--source={fv.source}: no such file")
        return None
    problem = pagan_image_size_problem(fv.image_size)
    if problem:
        raise FlagError(f"--image_size={fv.image_size}: {problem}")
    _positive(fv, "batch_size", "summary_every", "gen_channels", "iterations", "sample_every", "save_every", "epoch",
              "fc_units", "val_limit", "pixel_every")
    if not fv.learning_rate > 0:
        raise FlagError(f"--learning_rate={fv.learning_rate}: must be > 0")
    for name in ("head_width", "vgg_width"):
        if not fv[name].value > 0:
            raise FlagError(f"--{name}={fv[name].value}: must be > 0")
    if fv.model == "age":
        return None
    if fv.target_cluster not in (1, 2, 3) and not (fv.is_train and fv.target_cluster == 0):
        raise FlagError(f"--target_cluster={fv.target_cluster}: allowed values are 1 (31-40), 2 (41-50), 3 (51+)"
                        + "; in training also 0 (a generator that makes faces younger)")
    for name in ("source_ages", "target_ages"):
        _age_range(fv, name)
    if fv.res_blocks < 0:
        raise FlagError(f"--res_blocks={fv.res_blocks}: must be 0 or more")
    _positive(fv, "decay_every")
    if not fv.chroma >= 0:
        raise FlagError(f"--chroma={fv.chroma}: must be 0 (off) or more")
    if not fv.fine >= 0:
        raise FlagError(f"--fine={fv.fine}: must be 0 (off) or more")
    if not fv.estimator_age >= 0:
        raise FlagError(f"--estimator_age={fv.estimator_age}: must be 0 (off) or more")
    if not 0 < fv.estimator_target <= 100:
        raise FlagError(f"--estimator_target={fv.estimator_target}: must be an age in years, above 0 and at most 100")
    if not 0 <= fv.beta1 < 1:
        raise FlagError(f"--beta1={fv.beta1}: must be in [0, 1)")
    if not fv.is_train or fv.eval:
        _validate_testdir(fv)
    if fv.eval_pairs < 1:
        raise FlagError(f"--eval_pairs={fv.eval_pairs}: must be a positive integer")
    return _parse_weights(fv, "lambda_pixel,lambda_adv,lambda_identity", "0.20,750,0.005")


def _age_range(fv, name):
    """--source_ages / --target_ages: empty, or LO,HI whole years with 0 <= LO <= HI."""
    value = fv[name].value
    if not value:
        return ()
    try:
        lo, hi = (int(v) for v in value)
    except ValueError:
        lo = hi = None
    if lo is None or not 0 <= lo <= hi:
        raise FlagError(f"--{name}={','.join(value)}: expected LO,HI in whole years with 0 <= LO <= HI, e.g. 20,30")
    return lo, hi


def _validate_identity(fv):
    if not fv.is_train or fv.eval:
        raise FlagError("--model identity only trains (--is_train); PAGAN reads the network with --identity "
                        f"{fv.identity or 'FOLDER'}")
    if fv.image_size < 16:
        raise FlagError(f"--image_size={fv.image_size}: the identity network needs at least 16 pixels")
    if fv.identity in ("", "caae", "random"):
        raise FlagError(f"--identity={fv.identity!r}: with --model identity it is the folder the trained network is "
                        f"written to")
    _positive(fv, "batch_size", "summary_every", "epoch")
    if fv.batch_size < 2:
        raise FlagError(f"--batch_size={fv.batch_size}: instance discrimination needs at least 2 faces a batch (the "
                        f"other faces are each view's negatives)")
    if not fv.learning_rate > 0:
        raise FlagError(f"--learning_rate={fv.learning_rate}: must be > 0")
    return None


def _validate_estimator(fv):
    if fv.eval:
        _validate_testdir(fv)
    elif not fv.is_train:
        raise FlagError("--model estimator trains (--is_train) or is measured (--eval --testdir DIR); test mode of "
                        "--model caae or pagan asks it about faces by itself")
    if fv.image_size < 16:
        raise FlagError(f"--image_size={fv.image_size}: the estimator needs at least 16 pixels")
    _positive(fv, "batch_size", "summary_every", "epoch", "estimator_width")
    if not fv.learning_rate > 0:
        raise FlagError(f"--learning_rate={fv.learning_rate}: must be > 0")
    if not 0 <= fv.estimator_texture <= 1:
        raise FlagError(f"--estimator_texture={fv.estimator_texture}: a share of the training views, from 0 to 1")
    return None


def parse_ages(fv=flags.FLAGS):
    """--ages as a list of ints (validated by _validate_test_outputs)."""
    return [int(a) for a in fv.ages]


def _validate_test_outputs(fv):
    """--export, and test mode's --ages, --gif, --paste_back, --align (and PAGAN's --target_age)."""
    test_only = [name for name in ("ages", "gif", "paste_back", "align", "side_by_side", "detect_every")
                 if fv[name].present]
    if fv.export is not None:
        if fv.model not in ("caae", "pagan"):
            raise FlagError(f"--export: only --model caae or pagan exports a SavedModel, not --model {fv.model}"
                            + (" (export its two models one by one)" if fv.model == "combined" else ""))
        if not fv.export:
            raise FlagError("--export is empty: give the folder to write the SavedModel to")
        if fv.eval:
            raise FlagError("--export and --eval: choose one (--export writes a SavedModel and does nothing else)")
        if test_only:
            raise FlagError(f"--{test_only[0]} is for test mode (--is_train False), not --export")
        quiet.start_tensorflow()
        from face_aging.inference.export import destination_problem
        problem = destination_problem(fv.export)
        if problem:
            raise FlagError(f"--export={fv.export}: {problem}")
        return
    if test_only and fv.model in AGING_MODELS and (fv.is_train or fv.eval):
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
    if fv.detect_every < 1:
        raise FlagError(f"--detect_every={fv.detect_every}: must be a positive number of frames")
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


def _validate_serve(fv):
    """--serve, --port, --host: the page serves a trained model (CAAE or PAGAN), with Gradio installed."""
    if not fv.serve:
        given = [name for name in ("port", "host") if fv[name].present]
        if given:
            raise FlagError(f"--{given[0]} is for --serve (the web page)")
        return
    if fv.model not in AGING_MODELS:
        raise FlagError(f"--serve: only --model {', '.join(AGING_MODELS)} has a page, not --model {fv.model}")
    other = [name for name in ("eval", "export", "testdir") if fv[name].present]
    if other or fv["is_train"].present and fv.is_train:
        raise FlagError(f"--serve and --{(other or ['is_train'])[0]}: choose one (--serve serves a trained model and "
                        f"does nothing else)")
    if not 0 <= fv.port <= 65535:
        raise FlagError(f"--port={fv.port}: must be a port number, 1-65535 (0: any free port)")
    if not fv.host:
        raise FlagError("--host is empty: give an address to listen on, e.g. 127.0.0.1")
    # The page's module reads photos with TensorFlow: started first, without its notices (imported here, it printed
    # them, twice).
    quiet.start_tensorflow()
    from face_aging.inference.app import require_gradio
    require_gradio()


def _validate_residual(fv):
    if fv["input_age"].present:
        parse_input_age(fv)
        if fv.model not in AGING_MODELS or (fv.is_train and not fv.eval):
            raise FlagError("--input_age is for test mode (--is_train False) and --eval of --model caae, pagan or "
                            "combined: the faces' age now, where their aging starts")
        if fv.model != "caae" and fv.input_age == "estimate":
            raise FlagError(f"--input_age=estimate is the CAAE's (its closest reconstruction); --model {fv.model} "
                            f"takes auto or an age in years")
    if not fv["residual"].present:
        return
    parse_residual(fv)
    if fv.model not in ("caae", "combined"):
        raise FlagError(f"--residual is CAAE's (--model caae or combined), not --model {fv.model}'s")
    if fv.is_train and not fv.eval and fv.export is None and not fv.serve:
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
    if fv.export is not None and not fv.eval or fv.serve:
        return  # --export and --serve read no --testdir
    if fv.testdir in ("", "None"):
        raise FlagError("--testdir is required in test mode (--is_train False) and with --eval: a folder of face "
                        "images")
    if not os.path.exists(fv.testdir):
        raise FlagError(f"--testdir={fv.testdir}: {link_problem(fv.testdir) or 'no such file or folder'}")


def _validate_caae(fv):
    problem = caae_image_size_problem(fv.image_size)
    if problem:
        raise FlagError(f"--image_size={fv.image_size}: {problem}")
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
        quiet.start_tensorflow()
        from face_aging.models.caae.tf1_checkpoint import resolve_tf1_prefix  # imports TensorFlow: only when needed
        try:
            resolve_tf1_prefix(fv.init_checkpoint)
        except FileNotFoundError as error:
            raise FlagError(f"--init_checkpoint={fv.init_checkpoint}: {error}") from None
    if not fv.is_train or fv.eval:
        _validate_testdir(fv)
    if fv.eval_pairs < 1:
        raise FlagError(f"--eval_pairs={fv.eval_pairs}: must be a positive integer")
    return weights
