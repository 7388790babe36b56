"""CAAE: the four networks, their three Adam optimisers, the compiled training step and inference."""


import keras
import numpy as np
import tensorflow as tf

from face_aging.training import distribute, precision
from face_aging.models.caae import losses
from face_aging.models.caae.config import CAAEConfig
from face_aging.models.caae.residual import own_groups, residual_change, residual_progression
from face_aging.models.tracing import traced_after
from face_aging.models.caae.networks import (NUM_AGE_GROUPS, NUM_GENDERS, DiscriminatorAge, build_encoder_generator,
                                      build_networks)
from face_aging.data import labels as L
from face_aging.data.labels import plus_minus_one_hot
from face_aging.training.adversarial import AdversarialModel


class AgingModel:
    """E and G: everything test mode needs (no discriminators, no optimiser state)."""

    # The residual aging strength test mode uses unless --residual says otherwise: 0 (G's own faces, the original's
    # outputs) but for the bundled model, whose card gives its own.
    residual = 0.0

    def __init__(self, config=CAAEConfig()):
        self.config = config
        self.encoder, self.generator = build_encoder_generator(
            config.image_size, config.z_dim, config.enc_channels, config.gen_channels)

    def weights_checkpoint(self):
        """The part of a training checkpoint that holds E and G (restores from a full CAAE checkpoint)."""
        return tf.train.Checkpoint(encoder=self.encoder, generator=self.generator)

    @tf.function(reduce_retracing=True)  # callers pass batches of many sizes
    def reconstruct(self, images, ages, genders):
        """G(E(x), l): each face rebuilt at the given labels."""
        return self.generator(self.encoder(images, training=False), ages, genders, training=False)

    @traced_after(reduce_retracing=True)
    def _decode_groups(self, z, genders):
        n = tf.shape(z)[0]
        ages = tf.repeat(tf.constant(plus_minus_one_hot(np.arange(NUM_AGE_GROUPS), NUM_AGE_GROUPS)), n, axis=0)
        faces = self.generator(tf.tile(z, [NUM_AGE_GROUPS, 1]), ages, tf.tile(genders, [NUM_AGE_GROUPS, 1]),
                               training=False)
        return tf.reshape(faces, [NUM_AGE_GROUPS, n] + faces.shape[1:].as_list())

    def age_progression(self, images, genders, residual=0.0, own_groups=None):
        """Every face at every age group: [10 groups, N, S, S, 3] in [-1, 1]. `genders` are -1/+1 one-hot [N, 2].

        `residual` > 0: the input plus that many times G's change from the face's own group (caae.residual): from
        `own_groups` (int [N], -1 where unknown) where known, else estimated."""
        images = tf.convert_to_tensor(images, tf.float32)
        z = self.encoder(images, training=False)
        progression = self._decode_groups(z, tf.convert_to_tensor(genders, tf.float32))
        if residual > 0:
            progression = residual_progression(images, progression, residual, own_groups)
        return progression.numpy()

    @traced_after(reduce_retracing=True)
    def _decode_labels(self, z, age_labels, genders):
        """G(z, l) for every face and every age label [A, 10]: [A, N, S, S, 3]."""
        n, count = tf.shape(z)[0], tf.shape(age_labels)[0]
        faces = self.generator(tf.tile(z, [count, 1]), tf.repeat(age_labels, n, axis=0),
                               tf.tile(genders, [count, 1]), training=False)
        return tf.reshape(faces, tf.concat([[count, n], tf.shape(faces)[1:]], 0))

    # E and G traced for age_faces from their third call: called eagerly, Keras's per-layer overhead was three
    # quarters of a face's time (a video ages one face per frame: 95 -> 45 ms at 64 px); test mode calls each once or
    # twice a run, where tracing cost more than it saved (face_aging/models/tracing.py).
    @traced_after(reduce_retracing=True)
    def _encode(self, images):
        return self.encoder(images, training=False)

    @traced_after(reduce_retracing=True)
    def _generate(self, z, ages, genders):
        return self.generator(z, ages, genders, training=False)

    def age_faces(self, images, ages, genders, residual=0.0, own_ages=None):
        """Every face at every age in years (`ages`, [A]): [A, N, S, S, 3] in [-1, 1], G's age label interpolated
        between the groups whose centres enclose each age (labels.interpolated_group_labels). `genders` are -1/+1
        one-hot [N, 2].

        `residual` > 0: the input plus that many times G's change from the face's own age, `own_ages` (years [N];
        NaN where unknown: the centre of the group whose reconstruction is closest, as caae.residual does)."""
        images = tf.convert_to_tensor(images, tf.float32)
        genders = tf.convert_to_tensor(genders, tf.float32)
        z = self._encode(images)
        faces = self._decode_labels(z, tf.constant(L.interpolated_group_labels(ages)), genders)
        if not residual > 0:
            return faces.numpy()
        own = np.full(images.shape[0], np.nan) if own_ages is None else np.asarray(own_ages, np.float64)
        unknown = ~np.isfinite(own)
        if unknown.any():
            groups = own_groups(images, self._decode_groups(z, genders)).numpy()
            own = np.where(unknown, [L.group_centre_age(g) for g in groups], own)
        base = self._generate(z, tf.constant(L.interpolated_group_labels(own), tf.float32), genders)
        return residual_change(images, faces, base, residual).numpy()

    def age_to_groups(self, images, groups, genders):
        """Each face at its own target group (indices 0-9): [N, S, S, 3]."""
        ages = plus_minus_one_hot(groups, NUM_AGE_GROUPS)
        return self.reconstruct(tf.convert_to_tensor(images, tf.float32), ages,
                                tf.convert_to_tensor(genders, tf.float32)).numpy()


