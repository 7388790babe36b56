"""Training on tiny synthetic data: the compiled step, the save layout, summaries, resume and pre-training."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import read_events
from face_aging.models.caae.model import CAAE
from face_aging.models.caae.config import TrainOptions
from face_aging.models.caae.train import SCALARS, train
from face_aging.training.loop import TrainingError
from face_aging.data.pipeline import FaceDataset, load_faces


def all_weights(model):
    """Every variable of the four networks (BN moving statistics included) and of the optimisers, by unique path."""
    out = {}
    for net in (model.encoder, model.generator, model.d_z, model.d_img):
        out.update({f"{net.name}/{v.path}": v.numpy() for v in net.weights})
    for name, optimizer in model.optimizers.items():
        out.update({f"{name}/{i}/{v.path}": v.numpy() for i, v in enumerate(optimizer.variables)})
    return out


@pytest.mark.slow
def test_checkpoint_restores_every_variable_and_e_g_alone(tmp_path, tiny_config):
    from face_aging.models.caae.model import AgingModel
    model = CAAE(tiny_config)
    x = tf.random.uniform([8, 32, 32, 3], -1, 1, seed=2)
    ages = tf.constant(np.where(np.eye(10)[np.arange(8)] > 0, 1.0, -1.0), tf.float32)
    genders = tf.constant(np.where(np.eye(2)[np.arange(8) % 2] > 0, 1.0, -1.0), tf.float32)
    model.train_step(x, ages, genders, tf.constant([1e-4, 0.0, 0.0]))   # moves BN statistics and Adam slots too
    path = model.checkpoint.save(str(tmp_path / "model"))
    fresh = CAAE(tiny_config)
    fresh.checkpoint.restore(path).assert_consumed()
    before, after = all_weights(model), all_weights(fresh)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # Test mode restores E and G alone, without the optimisers that also reference their variables.
    alone = AgingModel(tiny_config)
    alone.weights_checkpoint().restore(path).expect_partial().assert_existing_objects_matched()
    for net, other in ((model.encoder, alone.encoder), (model.generator, alone.generator)):
        for a, b in zip(net.weights, other.weights):
            assert a.path == b.path and np.array_equal(a.numpy(), b.numpy()), a.path


@pytest.mark.slow
def test_a_few_steps_lower_the_reconstruction_loss(tiny_config):
    faces = load_faces("synthetic", 32, num_synthetic=200)
    data = FaceDataset(faces, 32, 16, num_vis=8)
    model = CAAE(tiny_config, data.steps_per_epoch)
    weights = tf.constant([1e-4, 0.0, 0.0])
    batches = list(data.epoch(0).take(4))
    losses = []
    for _ in range(25):
        for images, ages, genders in batches:
            terms, _ = model.train_step(images, ages, genders, weights)
            losses.append(float(terms["EG_loss"]))
    assert int(model.step) == 100
    # The same four batches, first pass against last pass (from the 0.02-sd initialisation the loss stays flat for
    # ~20 steps, then falls; after 100 steps it is about 0.78 of the start).
    assert np.mean(losses[-4:]) < 0.88 * np.mean(losses[:4]), losses


@pytest.mark.slow
def test_one_step_updates_all_three_players_from_the_same_batch(tiny_config):
    """Each player's update is the one its own loss gives on this batch at the pre-update weights: Adam's first
    moment after one step is (1 - beta1) * gradient, against gradients taken here by a separate GradientTape on a
    copy of the networks, fed the same images, labels and prior sample."""
    from face_aging.models.caae import losses
    model, twin = CAAE(tiny_config), CAAE(tiny_config)
    nets = lambda m: (m.encoder, m.generator, m.d_z, m.d_img)  # noqa: E731
    for net, copy in zip(nets(model), nets(twin)):
        copy.set_weights(net.get_weights())
    x = tf.random.uniform([8, 32, 32, 3], -1, 1, seed=1)
    ages = tf.constant(np.where(np.eye(10)[np.arange(8)] > 0, 1.0, -1.0), tf.float32)
    genders = tf.constant(np.where(np.eye(2)[np.arange(8) % 2] > 0, 1.0, -1.0), tf.float32)
    # Non-zero weights for G_img, E_z and TV, so that each of E+G's terms reaches the gradient.
    weights = [1e-2, 1e-2, 1e-3]
    _, histograms = model.train_step(x, ages, genders, tf.constant(weights))
    with tf.GradientTape(persistent=True) as tape:
        z = twin.encoder(x, training=True)
        x_rec = twin.generator(z, ages, genders, training=True)
        terms = losses.caae_losses(x, x_rec, twin.d_z(z, training=True),
                                   twin.d_z(histograms["z_prior"], training=True),
                                   twin.d_img(x, ages, genders, training=True),
                                   twin.d_img(x_rec, ages, genders, training=True), weights)
    for (name, variables, key), (_, own_variables, _) in zip(twin.players, model.players):
        gradients = tape.gradient(terms[key], variables)
        moments = [v for v in model.optimizers[name].variables if "momentum" in v.path]
        assert len(moments) == len(gradients) == len(own_variables)
        # Absolute tolerance against the player's largest gradient: a bias followed by batch norm has a true
        # gradient of 0, and both computations give it as rounding noise.
        scale = max(float(np.abs(g.numpy()).max()) for g in gradients)
        for gradient, moment, variable in zip(gradients, moments, own_variables):
            np.testing.assert_allclose(moment.numpy(), (1 - tiny_config.beta1) * gradient.numpy(), rtol=1e-3,
                                       atol=1e-4 * scale, err_msg=f"{name}: {variable.path}")
    assert all(int(opt.iterations) == 1 for opt in model.optimizers.values())


def test_one_epoch_writes_the_originals_layout(trained_run):
    run = trained_run
    for sub in ("summary", "samples", "test", "checkpoint"):
        assert os.path.isdir(os.path.join(run, sub))
    # 120 faces: 24 held out for visualisation (a fifth), 96 train -> 6 batches of 16.
    sample = Image.open(os.path.join(run, "samples", "01.png"))
    assert sample.size == (5 * 32, 5 * 32)          # 24 reconstructions on a ceil(sqrt(24)) = 5 square grid
    test = Image.open(os.path.join(run, "test", "01.png"))
    assert test.size == (10 * 32, 10 * 32)           # 10 faces (columns) x 10 age groups (rows)
    assert Image.open(os.path.join(run, "test", "input.png")).size == (320, 320)
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoint")).endswith("model-6")
    options = json.load(open(os.path.join(run, "options.json")))
    assert options["image_size"] == 32 and options["batch_size"] == 16 and options["num_faces"] == 120
    events = read_events(os.path.join(run, "summary"))
    for tag in SCALARS + ("EG_learning_rate", "z", "z_prior", "D_z_logits", "D_z_prior_logits", "D_G_logits",
                          "D_input_logits", "samples", "test"):
        assert tag in events, tag
    assert [s for s, _ in events["EG_loss"]] == [1, 2, 3, 4, 5, 6]
    assert float(events["EG_learning_rate"][0][1]) == pytest.approx(2e-4)


@pytest.mark.slow
def test_a_finished_run_restarted_with_more_epochs_continues_its_step_count(trained, face_folder, tiny_config,
                                                                           tmp_path):
    # conftest's run: this command (epoch 1) trained it; `first` is the model as that training left it.
    source, first = trained
    run = shutil.copytree(source, tmp_path / "run")
    options = TrainOptions(savedir=str(run), dataset=face_folder, epoch=1, batch_size=16, config=tiny_config)
    assert int(first.step) == 6
    saved = all_weights(first)
    again = train(options)                                   # nothing left to do: the same step, no new files
    assert int(again.step) == 6 and not os.path.exists(run / "samples" / "02.png")
    restored = all_weights(again)
    assert saved.keys() == restored.keys() and len(saved) > 40
    assert all(np.array_equal(saved[k], restored[k]) for k in saved), [k for k in saved
                                                                     if not np.array_equal(saved[k], restored[k])]
    more = train(TrainOptions(**{**options.__dict__, "epoch": 2}))
    assert int(more.step) == 12
    assert os.path.exists(run / "samples" / "02.png")
    steps = [s for s, _ in read_events(str(run / "summary"))["EG_loss"]]
    assert steps == list(range(1, 13))


@pytest.mark.slow
def test_pretraining_then_training_from_the_pretrained_weights(tmp_path, face_folder, tiny_config):
    options = TrainOptions(savedir=str(tmp_path), dataset=face_folder, epoch=1, batch_size=16, config=tiny_config,
                           use_trained_model=False, pretrain_epochs=2, checkpoint_minutes=1e-9, max_to_keep=100)
    model = train(options)
    assert int(model.step) == 18 and int(model.pretrain_epochs) == 2
    names = sorted(os.listdir(tmp_path / "samples"))
    assert names == ["01.png", "pretrain_01.png", "pretrain_02.png"]
    # The main phase starts from the pre-trained weights: one Adam step (about lr = 2e-4 per weight) away from the
    # end of pre-training, not a fresh 0.02-sd initialisation as in the original.
    reader = {step: tf.train.load_checkpoint(str(tmp_path / "checkpoint" / f"model-{step}")) for step in (12, 13)}
    key = "generator/fc/_kernel/.ATTRIBUTES/VARIABLE_VALUE"
    jump = np.abs(reader[13].get_tensor(key) - reader[12].get_tensor(key)).max()
    assert 0 < jump < 2e-3
    # The same from-scratch command after the run finished is that run, not a clash.
    assert int(train(options).step) == 18
    with pytest.raises(TrainingError, match="another run"):
        train(TrainOptions(**{**options.__dict__, "pretrain_epochs": 3}))


def test_checkpoint_of_another_image_size_is_a_clear_error(trained_run, face_folder, tmp_path):
    from face_aging.models.caae.config import CAAEConfig
    shutil.copytree(trained_run, tmp_path / "run")
    options = TrainOptions(savedir=str(tmp_path / "run"), dataset=face_folder, epoch=2, batch_size=16,
                           config=CAAEConfig(image_size=64, enc_channels=8, gen_channels=64))
    with pytest.raises(TrainingError, match="does not fit"):
        train(options)


def test_age_progression_is_the_generator_at_each_group(tiny_config):
    from face_aging.models.caae.model import AgingModel, gender_labels
    from face_aging.data.labels import plus_minus_one_hot
    model = AgingModel(tiny_config)
    faces = tf.random.uniform([3, 32, 32, 3], -1, 1, seed=3).numpy()
    genders = gender_labels(1, 3)
    grid = model.age_progression(faces, genders)
    assert grid.shape == (10, 3, 32, 32, 3)
    for group in (0, 4, 9):
        direct = model.reconstruct(faces, plus_minus_one_hot([group] * 3, 10), genders).numpy()
        np.testing.assert_allclose(grid[group], direct, atol=1e-5)
    assert np.abs(grid[0] - grid[9]).max() > 0       # the age label reaches the output
    assert np.abs(grid[:, 0] - grid[:, 1]).max() > 0  # and so does the face


class _Oracle:
    """Stands in for a model: returns the true rendering at the target group ("truth") or the input ("input")."""

    def __init__(self, kind, size, seed, num_persons):
        from face_aging.models.caae.synthetic_check import UNSEEN_PERSON_BASE
        from face_aging.data import synthetic
        self.kind, self.size = kind, size
        ages = np.random.RandomState(seed).randint(0, synthetic.AGE_MAX + 1, size=num_persons)
        self.persons = [synthetic.make_person(UNSEEN_PERSON_BASE + i, seed) for i in range(num_persons)]
        self.sources = [synthetic.render_face(p, a, size) / 127.5 - 1.0 for p, a in zip(self.persons, ages)]

    def age_to_groups(self, images, groups, genders):
        from face_aging.data import labels as L, synthetic
        if self.kind == "input":
            return images
        out = []
        for image, group in zip(images, groups):
            person = next(p for p, s in zip(self.persons, self.sources) if np.abs(s - image).max() < 1e-6)
            out.append(synthetic.render_face(person, L.group_centre_age(group), self.size) / 127.5 - 1.0)
        return np.stack(out).astype(np.float32)


def test_synthetic_aging_check_scores_an_oracle_and_a_do_nothing_model():
    from face_aging.models.caae.synthetic_check import aging_check
    perfect = aging_check(_Oracle("truth", 32, 5, 12), 32, seed=5, num_persons=12)
    assert perfect["overall"]["d_aged"] == pytest.approx(0.0, abs=1e-6)
    assert perfect["overall"]["gain"] == pytest.approx(1.0) and perfect["overall"]["closer"] == 1.0
    lazy = aging_check(_Oracle("input", 32, 5, 12), 32, seed=5, num_persons=12)
    assert lazy["overall"]["gain"] == pytest.approx(0.0, abs=1e-9) and lazy["overall"]["closer"] == 0.0
    assert lazy["overall"]["pairs"] == perfect["overall"]["pairs"] > 0
