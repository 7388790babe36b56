"""PAGAN's utkface128 recipe (docs/pagan_recipe.md): its options, the residual generator, the identity stand-in, the
held-out split, the bundled generators and the figures --eval adds for them."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from face_aging.models.pagan.config import LossWeights
from helpers import assert_frozen_identity_gives_g_gradients, call_main, parsed, synthetic_face, write_pagan_run

TINY = dict(image_size=32, gen_channels=4, res_blocks=1, head_width=1 / 16)


def applied(*args):
    from face_aging.cli.flags import apply_model_defaults
    fv = parsed(*args)
    apply_model_defaults(fv)
    return fv


# --- the recipe's options ------------------------------------------------------------------------------------

def test_the_recipe_sets_each_stages_flags_and_explicit_flags_win():
    from face_aging.errors import FlagError
    paper = applied("--model=pagan")
    assert (paper.image_size, paper.gen_channels, paper.residual_output, paper.decay_every) == (224, 32, False, 2000)
    assert paper.weights == ["0.2", "750", "0.005"] and paper.pixel_every == 5
    fv = applied("--model=pagan", "--recipe=utkface128")
    assert (fv.image_size, fv.gen_channels, fv.residual_output, fv.identity, fv.pixel_every) == (128, 16, True,
                                                                                              "caae", 1)
    assert applied("--model=pagan", "--recipe=utkface128", "--image_size=160").image_size == 160
    assert applied("--model=pagan", "--recipe=utkface128", "--noresidual_output").residual_output is False
    age = applied("--model=age", "--recipe=utkface128")
    assert (age.image_size, age.vgg_width, age.identity) == (128, 0.125, "")
    assert age.age_classifier == applied("--model=pagan", "--recipe=utkface128").age_classifier
    assert applied("--model=prepare", "--recipe=utkface128").holdout == "test"
    # The identity network's stage writes where the recipe's PAGAN stage can read it.
    network = applied("--model=identity", "--recipe=utkface128")
    assert (network.image_size, network.epoch, network.batch_size) == (96, 6, 128)
    assert network.identity == os.path.join("checkpoints", "identity_utkface128")
    assert applied("--model=identity").identity == os.path.join("checkpoints", "identity")
    # Cluster 2 (41-50) starts from the 51+ generator of the same run, for fewer iterations, against the identity
    # network with twice the colour weight; the others do not.
    c2 = applied("--model=pagan", "--recipe=utkface128", "--target_cluster=2", "--savedir=runs/p")
    assert (c2.init_generator, c2.iterations, c2.decay_every) == (os.path.join("runs/p", "cluster3"), 1500, 750)
    assert (c2.identity, c2.chroma) == (network.identity, 6.0)
    assert (fv.init_generator, fv.iterations, fv.decay_every, fv.chroma) == ("", 3000, 1500, 3.0)
    assert applied("--model=pagan", "--recipe=utkface128", "--target_cluster=2", "--identity=caae").identity == "caae"
    assert applied("--model=pagan", "--recipe=utkface128", "--target_cluster=2", "--init_generator=").init_generator \
        == ""
    with pytest.raises(FlagError, match="--recipe=utkface128 is for --model prepare or age or identity or pagan, not --model caae"):
        applied("--model=caae", "--recipe=utkface128")
    with pytest.raises(FlagError, match="is for training"):
        applied("--model=pagan", "--recipe=utkface128", "--is_train=false", "--testdir=x")


# --- the residual generator ----------------------------------------------------------------------------------

def test_a_residual_generator_starts_as_the_identity_and_learns_a_change():
    from face_aging.models.pagan.networks import PAGANGenerator
    x = tf.random.uniform([2, 32, 32, 3], -0.9, 0.9, seed=1)
    generator = PAGANGenerator(4, res_blocks=1, residual=True)
    assert np.array_equal(generator(x).numpy(), x.numpy())
    plain = PAGANGenerator(4, res_blocks=1)
    assert not np.allclose(plain(x).numpy(), x.numpy(), atol=1e-2)
    with pytest.raises(ValueError, match="residual"):
        plain.change(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(generator(x) - 0.5))
    grads = tape.gradient(loss, generator.trainable_variables)
    keras.optimizers.SGD(0.5).apply_gradients(zip(grads, generator.trainable_variables))
    change = generator.change(x).numpy()
    assert np.abs(change).max() > 1e-3                                  # it learnt to change the face
    out = generator(x).numpy()
    assert np.allclose(out, np.clip(x.numpy() + change, -1, 1), atol=1e-6)
    big = generator(tf.ones([1, 32, 32, 3]))                           # clipped to the image range
    assert float(tf.reduce_max(big)) <= 1.0


def test_resize_upsampling_replaces_the_transposed_convolutions():
    from face_aging.models.pagan.networks import PAGANGenerator
    generator = PAGANGenerator(4, res_blocks=1, upsample="resize")
    assert generator(tf.zeros([1, 32, 32, 3])).shape == (1, 32, 32, 3)
    kinds = {type(layer).__name__ for layer in generator._flatten_layers()}
    assert "Conv2DTranspose" not in kinds
    assert "Conv2DTranspose" in {type(layer).__name__ for layer in PAGANGenerator(4, res_blocks=1)._flatten_layers()}
    with pytest.raises(ValueError, match="upsample"):
        PAGANGenerator(4, upsample="bicubic")


def test_the_chroma_term_counts_colour_not_brightness():
    from face_aging.models.pagan import losses
    rng = np.random.RandomState(0)
    x = rng.uniform(-0.5, 0.5, (2, 8, 8, 3)).astype(np.float32)
    grey = x + rng.uniform(-0.3, 0.3, (2, 8, 8, 1)).astype(np.float32)      # the same change in R, G and B
    assert float(losses.chroma_loss(tf.constant(x), tf.constant(grey))) == pytest.approx(0, abs=1e-6)
    coloured = x + np.array([0.2, -0.1, 0.0], np.float32)
    delta = 127.5 * np.array([0.2, -0.1, 0.0])
    expected = np.mean([(np.array(row) @ delta) ** 2 for row in losses.CHROMA])
    assert float(losses.chroma_loss(tf.constant(x), tf.constant(coloured))) == pytest.approx(expected, rel=1e-4)
    terms = losses.pagan_losses(tf.zeros([1, 4, 1, 1]), tf.zeros([1, 4, 1, 1]), tf.zeros([1, 4, 1, 1]),
                                tf.zeros([1, 2]), tf.zeros([1, 2]), tf.constant(x[:1]), tf.constant(coloured[:1]),
                                0.0, LossWeights(chroma=2.0))
    assert float(terms["L_G"]) == pytest.approx(750 + 2.0 * expected, rel=1e-4)


@pytest.mark.slow
def test_test_mode_aligns_photos_to_the_crop_the_run_recorded(tmp_path):
    from face_aging.models.pagan.infer import face_template, load_generators
    from face_aging.training.rundir import RunDir
    write_pagan_run(str(tmp_path / "run"), (1, 2))
    assert face_template(load_generators(str(tmp_path / "run"))) == "pagan"       # the paper's loose crop
    for k in (1, 2):
        run = RunDir(str(tmp_path / "run" / f"cluster{k}"))
        run.write_options(dict(run.read_options(), template="utkface"))
    assert face_template(load_generators(str(tmp_path / "run"))) == "utkface"


# --- the identity stand-in -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_caae_encoder_stands_in_for_vgg_face_frozen_and_giving_g_gradients():
    from face_aging.models.pagan import frozen
    identity = frozen.load_identity_network(frozen.CAAE_IDENTITY)
    assert identity.image_size == 64 and not identity.trainable_variables
    face, _ = synthetic_face(1, size=64)
    other, _ = synthetic_face(7, size=64)
    faces = tf.constant(np.stack([face, other]).astype(np.float32) / 127.5 - 1)
    z = identity.descriptor(faces).numpy()
    assert z.shape == (2, 50) and np.linalg.norm(z[0] - z[1]) > 0.5
    # The code before E's tanh: E's own z is its tanh.
    assert np.allclose(np.tanh(z), identity.encoder(faces).numpy(), atol=1e-5)

    assert_frozen_identity_gives_g_gradients(identity, tf.image.resize(faces, [32, 32]).numpy())


def test_the_caae_stand_in_names_what_is_missing(tmp_path):
    from face_aging.models.pagan import frozen
    from face_aging.models.pagan.vgg_store import MissingWeightsError
    with pytest.raises(MissingWeightsError, match=f"{tmp_path}.*missing"):
        frozen.caae_identity_network(str(tmp_path))


# --- data: the held-out rule ---------------------------------------------------------------------------------

def test_prepare_with_the_holdout_rule_keeps_held_out_faces_out_of_training(tmp_path):
    from face_aging.data import holdout, prepare
    from face_aging.data.synthetic import write_utkface_folder
    write_utkface_folder(str(tmp_path / "faces"), 300, 60, seed=4)
    summary = prepare.prepare([str(tmp_path / "faces")], str(tmp_path / "out"), holdout=True)
    splits = {name: prepare.read_split(str(tmp_path / "out"), name) for name in ("train", "val", "test")}
    assert summary["split"]["holdout"] is True
    assert all(holdout.in_set(p, "test") for p in splits["test"].paths) and len(splits["test"])
    assert all(holdout.in_set(p, "val") for p in splits["val"].paths) and len(splits["val"])
    assert not any(holdout.file_fraction(p) < holdout.HELD_OUT_BELOW for p in splits["train"].paths)
    assert sum(len(s) for s in splits.values()) == summary["sources"][0]["faces"] > 250


# --- the bundled generators ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_generators_written_as_bundled_load_when_the_run_has_none(tmp_path):
    from face_aging.models.pagan import bundled
    from face_aging.models.pagan.infer import load_generators
    trained = write_pagan_run(str(tmp_path / "run"), (1, 3))
    written = bundled.write(str(tmp_path / "run"), str(tmp_path / "bundle"))
    assert len(written) == 2 and bundled.available(str(tmp_path / "bundle")) == [1, 3]
    found = load_generators(str(tmp_path / "empty"), bundled_dir=str(tmp_path / "bundle"))
    x = tf.random.uniform([1, 32, 32, 3], -1, 1)
    for k in (1, 3):
        assert np.allclose(found[k][0](x).numpy(), trained[k](x).numpy(), atol=1e-6)
    # A run directory holding its own generators still wins.
    assert sorted(load_generators(str(tmp_path / "run"), bundled_dir=str(tmp_path / "bundle"))) == [1, 3]
    assert load_generators(str(tmp_path / "run"))[1][2].startswith(str(tmp_path / "run"))


@pytest.mark.skipif(not __import__("face_aging.models.pagan.bundled", fromlist=["available"]).available(),
                    reason="no bundled PAGAN generators in this tree")
@pytest.mark.slow
def test_the_bundled_generators_age_a_rendered_face_in_test_mode(tmp_path):
    from face_aging.models.pagan import bundled
    clusters = bundled.available()
    face, _ = synthetic_face(2, size=128)
    testdir = tmp_path / "faces"
    testdir.mkdir()
    Image.fromarray(face).save(testdir / "face.png")
    savedir = tmp_path / "empty_run"
    result = call_main("--model", "pagan", "--is_train", "False", "--testdir", str(testdir), "--savedir",
                       str(savedir), "--align", "off", "--target_age", "60")
    assert result.returncode == 0, result.stderr
    assert "bundled generator pagan_utkface128/cluster3" in result.stdout
    strip = np.asarray(Image.open(savedir / "test" / "face_progression.png"), np.float64)
    assert strip.shape == (128, (1 + len(clusters)) * 128, 3)
    aged = [strip[:, 128 * k:128 * (k + 1)] for k in range(1 + len(clusters))]
    for k in range(1, 1 + len(clusters)):
        change = np.abs(aged[k] - aged[0]).mean()
        assert 0.5 < change < 40, (k, change)          # changed, and still the face
    assert (savedir / "test" / "face_age60.png").exists()
    with open(os.path.join(bundled.cluster_dir(3), "options.json")) as f:
        assert json.load(f)["residual_output"] is True


# --- --eval's added figures ----------------------------------------------------------------------------------

def test_sharpness_ratio_is_one_for_the_input_and_low_for_a_scaled_up_patch():
    from face_aging.eval import metrics
    rng = np.random.RandomState(0)
    faces = rng.randint(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    assert metrics.sharpness_ratio(faces, faces)["median"] == pytest.approx(1.0)
    small = np.stack([np.asarray(Image.fromarray(f).resize((16, 16), Image.BILINEAR)) for f in faces])
    assert metrics.sharpness_ratio(faces, small)["median"] < 0.3
    noisy = np.clip(faces.astype(int) + rng.randint(-60, 60, faces.shape), 0, 255).astype(np.uint8)
    assert metrics.sharpness_ratio(faces, noisy)["median"] > 1.0


def test_verified_below_counts_scores_on_the_accepting_side():
    from face_aging.eval import metrics
    scores = [0.3, 0.55, 0.7, np.nan]
    assert metrics.verified_below(scores, 0.6, higher_means_same=False) == dict(threshold=0.6, rate=2 / 3, n=3)
    assert metrics.verified_below(scores, 0.5, higher_means_same=False)["rate"] == pytest.approx(1 / 3)
    assert metrics.verified_below(scores, 0.5, higher_means_same=True)["rate"] == pytest.approx(2 / 3)
