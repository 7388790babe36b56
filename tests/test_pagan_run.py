"""PAGAN as a user runs it: prepare data, train phi_age, train a generator, resume it, age faces; and the errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from helpers import call_main

TINY_PAGAN = ["--image_size=32", "--gen_channels=4", "--res_blocks=1", "--head_width=0.0625", "--batch_size=4"]


@pytest.fixture(scope="module")
def prepared(pagan_prepared):
    """160 synthetic faces (all four clusters) prepared through main.py (conftest's pagan_prepared)."""
    return pagan_prepared


@pytest.fixture(scope="module")
def age_classifier(prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("age")
    result = call_main("--model", "age", "--is_train", "--prepared_dir", str(prepared), "--savedir", str(root / "run"),
                       "--age_classifier", str(root / "phi_age"), "--image_size=32", "--vgg_width=0.0625",
                       "--fc_units=8", "--batch_size=16", "--epoch=2")
    assert result.returncode == 0, result.stderr
    assert "Epoch 2: validation accuracy" in result.stdout
    return root


def test_stream_resumes_where_it_stopped():
    from face_aging.models.pagan.data import stream_indices
    whole = stream_indices(13, 4, seed=5, start_step=0, end_step=20)
    assert np.array_equal(stream_indices(13, 4, seed=5, start_step=7, end_step=20), whole[7:])
    # Every face once per pass over the data, in a new order each pass.
    flat = whole.reshape(-1)
    assert sorted(flat[:13]) == list(range(13)) and sorted(flat[13:26]) == list(range(13))
    assert not np.array_equal(flat[:13], flat[13:26])


def _weights_by_hand(counts):
    """Inverse frequency with mean 1 over the faces: each present cluster's faces weigh n / present in all."""
    counts = np.asarray(counts, np.float64)
    present = np.count_nonzero(counts)
    return [counts.sum() / (present * c) if c else 0.0 for c in counts]


def test_class_weights_are_inverse_frequency_with_mean_one():
    from face_aging.models.pagan.age_classifier import class_weights
    clusters = np.array([0] * 6 + [1] * 3 + [3] * 1)           # cluster 2 absent
    weights = class_weights(clusters)
    np.testing.assert_allclose(weights, [10 / 18, 10 / 9, 0.0, 10 / 3], rtol=1e-6)
    np.testing.assert_allclose(weights, _weights_by_hand(np.bincount(clusters, minlength=4)), rtol=1e-6)
    assert weights[clusters].mean() == pytest.approx(1.0)
    np.testing.assert_allclose(class_weights(np.arange(8) % 4), np.ones(4))


def test_phi_age_step_weights_each_face_by_its_cluster():
    """The training loss is the mean of each face's cross-entropy times its own cluster's weight (numpy here)."""
    import tensorflow as tf
    from face_aging.models.pagan.age_classifier import AgeClassifierTrainer
    from face_aging.models.pagan.config import AgeOptions
    weights = np.array([0.5, 1.0, 2.0, 4.0], np.float32)
    trainer = AgeClassifierTrainer(AgeOptions(image_size=32, width=0.0625, fc_units=8), weights,
                                   from_vgg_face=False)
    # Dropout off, so that the step's logits are the ones computed here.
    trainer.model.drop6.rate = trainer.model.drop7.rate = 0.0
    images, _ = _coloured_faces(8, np.random.default_rng(1))
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 3], np.int32)
    logits = trainer.model(images, training=False).numpy().astype(np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected = np.mean(-log_p[np.arange(8), labels] * weights[labels])
    loss, _ = trainer.train_step(tf.constant(images), tf.constant(labels))
    assert float(loss) == pytest.approx(expected, rel=1e-4)


# One colour per cluster, plus pixel noise: a set any working classifier separates, rendered here.
COLOURS = np.array([(0.8, -0.6, -0.6), (-0.6, 0.8, -0.6), (-0.6, -0.6, 0.8), (0.6, 0.6, 0.6)], np.float32)


def _coloured_faces(count, rng):
    labels = np.arange(count) % 4
    images = COLOURS[labels][:, None, None, :] + rng.normal(0.0, 0.2, (count, 32, 32, 3))
    return np.clip(images, -1, 1).astype(np.float32), labels.astype(np.int32)


@pytest.mark.slow
def test_phi_age_learns_a_separable_set():
    """A few steps of phi_age's own training step take it from chance to clearly above it on held-out faces."""
    import tensorflow as tf
    from face_aging.models.pagan.age_classifier import AgeClassifierTrainer, class_weights
    from face_aging.models.pagan.config import AgeOptions
    rng = np.random.default_rng(0)
    images, labels = _coloured_faces(64, rng)
    held_out, truth = _coloured_faces(32, rng)
    # Narrower than 0.25 (4 channels) often starts with every ReLU of pool5 dead and never learns.
    trainer = AgeClassifierTrainer(AgeOptions(image_size=32, width=0.25, fc_units=16, learning_rate=3e-4),
                                   class_weights(labels), from_vgg_face=False)
    before = np.mean(trainer.predict(held_out).numpy() == truth)
    for _ in range(100):
        batch = rng.permutation(len(images))[:16]
        trainer.train_step(tf.constant(images[batch]), tf.constant(labels[batch]))
    after = np.mean(trainer.predict(held_out).numpy() == truth)
    assert after >= 0.5 and after >= before + 0.25, (before, after)   # chance is 0.25


@pytest.mark.slow
def test_age_classifier_run_and_export(prepared, age_classifier):
    from face_aging.data import prepare
    from face_aging.models.pagan.frozen import load_age_classifier
    root = age_classifier
    info = json.loads((root / "phi_age" / "age_classifier.json").read_text())
    assert info["config"]["num_classes"] == 4 and info["config"]["image_size"] == 32
    assert info["config"]["input_scale"] == pytest.approx(1 / 127.5)     # from scratch: inputs of about unit range
    figures = info["validation"]
    assert info["epoch"] in (1, 2) and figures["num_faces"] == len(prepare.read_split(str(prepared), "val"))
    assert figures["balanced_accuracy"] == pytest.approx(np.mean(list(figures["per_cluster"].values())))
    # The run trained with the class weights of its own training split's counts.
    counts = np.bincount(prepare.read_split(str(prepared), "train").clusters, minlength=4)
    options = json.loads((root / "run" / "options.json").read_text())
    np.testing.assert_allclose(options["class_weights"], _weights_by_hand(counts), rtol=1e-5)
    model = load_age_classifier(str(root / "phi_age"))
    assert model.trainable is False
    assert os.listdir(root / "run" / "summary") and (root / "run" / "options.json").exists()
    # The same command again: nothing left to do, the run is not redone.
    result = call_main("--model", "age", "--is_train", "--prepared_dir", "/nonexistent", "--savedir",
                       str(root / "run"), "--image_size=32")
    assert result.returncode == 1 and "/nonexistent" in result.stderr and "--model prepare" in result.stderr


@pytest.mark.slow
def test_pagan_train_resume_and_test_mode(prepared, age_classifier, tmp_path):
    savedir = tmp_path / "pagan"
    common = ["--model", "pagan", "--prepared_dir", str(prepared), "--age_classifier",
              str(age_classifier / "phi_age"), "--identity", "random", "--savedir", str(savedir), *TINY_PAGAN]
    result = call_main(*common, "--is_train", "--target_cluster", "2", "--iterations", "6", "--sample_every", "3",
                       "--save_every", "3")
    assert result.returncode == 0, result.stderr
    assert "RANDOMLY INITIALISED" in result.stderr
    run = savedir / "cluster2"
    for path in ("samples/000003.png", "samples/000006.png", "test/000006.png", "test/input.png", "options.json",
                 "checkpoint/model-6.index", "checkpoint/model-3.index"):
        assert (run / path).exists(), path
    options = json.loads((run / "options.json").read_text())
    assert options["target_cluster"] == 2 and options["weights"] == {"pixel": 0.2, "adversarial": 750.0,
                                                                     "identity": 0.005, "pixel_every": 5,
                                                                     "pixel_scale": 127.5, "chroma": 0.0,
                                                                     "estimator": 0.0, "estimator_target": 70.0,
                                                                     "fine": 0.0}
    # The recipe's options are off by default (the paper's generator and crop), and recorded.
    assert (options["residual_output"], options["upsample"], options["template"], options["recipe"]) == (
        False, "deconv", "pagan", "none")
    assert options["learning_rate"] == 1e-4 and options["batch_size"] == 4
    assert Image.open(run / "samples" / "000006.png").size == (4 * 32, 2 * 32)   # inputs over outputs
    import tensorflow as tf
    tags = set()
    for event_file in tf.io.gfile.glob(str(run / "summary" / "*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(v.tag for v in event.summary.value)
    assert {"L_D", "L_G", "L_G_age", "L_ide", "L_pix", "learning_rate", "samples", "test"} <= tags

    # Resumed under tf.distribute (one replica here): a one-device checkpoint restores into mirrored variables.
    result = call_main(*common, "--is_train", "--target_cluster", "2", "--iterations", "8", "--strategy", "mirrored")
    assert result.returncode == 0, result.stderr
    assert "Precision float32, 1 replica(s) of 4 pairs" in result.stdout
    assert f"Resumed from {run}/checkpoint/model-6 (iteration 6)" in result.stdout
    assert tf.train.latest_checkpoint(str(run / "checkpoint")).endswith("model-8")

    testdir = tmp_path / "faces"
    testdir.mkdir()
    for i in range(3):
        Image.fromarray(np.random.RandomState(i).randint(0, 255, (50, 40, 3), np.uint8)).save(testdir / f"me{i}.jpg")
    # Noise, not faces, and not square: --align off uses them as they are (auto would find no face in them).
    result = call_main("--model", "pagan", "--is_train", "False", "--testdir", str(testdir), "--savedir", str(savedir),
                       "--align", "off")
    assert result.returncode == 0, result.stderr
    assert "No generator for cluster(s) 1, 3" in result.stderr
    strip = Image.open(savedir / "test" / "me0_progression.png")
    assert strip.size == (2 * 40, 40)                    # the input, then cluster 2, at the images' own 40 px
    assert Image.open(savedir / "test" / "overview.png").size == (2 * 32, 3 * 32)     # the overview: model size
    # The strip's second face is the generator's change on the 32-px input, carried to the 40-px image.
    from face_aging.models.pagan.infer import load_generators
    from face_aging.inference.fullres import carry_change
    from face_aging.inference.testmode import load_test_images
    generator = load_generators(str(savedir))[2][0]
    faces, _ = load_test_images(str(testdir), 32)
    fulls, _ = load_test_images(str(testdir), 40)
    from face_aging.images import to_uint8
    expected = to_uint8(carry_change(fulls[0], faces[0], generator(faces[:1], training=False).numpy()[0]))
    assert np.abs(np.asarray(strip)[:, 40:].astype(int) - expected).max() <= 1


@pytest.mark.slow
def test_the_recipe_trains_with_its_options_recorded(prepared, age_classifier, tmp_path):
    """--recipe utkface128 through main.py (sizes made tiny by explicit flags, which win): the CAAE encoder as the
    identity network, the residual generator, and every option of the recipe in options.json."""
    savedir = tmp_path / "pagan"
    result = call_main("--model", "pagan", "--is_train", "--recipe", "utkface128", "--target_cluster", "1",
                       "--prepared_dir", str(prepared), "--age_classifier", str(age_classifier / "phi_age"),
                       "--savedir", str(savedir), *TINY_PAGAN, "--iterations", "2", "--sample_every", "2")
    assert result.returncode == 0, result.stderr
    assert "identity from CAAE encoder" in result.stdout and "RANDOMLY" not in result.stderr
    options = json.loads((savedir / "cluster1" / "options.json").read_text())
    assert options["recipe"] == "utkface128" and options["identity"] == "caae"
    assert (options["residual_output"], options["upsample"], options["template"], options["decay_every"]) == (
        True, "resize", "utkface", 1500)
    assert options["weights"]["chroma"] == 3.0 and options["weights"]["pixel_every"] == 1
    assert options["image_size"] == 32 and options["gen_channels"] == 4          # explicit flags win


def test_a_generator_that_makes_faces_younger_trains_on_older_inputs(prepared, age_classifier, tmp_path):
    """--target_cluster 0: G's inputs are the faces of 31 and over (narrowed by --source_ages), D's real faces the
    young ones (narrowed by --target_ages); the run lives in SAVEDIR/cluster0 and records both ranges."""
    from face_aging.data import prepare
    from face_aging.models.pagan import data as pdata
    train = prepare.read_split(str(prepared), "train")
    inputs, targets = pdata.pair_paths(train, 0, "train", (41, 120), (16, 30))
    ages = dict(zip(train.paths, train.ages))
    assert inputs and targets and all(41 <= ages[p] for p in inputs) and all(16 <= ages[p] <= 30 for p in targets)
    assert len(inputs) == int(np.sum(train.ages >= 41)) and len(targets) == int(np.sum((train.ages >= 16) &
                                                                                        (train.ages <= 30)))
    with pytest.raises(pdata.PAGANDataError, match="no target faces .* aged 200-300.*--target_ages"):
        pdata.pair_paths(train, 0, "train", (), (200, 300))
    savedir = tmp_path / "pagan"
    result = call_main("--model", "pagan", "--is_train", "--target_cluster", "0", "--source_ages", "41,120",
                       "--target_ages", "16,30", "--prepared_dir", str(prepared), "--age_classifier",
                       str(age_classifier / "phi_age"), "--identity", "random", "--savedir", str(savedir),
                       *TINY_PAGAN, "--iterations", "2", "--sample_every", "2")
    assert result.returncode == 0, result.stderr
    assert f"Data: {len(inputs)} faces of 31 and over to make younger, {len(targets)} young faces" in result.stdout
    options = json.loads((savedir / "cluster0" / "options.json").read_text())
    assert (options["target_cluster"], options["source_ages"], options["target_ages"]) == (0, [41, 120], [16, 30])
    assert (savedir / "cluster0" / "test" / "input.png").exists()
    assert any(name.startswith("model-2") for name in os.listdir(savedir / "cluster0" / "checkpoint"))


@pytest.mark.slow
def test_a_generator_can_start_from_another_clusters(prepared, age_classifier, tmp_path):
    """--init_generator: cluster 2's G starts as cluster 1's (the recipe's remedy for 41-50's few faces); D, the step
    and the optimiser start afresh; another architecture is refused, naming the flag and the difference."""
    import tensorflow as tf
    from face_aging.models.pagan.infer import load_generators
    savedir = tmp_path / "pagan"
    common = ["--model", "pagan", "--is_train", "--prepared_dir", str(prepared), "--age_classifier",
              str(age_classifier / "phi_age"), "--identity", "random", "--savedir", str(savedir), *TINY_PAGAN]
    assert call_main(*common, "--target_cluster", "1", "--iterations", "2").returncode == 0
    # A learning rate too small to move a weight: what cluster 2 saves after one step is what it started from.
    result = call_main(*common, "--target_cluster", "2", "--iterations", "1", "--learning_rate", "1e-12",
                       "--init_generator", str(savedir / "cluster1"))
    assert result.returncode == 0, result.stderr
    assert f"Generator started from {savedir}/cluster1/checkpoint/model-2" in result.stdout
    generators = load_generators(str(savedir))
    x = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=5)
    out1, out2 = (generators[k][0](x, training=False).numpy() for k in (1, 2))
    assert np.abs(out1 - out2).max() < 1e-5
    assert json.loads((savedir / "cluster2" / "options.json").read_text())["init_generator"] == str(
        savedir / "cluster1")
    # Without it, cluster 3 starts from its own random weights.
    assert call_main(*common, "--target_cluster", "3", "--iterations", "1", "--learning_rate",
                     "1e-12").returncode == 0
    out3 = load_generators(str(savedir))[3][0](x, training=False).numpy()
    assert np.abs(out1 - out3).max() > 1e-2

    wider = [a if a != "--gen_channels=4" else "--gen_channels=8" for a in common]
    result = call_main(*wider, "--target_cluster", "1", "--iterations", "1", "--savedir", str(tmp_path / "wide"),
                       "--init_generator", str(savedir / "cluster1"))
    assert result.returncode != 0
    assert f"--init_generator {savedir}/cluster1" in result.stderr and "gen_channels 4 (this run: 8)" in result.stderr
    result = call_main(*common, "--target_cluster", "1", "--iterations", "1", "--savedir", str(tmp_path / "other"),
                       "--init_generator", str(tmp_path / "nowhere"))
    assert result.returncode != 0 and "no checkpoint in" in result.stderr
    # A bundled generator's folder (the generator alone, as face_aging/pretrained/ holds it) starts a run too.
    from face_aging.models.pagan import bundled
    bundled.write(str(savedir), str(tmp_path / "bundled"))
    result = call_main(*common, "--target_cluster", "2", "--iterations", "1", "--learning_rate", "1e-12",
                       "--savedir", str(tmp_path / "from_bundled"), "--init_generator", str(tmp_path / "bundled" /
                                                                                         "cluster1"))
    assert result.returncode == 0, result.stderr
    assert f"Generator started from {tmp_path}/bundled/cluster1/generator;" in result.stdout
    out = load_generators(str(tmp_path / "from_bundled"))[2][0](x, training=False).numpy()
    assert np.abs(out1 - out).max() < 1e-5


def test_missing_judges_name_the_file_and_the_command(prepared, tmp_path):
    result = call_main("--model", "pagan", "--is_train", "--prepared_dir", str(prepared), "--age_classifier",
                       str(tmp_path / "none"), "--savedir", str(tmp_path / "run"), *TINY_PAGAN)
    assert result.returncode == 1
    assert str(tmp_path / "none" / "age_classifier.json") in result.stderr and "--model age" in result.stderr


def test_missing_vgg_face_names_the_import_command(prepared, random_phi_age, tmp_path):
    result = call_main("--model", "pagan", "--is_train", "--prepared_dir", str(prepared), "--age_classifier",
                       str(random_phi_age), "--identity", str(tmp_path / "vgg"), "--savedir",
                       str(tmp_path / "run"), *TINY_PAGAN)
    assert result.returncode == 1
    assert str(tmp_path / "vgg") in result.stderr and "--model import" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("--model=pagan", "--target_cluster=4"), "--target_cluster=4: allowed values are 1"),
    (("--model=pagan", "--target_cluster=0", "--is_train=false"), "--target_cluster=0: allowed values are 1"),
    (("--model=pagan", "--target_cluster=0", "--target_ages=30,20"), "--target_ages=30,20: expected LO,HI"),
    (("--model=pagan", "--source_ages=41"), "--source_ages=41: expected LO,HI"),
    (("--model=pagan", "--image_size=100"), "--image_size=100: must be a multiple of 32"),
    (("--model=pagan", "--is_train=false"), "--testdir is required"),
    (("--model=pagan", "--iterations=0"), "--iterations=0"),
    (("--model=pagan", "--weights=1,2"), "lambda_pixel,lambda_adv,lambda_identity"),
    (("--model=pagan", "--chroma=-1"), "--chroma=-1.0: must be 0 (off) or more"),
    (("--model=pagan", "--fine=-2"), "--fine=-2.0: must be 0 (off) or more"),
    (("--model=pagan", "--decay_every=0"), "--decay_every=0: must be a positive integer"),
    (("--model=pagan", "--upsample=bicubic"), "--upsample"),
    (("--model=caae", "--recipe=utkface128"), "--recipe=utkface128 is for --model prepare or age or identity or pagan"),
    (("--model=age", "--batch_size=-1"), "--batch_size=-1"),
    (("--model=prepare",), "--model prepare needs --dataset"),
    (("--model=import",), "--model import needs --source"),
    (("--model=import", "--source=/no/vgg_face.mat"), "--source=/no/vgg_face.mat: no such file"),
])
def test_pagan_flags_are_rejected_before_any_work(args, message, tmp_path):
    result = call_main(*args, "--savedir", str(tmp_path / "run"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_imported_vgg_face_initialises_phi_age_and_judges_identity(prepared, tmp_path):
    """The whole chain with a VGG-Face file in MatConvNet's format: import, phi_age from it, PAGAN judged by it."""
    from helpers import random_network, write_matconvnet
    source = write_matconvnet(str(tmp_path / "vgg_face.mat"), random_network(size=32), "simplenn-net", size=32)
    result = call_main("--model", "import", "--source", source, "--identity", str(tmp_path / "vgg_face"))
    assert result.returncode == 0, result.stderr
    assert "VGG-Face, 32px input, 5 classes" in result.stdout
    result = call_main("--model", "age", "--is_train", "--prepared_dir", str(prepared), "--savedir",
                       str(tmp_path / "age"), "--age_classifier", str(tmp_path / "phi_age"), "--identity",
                       str(tmp_path / "vgg_face"), "--image_size=32", "--vgg_width=0.0625", "--fc_units=16",
                       "--batch_size=16", "--epoch=1")
    assert result.returncode == 0, result.stderr
    assert "Initialised 15 layers from VGG-Face" in result.stdout      # 13 convs, fc6, fc7 (not the classes)
    info = json.loads((tmp_path / "phi_age" / "age_classifier.json").read_text())
    assert info["config"]["input_scale"] == 1.0                         # VGG-Face's own input range
    result = call_main("--model", "pagan", "--is_train", "--prepared_dir", str(prepared), "--age_classifier",
                       str(tmp_path / "phi_age"), "--identity", str(tmp_path / "vgg_face"), "--savedir",
                       str(tmp_path / "pagan"), "--iterations=2", *TINY_PAGAN)
    assert result.returncode == 0, result.stderr
    assert f"identity from {source}" in result.stdout
    assert (tmp_path / "pagan" / "cluster1" / "checkpoint" / "model-2.index").exists()
