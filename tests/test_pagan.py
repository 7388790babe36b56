"""PAGAN: network shapes, the objective, the schedule inside the compiled step, and training on tiny networks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_aging.models.pagan import losses
from face_aging.models.pagan.config import LossWeights, PAGANConfig
from face_aging.models.pagan.model import PAGAN
from face_aging.models.pagan.networks import PAGANGenerator, PyramidDiscriminator, head_plan
from face_aging.models.pagan.vgg import VGG16, scaled_channels

TINY = dict(image_size=32, gen_channels=4, res_blocks=1, head_width=1 / 16)


def tiny_judges(size=32):
    phi_age = VGG16(4, size, scaled_channels(1 / 16), fc_units=8, name="phi_age")
    phi_id = VGG16(5, size, scaled_channels(1 / 16), fc_units=8, name="phi_id")
    return phi_age, phi_id


@pytest.mark.slow
def test_generator_keeps_the_size_and_range():
    for size, channels in ((224, 32), (32, 4)):
        generator = PAGANGenerator(channels)
        out = generator(tf.random.uniform([2, size, size, 3], -1, 1))
        assert out.shape == (2, size, size, 3)
        assert float(tf.reduce_max(tf.abs(out))) <= 1.0
    # The paper's widths: 9x9 convs at 3->32 and 32->3, two stride-2 convs, 4 residual blocks of two 3x3 128 convs.
    generator = PAGANGenerator(32, res_blocks=4)
    generator(tf.zeros([1, 32, 32, 3]))
    convs = (9 * 9 * 3 * 32 + 32) + (9 * 9 * 32 * 3 + 3) + (3 * 3 * 32 * 64 + 64) + (3 * 3 * 64 * 128 + 128) \
        + 8 * (3 * 3 * 128 * 128 + 128) + (3 * 3 * 128 * 64 + 64) + (3 * 3 * 64 * 32 + 32)
    norms = 2 * (32 + 64 + 128 + 8 * 128 + 64 + 32)
    assert generator.count_params() == convs + norms


def test_reflection_padding_and_five_blocks_are_options():
    generator = PAGANGenerator(4, res_blocks=5, padding="reflect")
    assert generator(tf.zeros([1, 32, 32, 3])).shape == (1, 32, 32, 3)
    assert len(generator.blocks) == 5
    with pytest.raises(ValueError, match="padding"):
        PAGANGenerator(4, padding="mirror")


@pytest.mark.parametrize("upsample, residual", [("deconv", False), ("resize", True)])
def test_a_generator_built_from_shapes_restores_one_built_by_a_call(tmp_path, upsample, residual):
    # Inference builds generators from their shapes alone (model.build_generator; no symbolic run of every layer):
    # that must make exactly the variables a generator called on a face has, so its checkpoints restore in full.
    called = PAGANGenerator(4, res_blocks=2, residual=residual, upsample=upsample)
    faces = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=3)
    called(faces)
    for variable in called.trainable_variables:       # non-trivial weights (a residual G's last conv starts at 0)
        variable.assign(tf.random.normal(variable.shape, stddev=0.1, seed=1))
    path = tf.train.Checkpoint(generator=called).write(str(tmp_path / "g"))
    built = PAGANGenerator(4, res_blocks=2, residual=residual, upsample=upsample)
    built.build((None, 32, 32, 3))
    assert sorted((v.path, tuple(v.shape)) for v in built.variables) == \
        sorted((v.path, tuple(v.shape)) for v in called.variables)
    tf.train.Checkpoint(generator=built).read(path).assert_consumed()
    np.testing.assert_array_equal(built(faces).numpy(), called(faces).numpy())


@pytest.mark.slow
def test_pyramid_discriminator_gives_a_12x3_map_at_224():
    taps = {"conv1_2": tf.zeros([2, 224, 224, 64]), "conv2_2": tf.zeros([2, 112, 112, 128]),
            "conv3_3": tf.zeros([2, 56, 56, 256]), "conv4_3": tf.zeros([2, 28, 28, 512])}
    discriminator = PyramidDiscriminator(224)
    assert discriminator(taps).shape == (2, 12, 3, 1)
    # Every head reaches 512 x 7 x 7 before its last conv: conv1_2 as in the paper (64-128-256-512-512-512-1).
    assert [h.plan for h in discriminator.heads] == [[128, 256, 512, 512, 512], [256, 512, 512, 512],
                                                     [512, 512, 512], [512, 512]]


@pytest.mark.parametrize("size, side", [(32, 1), (64, 1), (128, 2), pytest.param(160, 2, marks=pytest.mark.slow)])
def test_pyramid_discriminator_adapts_to_other_sizes(size, side):
    phi_age, _ = tiny_judges(size)
    discriminator = PyramidDiscriminator(size, phi_age.channels[:4], width=1 / 16)
    out = discriminator(phi_age.taps(tf.zeros([3, size, size, 3])))
    assert out.shape == (3, 4 * side, side, 1)
    assert discriminator.output_side() == side
    assert head_plan(64, size, size)[-1] == 512


def test_least_squares_losses_by_hand():
    d_old = tf.constant([[1.0, 0.0]])        # (0 + 1) / 2 = 0.5 -> 1/2 * 0.5
    d_gen = tf.constant([[0.5, 0.5]])        # squared 0.25
    d_young = tf.constant([[2.0, 0.0]])      # (4 + 0) / 2 = 2
    assert float(losses.d_loss(d_old, d_gen, d_young)) == pytest.approx(0.5 * 0.5 + 0.5 * (0.25 + 2.0))
    assert float(losses.g_age_loss(d_gen)) == pytest.approx(0.25)
    a = tf.constant([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = tf.constant([[1.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    assert float(losses.identity_loss(a, b)) == pytest.approx((4.0 + 3.0) / 2)
    # In 0-255 units by default: a difference of 0.5 in [-1, 1] is 63.75 grey levels.
    assert float(losses.pixel_loss(tf.zeros([1, 2, 2, 3]), tf.fill([1, 2, 2, 3], 0.5))) == pytest.approx(63.75 ** 2)
    assert float(losses.pixel_loss(tf.zeros([1, 2, 2, 3]), tf.fill([1, 2, 2, 3], 0.5), 1.0)) == pytest.approx(0.25)
    weights = LossWeights(pixel=2.0, adversarial=10.0, identity=0.5, pixel_scale=1.0)
    terms = losses.pagan_losses(d_old, d_gen, d_young, a, b, tf.zeros([1, 2, 2, 3]), tf.fill([1, 2, 2, 3], 0.5),
                                tf.constant(1.0), weights)
    assert float(terms["L_G"]) == pytest.approx(10 * 0.25 + 0.5 * 3.5 + 2 * 0.25)
    terms = losses.pagan_losses(d_old, d_gen, d_young, a, b, tf.zeros([1, 2, 2, 3]), tf.fill([1, 2, 2, 3], 0.5),
                                tf.constant(0.0), weights)
    assert float(terms["L_G"]) == pytest.approx(10 * 0.25 + 0.5 * 3.5)


def test_pixel_term_every_fifth_step():
    on = [float(losses.pixel_step(tf.constant(s, tf.int64), tf.constant(5, tf.int64))) for s in range(11)]
    assert on == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]


def test_learning_rate_halves_every_2000_iterations():
    phi_age, phi_id = tiny_judges()
    model = PAGAN(PAGANConfig(**TINY), phi_age, phi_id)
    seen = []
    for step in (0, 1999, 2000, 3999, 4000, 10000):
        model.set_step(step)
        seen.append(model.learning_rate)
    assert seen == pytest.approx([1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 1e-4 / 32])


def _faces(n, seed):
    return tf.constant(np.random.RandomState(seed).uniform(-1, 1, (n, 32, 32, 3)).astype(np.float32))


@pytest.mark.slow
def test_train_step_schedule_is_compiled_and_judges_stay_frozen():
    phi_age, phi_id = tiny_judges()
    model = PAGAN(PAGANConfig(**TINY), phi_age, phi_id)
    judges_before = [w.numpy().copy() for w in phi_age.weights + phi_id.weights]
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    pixel_on = []
    for step in range(7):
        terms, generated = model.train_step(_faces(4, step), _faces(4, 100 + step))
        pixel_on.append(float(terms["pixel_on"]))
    assert pixel_on == [1, 0, 0, 0, 0, 1, 0]
    assert model.train_step.experimental_get_tracing_count() == 1     # the schedule does not retrace
    assert int(model.step) == 7 and int(model.optimizers["G"].iterations) == 7
    assert generated.shape == (4, 32, 32, 3)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(judges_before, phi_age.weights + phi_id.weights))
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(g_before, model.generator.trainable_weights))
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(d_before, model.discriminator.trainable_weights))


@pytest.mark.slow
def test_terms_match_a_direct_computation():
    """The step's reported losses are the objective evaluated on its own forward pass (checked with frozen D)."""
    phi_age, phi_id = tiny_judges()
    config = PAGANConfig(**TINY)
    model = PAGAN(config, phi_age, phi_id)
    young, old = _faces(3, 1), _faces(3, 2)
    g_weights = [w.numpy() for w in model.generator.weights]
    d_weights = [w.numpy() for w in model.discriminator.weights]
    terms, generated = model.train_step(young, old)
    # Rebuild the pre-step networks and evaluate the objective by hand.
    reference = PAGAN(config, phi_age, phi_id)
    reference.generator.set_weights(g_weights)
    reference.discriminator.set_weights(d_weights)
    gen = reference.generator(young, training=True)
    np.testing.assert_allclose(gen.numpy(), generated.numpy(), atol=1e-5)
    d_all = reference.discriminator(phi_age.taps(tf.concat([old, gen, young], 0)), training=True)
    expected_d = 0.5 * np.mean((d_all[:3] - 1) ** 2) + 0.5 * (np.mean(d_all[3:6] ** 2) + np.mean(d_all[6:] ** 2))
    ids_young, ids_gen = phi_id.descriptor(young).numpy(), phi_id.descriptor(gen).numpy()
    expected_ide = np.mean(np.sum((ids_young - ids_gen) ** 2, axis=1))
    expected_pix = np.mean(((gen.numpy() - young.numpy()) * 127.5) ** 2)
    assert float(terms["L_D"]) == pytest.approx(expected_d, rel=1e-4)
    assert float(terms["L_ide"]) == pytest.approx(expected_ide, rel=1e-4)
    assert float(terms["L_pix"]) == pytest.approx(expected_pix, rel=1e-4)
    w = config.weights
    assert float(terms["L_G"]) == pytest.approx(w.adversarial * np.mean((d_all[3:6] - 1) ** 2)
                                                + w.identity * expected_ide + w.pixel * expected_pix, rel=1e-4)


