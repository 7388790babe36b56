"""The aging recipe (docs/caae_recipe.md): the held-out rule, the recipe's losses, its age classifier, flips, and
training with it through main.py. Tiny shapes and data the tests make themselves."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from helpers import TINY_FLAGS, call_main, read_events
from face_aging.models.caae import age_classifier, losses
from face_aging.models.caae.model import CAAE
from face_aging.models.caae.config import TrainOptions
from face_aging.models.caae.train import train
from face_aging.data import holdout
from face_aging.data.pipeline import FaceDataset, load_faces


def one_hot_pm(indices, depth):
    return tf.constant(np.where(np.eye(depth)[np.asarray(indices)] > 0, 1.0, -1.0), tf.float32)


# --- the held-out rule ------------------------------------------------------------------------------------------

def test_held_out_sets_follow_the_content_hash_and_keep_duplicates_together(tmp_path, face_folder):
    names = sorted(os.listdir(face_folder))
    position = {n: int(hashlib.sha256(open(os.path.join(face_folder, n), "rb").read()).hexdigest()[:8], 16) / 2 ** 32
                for n in names}
    for name in names:
        path = os.path.join(face_folder, name)
        assert holdout.in_set(path, "test") == (position[name] < 0.03)
        assert holdout.in_set(path, "val") == (0.03 <= position[name] < 0.05)
    # A copy under another name (and another label) lands on the same side: the rule reads bytes, not names.
    src = os.path.join(face_folder, names[0])
    copy = tmp_path / "99_1_0_20990101000000000.jpg.chip.jpg"
    shutil.copy(src, copy)
    assert holdout.file_fraction(str(copy)) == holdout.file_fraction(src)
    assert holdout.select([src, str(copy)], "none") == [src, str(copy)]


def _folder_with_held_out_faces(tmp_path, face_folder):
    """A copy of face_folder whose first two files are rewritten (a changed JPEG comment) until one is in the test
    set and one in the val set, so that every run of the test has both kinds, whatever the renderer draws."""
    folder = tmp_path / "faces"
    shutil.copytree(face_folder, folder)
    names = sorted(os.listdir(folder))
    for name, wanted in zip(names[:2], ("test", "val")):
        path = folder / name
        data = open(path, "rb").read()
        for k in range(100000):
            candidate = data[:2] + b"\xff\xfe" + (len(str(k)) + 2).to_bytes(2, "big") + str(k).encode() + data[2:]
            low, high = holdout.SETS[wanted]
            if low <= holdout.content_fraction(candidate) < high:
                path.write_bytes(candidate)
                break
    return str(folder), names[:2]


@pytest.mark.slow
def test_training_never_sees_held_out_faces_and_eval_selects_them(tmp_path, face_folder, tiny_config):
    folder, (test_name, val_name) = _folder_with_held_out_faces(tmp_path, face_folder)
    faces = load_faces(folder, 32)
    keep = holdout.training_mask(faces)
    kept = {os.path.basename(p) for p, k in zip(faces.paths, keep) if k}
    assert test_name not in kept and val_name not in kept and len(kept) == len(faces) - (~keep).sum()
    assert len(faces.subset(keep)) == keep.sum() and faces.subset(keep).paths == [p for p, k in zip(faces.paths, keep)
                                                                                   if k]
    savedir = str(tmp_path / "run")
    train(TrainOptions(savedir=savedir, dataset=folder, epoch=1, batch_size=16, holdout=True, config=tiny_config))
    record = json.load(open(os.path.join(savedir, "options.json")))
    assert record["holdout"] is True and record["num_held_out"] == (~keep).sum() >= 2
    assert record["num_faces"] == keep.sum()
    from face_aging.inference.testmode import load_test_images
    _, paths = load_test_images(folder, 32, "test")
    assert test_name in [os.path.basename(p) for p in paths] and val_name not in [os.path.basename(p) for p in paths]
    _, paths = load_test_images(folder, 32, "val")
    assert val_name in [os.path.basename(p) for p in paths] and test_name not in [os.path.basename(p) for p in paths]
    # Test mode too: only the held-out set's faces get outputs.
    result = call_main("--is_train=false", f"--testdir={folder}", f"--savedir={savedir}", "--holdout=test",
                       "--target_age=60")
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(n for n in os.listdir(os.path.join(savedir, "test")) if n.endswith("_age60.png"))
    expected = sorted(os.path.basename(p).split(".")[0] + "_age60.png" for p in holdout.select(
        [os.path.join(folder, n) for n in os.listdir(folder)], "test"))
    assert written == expected and test_name.split(".")[0] + "_age60.png" in written


# --- the recipe's losses ----------------------------------------------------------------------------------------

def test_age_classification_loss_is_smoothed_cross_entropy():
    logits = tf.constant([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    groups = tf.constant([0, 2])
    eps = losses.AGE_LABEL_SMOOTHING
    expected = []
    for row, g in zip(logits.numpy(), groups.numpy()):
        logp = row - np.log(np.exp(row).sum())
        target = np.full(3, eps / 3) + (1 - eps) * (np.arange(3) == g)
        expected.append(-(target * logp).sum())
    assert float(losses.age_classification_loss(logits, groups)) == pytest.approx(np.mean(expected), rel=1e-5)


def test_latent_identity_loss_sends_no_gradient_to_the_input_code():
    z = tf.Variable([[0.5, -0.5]])
    z_aged = tf.Variable([[0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = losses.latent_identity_loss(z_aged, z)
    grad_aged, grad_z = tape.gradient(loss, [z_aged, z])
    assert float(loss) == pytest.approx(0.5)
    assert grad_z is None and np.allclose(grad_aged.numpy(), [[-0.5, 0.5]])


@pytest.mark.slow
def test_the_recipe_off_leaves_the_originals_step_unchanged(tiny_config):
    """With both weights 0 nothing of the recipe is computed, and the step draws the same random numbers: two models
    from the same seed, one given the 5-weight tensor, train identically."""
    x = tf.random.uniform([8, 32, 32, 3], -1, 1, seed=3)
    ages, genders = one_hot_pm(np.arange(8), 10), one_hot_pm(np.arange(8) % 2, 2)
    import keras
    results = []
    for weights in ([1e-4, 0.0, 0.0], [1e-4, 0.0, 0.0, 0.0, 0.0]):
        keras.utils.set_random_seed(5)
        model = CAAE(tiny_config)
        terms, _ = model.train_step(x, ages, genders, tf.constant(weights))
        results.append(({k: float(v) for k, v in terms.items()}, model.generator.weights[0].numpy()))
    assert set(results[0][0]) == set(results[1][0]) and "G_age_loss" not in results[0][0]
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


@pytest.mark.slow
def test_the_age_loss_teaches_the_generator_to_use_the_label(tiny_config):
    """Against a frozen classifier, a few dozen steps of the recipe's G_age_loss alone (no reconstruction weight
    matters here) raise the share of aged faces in their random target group far above chance (10%)."""
    import dataclasses
    import keras
    keras.utils.set_random_seed(9)
    config = dataclasses.replace(tiny_config, age_loss=1.0, learning_rate=1e-3)
    model = CAAE(config)
    # A fixed classifier that reads the mean brightness of the face: group k is brightness near -0.9 + 0.2 k.
    centres = tf.constant(np.linspace(-0.9, 0.9, 10), tf.float32)

    def brightness_classifier(images, training=False):
        return -50.0 * tf.square(tf.reduce_mean(images, axis=[1, 2, 3])[:, None] - centres[None, :])
    model.age_classifier = brightness_classifier
    x = tf.random.uniform([32, 32, 32, 3], -1, 1, seed=4)
    ages, genders = one_hot_pm(np.arange(32) % 10, 10), one_hot_pm(np.arange(32) % 2, 2)
    accuracy = []
    for _ in range(80):
        terms, _ = model.train_step(x, ages, genders, tf.constant([0.0, 0.0, 0.0, 1.0, 0.0]))
        accuracy.append(float(terms["G_age_accuracy"]))
    assert np.mean(accuracy[:5]) < 0.3
    assert np.mean(accuracy[-10:]) > 0.5, accuracy


def test_flips_are_a_function_of_seed_epoch_and_face():
    faces = load_faces("synthetic", 32, num_synthetic=60)
    flipped = FaceDataset(faces, 32, 8, num_vis=4, flip=True)
    plain = FaceDataset(faces, 32, 8, num_vis=4)
    a = np.concatenate([b[0].numpy() for b in flipped.epoch(0)])
    b = np.concatenate([b[0].numpy() for b in flipped.epoch(0)])
    c = np.concatenate([b[0].numpy() for b in plain.epoch(0)])
    assert np.array_equal(a, b)                    # the same epoch flips the same faces (resume)
    same = np.all(a == c, axis=(1, 2, 3))
    mirrored = np.all(a == c[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored) and 0.2 < mirrored.mean() < 0.8
    resumed = np.concatenate([b[0].numpy() for b in flipped.epoch(0, skip_batches=2)])
    assert np.array_equal(resumed, a[16:])


# --- training with the recipe through main.py -------------------------------------------------------------------

@pytest.mark.slow
def test_recipe_training_trains_the_classifier_once_summarises_and_resumes(tmp_path, face_folder):
    savedir = str(tmp_path / "run")
    flags = ["--model=caae", "--is_train", f"--dataset={face_folder}", f"--savedir={savedir}", *TINY_FLAGS,
             "--age_loss=0.1", "--id_loss=0.5", "--flip", "--age_classifier_epochs=2"]
    first = call_main(*flags, "--epoch=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Trained the age classifier" in first.stdout and "[age classifier epoch 2/2]" in first.stdout
    record = json.load(open(os.path.join(savedir, "options.json")))
    assert (record["age_loss"], record["id_loss"], record["flip"], record["age_classifier_epochs"]) == (0.1, 0.5,
                                                                                                         True, 2)
    events = read_events(os.path.join(savedir, "summary"))
    for tag in ("G_age_loss", "G_age_accuracy", "id_loss", "age_classifier/loss", "age_classifier/vis_accuracy"):
        assert tag in events, tag
    assert len(events["age_classifier/loss"]) == 2
    shown = json.loads(events["options"][0][1].item().decode())          # the options, as text in TensorBoard
    assert (shown["age_loss"], shown["id_loss"], shown["flip"]) == (0.1, 0.5, True)
    classifier_files = sorted(os.listdir(os.path.join(savedir, "age_classifier")))
    # C trained through the one loop, in a run directory of its own (resumable, NaN-checked, saved on signals).
    assert {"options.json", "checkpoint", "summary"} <= set(classifier_files)
    assert json.load(open(os.path.join(savedir, "age_classifier", "options.json")))["epochs"] == 2
    assert tf.train.latest_checkpoint(os.path.join(savedir, "age_classifier", "checkpoint"))
    second = call_main(*flags, "--epoch=2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Restored the age classifier" in second.stdout and "age classifier epoch" not in second.stdout
    assert sorted(os.listdir(os.path.join(savedir, "age_classifier"))) == classifier_files
    # The CAAE checkpoint itself keeps the original's contents: no classifier inside it.
    latest = tf.train.latest_checkpoint(os.path.join(savedir, "checkpoint"))
    assert not [name for name, _ in tf.train.list_variables(latest) if "age_classifier" in name]


def test_recipe_flags_are_checked(tmp_path):
    for flag, text in (("--age_loss=-1", "--age_loss=-1.0: must be a weight >= 0"),
                       ("--id_loss=-0.5", "--id_loss=-0.5: must be a weight >= 0"),
                       ("--age_classifier_epochs=0", "--age_classifier_epochs=0: must be a positive integer"),
                       ("--holdout=train", "--holdout")):
        result = call_main("--model=caae", "--is_train", f"--savedir={tmp_path}", flag)
        assert result.returncode != 0 and text in result.stderr, (flag, result.stderr[-500:])


@pytest.mark.slow
def test_the_age_blind_code_trains_d_age_and_e_confuses_it(tmp_path, tiny_config):
    """D_age learns the age group from z; with E's confusion term on, E moves the codes so that D_age cannot. D_age
    and its optimiser join the checkpoint only with the option on, beside the original's unchanged names."""
    import dataclasses
    import keras
    x = tf.random.uniform([32, 32, 32, 3], -1, 1, seed=8)
    ages, genders = one_hot_pm(np.arange(32) % 10, 10), one_hot_pm(np.arange(32) % 2, 2)
    final = {}
    for weight in (0.0, 5.0):
        keras.utils.set_random_seed(3)
        model = CAAE(dataclasses.replace(tiny_config, z_age_loss=1.0, learning_rate=1e-3))
        losses_seen = [model.train_step(x, ages, genders, tf.constant([0.0] * 5 + [weight]))[0] for _ in range(80)]
        final[weight] = np.mean([float(t["D_age_loss"]) for t in losses_seen[-10:]])
        if weight == 0.0:
            assert final[weight] < 0.9 * float(losses_seen[0]["D_age_loss"])     # D_age reads age from z
        assert all(float(t["E_z_age_loss"]) >= np.log(10) - 1e-4 for t in losses_seen)
    assert final[5.0] > final[0.0] + 0.15, final                                 # ... unless E hides it
    names = {n for n, _ in tf.train.list_variables(model.checkpoint.save(str(tmp_path / "with")))}
    plain = CAAE(tiny_config)
    assert plain.d_age is None
    plain_names = {n for n, _ in tf.train.list_variables(plain.checkpoint.save(str(tmp_path / "plain")))}
    assert any(n.startswith("d_age/") for n in names) and not any("d_age" in n for n in plain_names)
    assert {n for n in names if not n.startswith(("d_age/", "opt_dage/"))} == plain_names


