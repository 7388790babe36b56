"""CAAE's objective, in one place (Zhang et al. 2017, Eq. 5, as the original code implements it).

    min_{E,G} max_{D_z,D_img}
        L1(x, G(E(x), l))                                   reconstruction (EG_loss)
      + w0 * E[log(1 - D_img(G(E(x), l), l))]               G_img_loss   (non-saturating: G output -> 1)
      + w1 * E[log(1 - D_z(E(x)))]                          E_z_loss     (non-saturating: E(x) -> 1)
      + w2 * TV(G(E(x), l))                                 tv_loss
      + E[log D_z(z*)] + E[log(1 - D_z(E(x)))],             z* ~ U[-1, 1]^50   (D_z_loss_prior, D_z_loss_z)
      + E[log D_img(x, l)] + E[log(1 - D_img(G(E(x), l), l))]                  (D_img_loss_input, D_img_loss_G)

l = (age group, gender) of x. The original's default weights (w0, w1, w2) = (1e-4, 0, 0): the encoder gets no
gradient from D_z by default, though D_z is still trained. Names follow the original's TensorBoard scalars.
"""

import tensorflow as tf

DEFAULT_WEIGHTS = (1e-4, 0.0, 0.0)


def _sigmoid_ce(logits, target):
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target),
                                                                  logits=logits))


def reconstruction_loss(x, x_rec):
    """EG_loss: mean |x - G(E(x), l)| over every pixel and channel."""
    return tf.reduce_mean(tf.abs(tf.cast(x, tf.float32) - tf.cast(x_rec, tf.float32)))


def total_variation_loss(images):
    """The original's TV: (l2(dy) / height + l2(dx) / width) / batch, with l2(t) = sum(t^2) / 2."""
    images = tf.cast(images, tf.float32)
    height, width = images.shape[1], images.shape[2]
    batch = tf.cast(tf.shape(images)[0], tf.float32)
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return (tf.nn.l2_loss(dy) / height + tf.nn.l2_loss(dx) / width) / batch


def discriminator_loss_real(logits):
    """A discriminator's loss on what it must call real (prior z, real faces): target 1."""
    return _sigmoid_ce(logits, 1.0)


def discriminator_loss_fake(logits):
    """A discriminator's loss on what it must call fake (E(x), G's faces): target 0."""
    return _sigmoid_ce(logits, 0.0)


def adversarial_loss(logits):
    """The non-saturating loss of E or G on a discriminator's logits for their outputs: target 1."""
    return _sigmoid_ce(logits, 1.0)


def caae_losses(x, x_rec, d_z_logits, d_z_prior_logits, d_input_logits, d_g_logits, weights=DEFAULT_WEIGHTS):
    """Every term of the objective and the three players' totals, keyed by the original's summary names."""
    terms = {
        "EG_loss": reconstruction_loss(x, x_rec),
        "G_img_loss": adversarial_loss(d_g_logits),
        "E_z_loss": adversarial_loss(d_z_logits),
        "tv_loss": total_variation_loss(x_rec),
        "D_z_loss_prior": discriminator_loss_real(d_z_prior_logits),
        "D_z_loss_z": discriminator_loss_fake(d_z_logits),
        "D_img_loss_input": discriminator_loss_real(d_input_logits),
        "D_img_loss_G": discriminator_loss_fake(d_g_logits),
    }
    w0, w1, w2 = (tf.cast(w, tf.float32) for w in tf.unstack(tf.convert_to_tensor(weights, tf.float32)))
    terms["loss_EG"] = terms["EG_loss"] + w0 * terms["G_img_loss"] + w1 * terms["E_z_loss"] + w2 * terms["tv_loss"]
    terms["loss_Dz"] = terms["D_z_loss_prior"] + terms["D_z_loss_z"]
    terms["loss_Di"] = terms["D_img_loss_input"] + terms["D_img_loss_G"]
    return terms