@pytest.mark.slow
def test_a_few_steps_lower_the_generator_loss():
    """With D held fixed (its learning rate 0), G's steps must lower L_G on the same batch."""
    phi_age, phi_id = tiny_judges()
    model = PAGAN(PAGANConfig(**TINY, learning_rate=1e-3), phi_age, phi_id)
    model.optimizers["D"] = keras.optimizers.Adam(0.0)
    model.optimizers["D"].build(model.discriminator.trainable_variables)
    model.appliers["D"] = model.optimizers["D"]   # the optimiser the step applies gradients with
    young, old = _faces(4, 3), _faces(4, 4)
    first = None
    for _ in range(20):
        terms, _ = model.train_step(young, old)
        first = float(terms["L_G"]) if first is None else first
    model.set_step(0)   # pixel term on, as in the first step
    last = float(model.train_step(young, old)[0]["L_G"])
    assert last < 0.7 * first


@pytest.mark.slow
def test_judges_see_their_own_input_size():
    """A generator at 32px is judged by networks built for 64px: the faces are resized for them."""
    phi_age, phi_id = tiny_judges(64)
    model = PAGAN(PAGANConfig(**TINY), phi_age, phi_id)
    terms, generated = model.train_step(_faces(2, 5), _faces(2, 6))
    assert generated.shape == (2, 32, 32, 3)
    assert np.isfinite(float(terms["L_G"]))


def test_checkpoints_hold_every_weight(tmp_path):
    """A checkpoint of G alone (what test mode restores) and of D holds every variable, list-kept layers included."""
    phi_age, _ = tiny_judges()
    networks = [(PAGANGenerator(4, res_blocks=2), lambda net: net(_faces(2, 0))),
                (PyramidDiscriminator(32, phi_age.channels[:4], width=1 / 16),
                 lambda net: net(phi_age.taps(_faces(2, 0))))]
    for net, call in networks:
        call(net)
        path = tf.train.Checkpoint(net=net).write(str(tmp_path / net.name))
        stored = {name for name, _ in tf.train.list_variables(path) if name.startswith("net/")}
        assert len(stored) == len(net.weights)
        for w in net.weights:
            w.assign(tf.zeros_like(w))
        tf.train.Checkpoint(net=net).read(path).assert_consumed()
        assert all(float(tf.reduce_sum(tf.abs(w))) > 0 for w in net.weights if "gamma" in w.name or "kernel" in w.name)
