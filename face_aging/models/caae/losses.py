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

The aging recipe (docs/caae_recipe.md; every weight 0 by default, and then none of this is computed) adds terms on
the face aged to a random target t drawn uniformly from the ten groups, x_t = G(E(x), t, gender):

      + lambda_age * CE(C(x_t), t)                          G_age_loss  (C: a frozen age-group classifier trained
                                                                         on the same training faces first)
      + lambda_id  * mean |E(x_t) - sg(E(x))|               id_loss     (x_t keeps the code of x: who it is)

(sg: stop-gradient). The first makes the age label matter to G (as in IPCGAN and HRFAE); the second keeps the aged
face the same person as far as E can tell, and asks E for a code that does not change with age.

A third makes the code age-blind, as Fader Networks (Lample et al. 2017) do for attributes: a small network D_age
learns to tell a face's age group from z = E(x), and E is asked to leave it guessing:

      + lambda_zage * CE(D_age(z), uniform)                 E_z_age_loss  (E: no age in z)
      D_age minimises CE(D_age(z), own group)               D_age_loss

With no age in z, the only way G can rebuild a face's age is from the label, so G has to learn what each age
looks like from the reconstruction itself, with no classifier whose blind spots it could exploit.
"""

import tensorflow as tf

from face_aging.models.caae.config import DEFAULT_WEIGHTS

# Label smoothing of the age classifier's targets, in its own training and in G_age_loss: neighbouring groups
# (20 and 21 years) are not different enough to be pushed to certainty.
AGE_LABEL_SMOOTHING = 0.1


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


def age_classification_loss(logits, groups):
    """G_age_loss (and the classifier's own loss): cross-entropy of age-group logits against group indices."""
    depth = logits.shape[-1]
    targets = tf.one_hot(groups, depth) * (1.0 - AGE_LABEL_SMOOTHING) + AGE_LABEL_SMOOTHING / depth
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=targets,
                                                                  logits=tf.cast(logits, tf.float32)))


def latent_identity_loss(z_aged, z):
    """id_loss: mean |E(x_t) - sg(E(x))|, the aged face's code against the input's (which gets no gradient here)."""
    return tf.reduce_mean(tf.abs(tf.cast(z_aged, tf.float32) - tf.stop_gradient(tf.cast(z, tf.float32))))


def recipe_losses(terms, aged_logits, target_groups, z_aged, z, age_weight, id_weight):
    """Add the recipe's terms to `terms` (from caae_losses) and to E+G's total. A term whose input is None (its
    option is off) is neither computed nor summarised; the weights may be tensors (0 while pre-training)."""
    if aged_logits is not None:
        terms["G_age_loss"] = age_classification_loss(aged_logits, target_groups)
        # The share of aged faces the frozen classifier puts in their target group: aging, watched while training.
        terms["G_age_accuracy"] = tf.reduce_mean(tf.cast(
            tf.equal(tf.argmax(aged_logits, -1, output_type=tf.int32), tf.cast(target_groups, tf.int32)),
            tf.float32))
        terms["loss_EG"] = terms["loss_EG"] + age_weight * terms["G_age_loss"]
    if z_aged is not None:
        terms["id_loss"] = latent_identity_loss(z_aged, z)
        terms["loss_EG"] = terms["loss_EG"] + id_weight * terms["id_loss"]
    return terms


def age_confusion_loss(logits):
    """E_z_age_loss: cross-entropy of D_age's logits against the uniform distribution over the groups (the code
    tells D_age nothing about age); the smallest value is log(number of groups)."""
    depth = logits.shape[-1]
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), 1.0 / depth), logits=tf.cast(logits, tf.float32)))


def age_blind_losses(terms, d_age_logits, own_groups, zage_weight):
    """Add D_age's loss and E's confusion term (to E+G's total) to `terms`."""
    terms["D_age_loss"] = age_classification_loss(d_age_logits, own_groups)
    terms["E_z_age_loss"] = age_confusion_loss(d_age_logits)
    terms["loss_EG"] = terms["loss_EG"] + zage_weight * terms["E_z_age_loss"]
    return terms
