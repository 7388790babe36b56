"""PAGAN for one target cluster: the generator, the pyramid discriminator, their optimisers and the compiled step.

The judges (phi_age and the identity network) are frozen VGG-16s passed in; they see faces at their own input size
(resized if the generator works at another one) and with their own normalisation (inside VGG16.preprocess).
"""

import keras
import tensorflow as tf

from face_aging.training import distribute, precision
from face_aging.models.pagan import losses
from face_aging.models.pagan.estimator_judge import AgeReading
from face_aging.models.pagan.networks import PAGANGenerator, PyramidDiscriminator
from face_aging.models.pagan.vgg import TAPS
from face_aging.training.adversarial import AdversarialModel


def learning_rate_schedule(config):
    """lr, halved (decay_rate) every `decay_every` iterations, as steps: staircase."""
    return keras.optimizers.schedules.ExponentialDecay(config.learning_rate, decay_steps=config.decay_every,
                                                       decay_rate=config.decay_rate, staircase=True)


def build_generator(config):
    generator = PAGANGenerator(config.gen_channels, config.res_blocks, config.padding, config.residual_output,
                               config.upsample, config.change_split)
    generator.build((None, config.image_size, config.image_size, 3))
    return generator


def _to_size(images, size):
    if images.shape[1] == size:
        return images
    return tf.image.resize(images, [size, size], method="bilinear", antialias=True)


class PAGAN(AdversarialModel):
    """G and D for `config.target_cluster`, judged by the frozen `phi_age` and `phi_id`.

    `strategy` (a tf.distribute strategy, None for one device) holds the variables and runs the step on its replicas;
    load the judges inside its scope too, so that every replica has its own copy. `estimator`: the frozen age
    estimator that reads G(x) for L_est (config.weights.estimator > 0; estimator_judge.py).
    """

    def __init__(self, config, phi_age, phi_id, strategy=None, estimator=None):
        AdversarialModel.__init__(self, config, strategy)
        self.phi_age, self.phi_id = phi_age, phi_id
        for judge in (phi_age, phi_id):
            judge.trainable = False
        judge_size = phi_age.image_size
        tap_channels = phi_age.channels[:len(TAPS)]
        # The judges stay float32: G's gradient runs through them, and stock 16-bit data gradients of their
        # convolutions are very slow on CPUs (see face_aging/layers.py).
        with self.strategy.scope(), precision.policy(config.precision):
            self.generator = build_generator(config)
            self.discriminator = PyramidDiscriminator(judge_size, tap_channels, TAPS, config.head_width,
                                                      synchronized=self.replicas > 1)
            self.discriminator(self.phi_age.taps(tf.zeros([1, judge_size, judge_size, 3]),
                                                 after_relu=config.tap == "relu"))
        self.networks = [self.generator, self.discriminator]
        self.players = [("D", self.discriminator.trainable_variables, "L_D"),
                        ("G", self.generator.trainable_variables, "L_G")]
        self.age_reading = None
        if config.weights.estimator > 0:
            if estimator is None:
                raise ValueError("L_est is on (weights.estimator > 0) but no estimator was given to read G(x)")
            with self.strategy.scope():
                self.age_reading = AgeReading(estimator)
        with self.strategy.scope():
            # One optimiser per player for the whole run: Adam's moments are part of the checkpoint (the PyTorch
            # reproduction rebuilt its optimisers every step, losing them).
            self.build_optimizers(lambda: learning_rate_schedule(config))
        self.compile_step()
        self.checkpoint = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                              opt_g=self.optimizers["G"], opt_d=self.optimizers["D"], step=self.step)
        self._pixel_every = tf.constant(config.weights.pixel_every, tf.int64)

    def _age_features(self, images):
        return self.phi_age.taps(_to_size(images, self.phi_age.image_size), after_relu=self.config.tap == "relu")

    def _identity(self, images):
        return self.phi_id.descriptor(_to_size(images, self.phi_id.image_size), layer=self.config.identity_layer)

    def _train_step(self, young, old):
        """One iteration: D and G both step, from the same forward pass; the pixel term is on every 5th G step.
        `young` and `old` are the global batch; each replica takes its share."""
        use_pixel = losses.pixel_step(self.step, self._pixel_every)
        terms, generated = self.on_replicas(self._replica_step, young, old, use_pixel)
        self.step.assign_add(1)
        terms["pixel_on"] = use_pixel
        return terms, generated

    def _replica_step(self, young, old, use_pixel):
        (young,), (old,) = distribute.replica_share(young), distribute.replica_share(old)
        n = tf.shape(young)[0]
        with tf.GradientTape(persistent=True) as tape:
            generated = tf.cast(self.generator(young, training=True), tf.float32)
            # One pass of phi_age and D over [old; generated; young]: the three batches share D's batch statistics
            # (over every replica's share when synchronised).
            d_all = tf.cast(self.discriminator(self._age_features(tf.concat([old, generated, young], axis=0)),
                                               training=True), tf.float32)
            d_old, d_generated, d_young = d_all[:tf.shape(old)[0]], d_all[-2 * n:-n], d_all[-n:]
            ids = self._identity(tf.concat([young, generated], axis=0))
            estimated_age = self.age_reading(generated) if self.age_reading is not None else None
            terms = losses.pagan_losses(d_old, d_generated, d_young, ids[:n], ids[n:], young, generated, use_pixel,
                                        self.config.weights, estimated_age)
            scaled = self.scaled_losses(terms)
        self.apply_gradients(tape, scaled)
        del tape
        return terms, generated

    @tf.function(reduce_retracing=True)
    def generate(self, young):
        return tf.cast(self.generator(young, training=False), tf.float32)