class CAAE(AgingModel, AdversarialModel):
    """E, G, D_z, D_img, one Adam optimiser per player and a tf.train.Checkpoint of all of them.

    `strategy` (a tf.distribute strategy, None for one device) holds the variables and runs the step on its
    replicas; config.precision sets the layers' compute dtype.
    """

    def __init__(self, config=CAAEConfig(), steps_per_epoch=1, strategy=None):
        AdversarialModel.__init__(self, config, strategy)
        with self.strategy.scope(), precision.policy(config.precision):
            self.encoder, self.generator, self.d_z, self.d_img = build_networks(
                config.image_size, config.z_dim, config.enc_channels, config.gen_channels,
                synchronized=self.replicas > 1)
            self.eg_variables = self.encoder.trainable_variables + self.generator.trainable_variables
            self.players = [("EG", self.eg_variables, "loss_EG"), ("D_z", self.d_z.trainable_variables, "loss_Dz"),
                            ("D_img", self.d_img.trainable_variables, "loss_Di")]
            self.d_age = None
            if config.z_age_loss > 0:  # the recipe's age-blind code: a fourth player (not in the original)
                self.d_age = DiscriminatorAge(name="discriminator_age")
                self.d_age(tf.zeros([1, config.z_dim]))
                self.players.append(("D_age", self.d_age.trainable_variables, "D_age_loss"))
            # TF1's AdamOptimizer epsilon; Keras defaults to 1e-7.
            self.build_optimizers(lambda: keras.optimizers.schedules.ExponentialDecay(
                config.learning_rate, decay_steps=max(1, config.decay_epochs * steps_per_epoch),
                decay_rate=config.decay_rate, staircase=True), epsilon=1e-8)
            # Epochs of plain-autoencoder pre-training this run does before the main training (0: none).
            self.pretrain_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="pretrain_epochs")
        # The frozen age classifier of the recipe's G_age_loss (face_aging.models.caae.age_classifier); set by training.
        self.age_classifier = None
        # Outside the strategy: one stream drawn for the whole global batch, whatever the number of replicas.
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.compile_step()
        self.checkpoint = tf.train.Checkpoint(
            encoder=self.encoder, generator=self.generator, d_z=self.d_z, d_img=self.d_img,
            opt_eg=self.optimizers["EG"], opt_dz=self.optimizers["D_z"], opt_di=self.optimizers["D_img"],
            step=self.step, pretrain_epochs=self.pretrain_epochs, rng=self.rng)
        self.networks = [self.encoder, self.generator, self.d_z, self.d_img, self.d_age]
        if self.d_age is not None:
            self.checkpoint.d_age = self.d_age
            self.checkpoint.opt_dage = self.optimizers["D_age"]

    @property
    def ages_faces(self):
        """Whether the step also ages each face to a random group (the recipe's terms are on)."""
        return self.config.age_loss > 0 or self.config.id_loss > 0

    def _train_step(self, images, ages, genders, weights, aging=True):
        """One iteration: E+G, D_z and D_img all step on the same batch, each from the same pre-update weights.

        `weights` is a tensor (w0, w1, w2, lambda_age, lambda_id, lambda_zage), so switching from pre-training (all
        0) to training does not retrace. `aging` (a Python bool: one trace each) False skips the recipe's pass over
        aged faces, whose weights are 0 while pre-training anyway. Images and labels are the global batch; each
        replica takes its share.
        """
        n = tf.shape(images)[0]
        z_prior = self.rng.uniform([n, self.config.z_dim], -1.0, 1.0)
        # Drawn after the prior, and only with the recipe on: the original's random stream stays as it was.
        aging = aging and self.ages_faces
        targets = self.rng.uniform([n], 0, NUM_AGE_GROUPS, dtype=tf.int32) if aging else tf.zeros([n], tf.int32)
        terms, histograms = self.on_replicas(self._replica_step, images, ages, genders, z_prior, weights, targets,
                                             aging)
        self.step.assign_add(1)
        return terms, histograms

    def _replica_step(self, images, ages, genders, z_prior, weights, targets, aging):
        images, ages, genders, z_prior, targets = distribute.replica_share(images, ages, genders, z_prior, targets)
        with tf.GradientTape(persistent=True) as tape:
            terms, histograms = self._forward(images, ages, genders, z_prior, weights, targets, aging)
            scaled = self.scaled_losses(terms)
        self.apply_gradients(tape, scaled)
        del tape
        return terms, histograms

    def gradients(self, images, ages, genders, z_prior, weights=losses.DEFAULT_WEIGHTS):
        """(terms, outputs, each player's gradients {name: [gradient per variable]}) of the original's objective on one
        batch, taken as a training step takes them, for comparing with the original's graph
        (tests/test_original_gradients.py). Nothing is applied, though batch norm's moving averages move as in a
        step; the recipe's terms are left out."""
        weights = tf.constant(list(weights) + [0.0] * 3, tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            terms, histograms = self._forward(images, ages, genders, z_prior, weights, None, False)
            scaled = self.scaled_losses(terms)
        gradients = self.player_gradients(tape, scaled)
        del tape
        return terms, histograms, gradients

    def _forward(self, images, ages, genders, z_prior, weights, targets, aging):
        """Every loss term of one batch and the outputs the summaries show; run inside the step's gradient tape."""
        z = self.encoder(images, training=True)
        x_rec = self.generator(z, ages, genders, training=True)
        d_z_logits = self.d_z(z, training=True)
        d_z_prior_logits = self.d_z(z_prior, training=True)
        d_input_logits = self.d_img(images, ages, genders, training=True)
        d_g_logits = self.d_img(x_rec, ages, genders, training=True)
        terms = losses.caae_losses(images, x_rec, d_z_logits, d_z_prior_logits, d_input_logits, d_g_logits,
                                   weights[:3])
        if aging:
            x_aged = self.generator(z, tf.cast(tf.one_hot(targets, NUM_AGE_GROUPS) * 2 - 1, tf.float32), genders,
                                    training=True)
            aged_logits = (self.age_classifier(x_aged, training=False) if self.config.age_loss > 0 else None)
            z_aged = self.encoder(x_aged, training=True) if self.config.id_loss > 0 else None
            terms = losses.recipe_losses(terms, aged_logits, targets, z_aged, z, weights[3], weights[4])
        if self.d_age is not None:
            terms = losses.age_blind_losses(terms, self.d_age(z), tf.argmax(ages, -1, output_type=tf.int32),
                                            weights[5])
        histograms = {"z": z, "z_prior": z_prior, "D_z_logits": d_z_logits, "D_z_prior_logits": d_z_prior_logits,
                      "D_G_logits": d_g_logits, "D_input_logits": d_input_logits}
        return terms, histograms


def checkpoint_value(path, name):
    """An integer a CAAE checkpoint recorded (`step`, `pretrain_epochs`) without restoring it, or None."""
    try:
        return int(tf.train.load_checkpoint(path).get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))
    except (tf.errors.NotFoundError, ValueError):
        return None


def gender_labels(gender, n):
    """-1/+1 one-hot labels for n faces of one gender (0 male, 1 female)."""
    return plus_minus_one_hot(np.full(n, gender), NUM_GENDERS)