def test_the_recipe_preset_sets_its_flags_and_explicit_flags_win():
    from absl import flags
    from face_aging.models.caae.config import RECIPES
    from face_aging.cli import flags as cli_flags
    from face_aging.errors import FlagError

    def applied(*args):
        fv = flags.FlagValues()
        cli_flags.define_flags(fv)
        cli_flags.parse_flags(["main.py", *args], fv)
        cli_flags.apply_model_defaults(fv)
        return fv
    fv = applied("--recipe=utkface64")
    for name, value in RECIPES["utkface64"].items():
        assert fv[name].value == value, name
    assert applied("--recipe=utkface64", "--epoch=3", "--noflip").epoch == 3
    assert applied("--recipe=utkface64", "--noflip").flip is False
    plain = applied()
    assert (plain.image_size, plain.age_loss, plain.z_age_loss, plain.flip, plain.holdout) == (128, 0.0, 0.0, False,
                                                                                               "none")
    with pytest.raises(FlagError, match="--recipe"):
        applied("--recipe=utkface64", "--is_train=false", "--testdir=x")
    with pytest.raises(FlagError, match="--recipe=utkface64 is for --model caae, not --model pagan"):
        applied("--model=pagan", "--recipe=utkface64")


@pytest.mark.slow
def test_the_age_classifier_restores_every_weight(tmp_path, capsys):
    """A resumed run must judge with the classifier it trained: every convolution and batch-norm statistic is in its
    checkpoint (layers kept in lists are not checkpointed by Keras 3 on their own)."""
    faces = load_faces("synthetic", 32, num_synthetic=80)
    data = FaceDataset(faces, 32, 16, num_vis=8, flip=True)
    writer = tf.summary.create_file_writer(str(tmp_path / "summary"))
    trained = age_classifier.train_or_restore(str(tmp_path / "c"), data, 1, writer)
    assert "Trained the age classifier" in capsys.readouterr().out
    restored = age_classifier.train_or_restore(str(tmp_path / "c"), data, 1, writer)
    assert "Restored the age classifier" in capsys.readouterr().out
    assert not trained.trainable and not restored.trainable                 # frozen for the CAAE's training
    x = tf.random.uniform([6, 32, 32, 3], -1, 1, seed=1)
    assert np.array_equal(trained(x, training=False).numpy(), restored(x, training=False).numpy())
    saved = [name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(tmp_path / "c" /
                                                                                     "checkpoint")))]
    assert sum("moving_mean" in n for n in saved) == sum("C_bn" in v.path and "moving_mean" in v.path
                                                        for v in trained.variables) > 0
