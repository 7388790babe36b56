"""Networks that inference builds from their shapes alone (no symbolic run of every nested layer, which was most of
a test-mode run's start): they must have exactly the variables a network called on real inputs has, so that every
checkpoint restores in full and gives the same outputs. (PAGAN's generator: tests/test_pagan.py.)"""

import re

import numpy as np
import tensorflow as tf

from face_aging.data.labels import NUM_AGE_GROUPS, NUM_GENDERS
from face_aging.models.caae import networks as N
from face_aging.models.estimator.network import AgeGenderEstimator


def _same_variables_and_outputs(tmp_path, make, build, call):
    """`make()` twice: one built by `call`, given random weights and saved; one built by `build`, restored."""
    called = make()
    call(called)
    for variable in called.variables:
        variable.assign(tf.random.normal(variable.shape, stddev=0.1, seed=len(variable.path)))
    path = tf.train.Checkpoint(net=called).write(str(tmp_path / "net"))
    built = make()
    build(built)
    def names(net):      # Keras numbers the dropout's seed generator per instance in a process
        return sorted((re.sub(r"seed_generator_\d+", "seed_generator", v.path), tuple(v.shape)) for v in net.variables)
    assert names(built) == names(called)
    tf.train.Checkpoint(net=built).read(path).assert_consumed()
    return called, built


def test_caae_encoder_and_generator(tmp_path):
    faces = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=1)
    encoder, built = _same_variables_and_outputs(
        tmp_path / "e", lambda: N.Encoder(32, 20, 8, name="encoder"), lambda e: e.build((None, 32, 32, 3)),
        lambda e: e(faces))
    np.testing.assert_array_equal(built(faces).numpy(), encoder(faces).numpy())

    z = tf.random.uniform([2, 20], -1, 1, seed=2)
    age, gender = tf.one_hot([1, 7], NUM_AGE_GROUPS), tf.one_hot([0, 1], NUM_GENDERS)
    generator, built = _same_variables_and_outputs(
        tmp_path / "g", lambda: N.Generator(32, 20, 64, name="generator"),
        lambda g: g.build((None, 20), (None, NUM_AGE_GROUPS), (None, NUM_GENDERS)), lambda g: g(z, age, gender))
    np.testing.assert_array_equal(built(z, age, gender).numpy(), generator(z, age, gender).numpy())
    # build_encoder_generator, what inference and training use, builds them so.
    encoder, generator = N.build_encoder_generator(32, 20, 8, 64)
    assert encoder.built and generator.built and generator(encoder(faces), age, gender).shape == (2, 32, 32, 3)


def test_age_and_gender_estimator(tmp_path):
    faces = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=3)
    called, built = _same_variables_and_outputs(
        tmp_path, lambda: AgeGenderEstimator(32, 4, name="estimator"), lambda m: m.build((None, 32, 32, 3)),
        lambda m: m(faces))
    for a, b in zip(built(faces), called(faces)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
