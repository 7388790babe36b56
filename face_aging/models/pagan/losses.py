"""PAGAN's objective (Yang et al., CVPR 2018, section 3), in one place and named as in the paper.

x: young faces (cluster 0), y: real faces of the target cluster, G(x): generated faces, D(phi_age(.)): the pyramid
discriminator's 12x3 map on the age classifier's features, phi_id: the VGG-Face descriptor.

    L_D     = 1/2 E_y[(D(phi(y)) - 1)^2] + 1/2 E_x[D(phi(G(x)))^2 + D(phi(x))^2]
    L_G_age = E_x[(D(phi(G(x))) - 1)^2]
    L_ide   = E_x[ || phi_id(x) - phi_id(G(x)) ||^2 ]
    L_pix   = E_x[ mean over pixels (G(x) - x)^2 ]   (in 0-255 pixel units)
    L_G     = lambda_adv L_G_age + lambda_ide L_ide + lambda_pix L_pix   (L_pix only every 5th G step)
              + lambda_chroma L_chroma                                      (the recipe's option, 0 by default)
              + lambda_est L_est                                            (the recipe's option, 0 by default)
              + lambda_fine L_fine                                          (the recipe's option, 0 by default)

    L_chroma = E_x[ mean over pixels of the squared chroma (Cb, Cr) of G(x) - x ]  (0-255 units)
    L_est    = E_x[ max(0, a_target - A(G(x)))^2 ]   A: the package's age estimator's reading in years, over random
                                                     views of G(x) blurred by a pixel (estimator_judge.AgeReading)
    L_fine   = E_x[ mean over pixels of (c - g_3 * c)^2 ]    c = G(x) - x in 0-255 units, g_3 * c its blur by a Gaussian
                                                     of 3 px: the fine part of the change (the change split's)

Real young faces are negatives for D (not only generated ones): D must learn age, not realism alone.

The pixel term is measured in 0-255 units (images here are in [-1, 1], so differences are scaled by 127.5). The
paper does not state the unit, but its weights only balance in it: in [-1, 1] units 0.20 * L_pix is ~0.1 against
750 * L_G_age ~ 750, and the generator is free to turn faces into whatever fools phi_age (seen in a 64x64 run: pure
texture after 200 iterations); in 0-255 units it is ~2,000 at the start, and falls as G learns to keep the face.
"""

import tensorflow as tf

from face_aging import colour
from face_aging.models.pagan.networks import coarse_part


def d_loss(d_old, d_generated, d_young):
    """Least-squares discriminator loss: target-cluster faces -> 1; generated and real young faces -> 0."""
    return 0.5 * tf.reduce_mean(tf.square(d_old - 1.0)) + 0.5 * (
        tf.reduce_mean(tf.square(d_generated)) + tf.reduce_mean(tf.square(d_young)))


def g_age_loss(d_generated):
    """Least-squares generator loss: generated faces should be judged as the target cluster."""
    return tf.reduce_mean(tf.square(d_generated - 1.0))


def identity_loss(id_young, id_generated):
    """Squared Euclidean distance of the face descriptors, averaged over the batch."""
    return tf.reduce_mean(tf.reduce_sum(tf.square(id_young - id_generated), axis=-1))


def pixel_loss(young, generated, scale=127.5):
    """L2 between G(x) and x, averaged over pixels; images in [-1, 1], the difference in 0-255 units (scale)."""
    return tf.reduce_mean(tf.square((generated - young) * scale))


CHROMA = colour.CHROMA      # the chroma rows (Cb, Cr) of an RGB difference


def chroma_loss(young, generated, scale=127.5):
    """L2 of the chroma (Cb, Cr) of the change G(x) - x, in 0-255 units: a change of colour costs, a change of
    brightness (wrinkles, shadows, bags under the eyes, lighter hair) does not. Seen without it (docs/pagan_recipe.md):
    red and green dots and green and magenta patches, the cheapest way to move a small age classifier's features."""
    chroma = tf.tensordot((generated - young) * scale, tf.constant(CHROMA, generated.dtype), [[3], [1]])
    return tf.reduce_mean(tf.square(chroma))


# The change split's Gaussian (networks.PAGANGenerator, docs/pagan_recipe.md): what is finer than it is the "fine" part.
FINE_SIGMA = 3.0


def fine_loss(young, generated, scale=127.5, sigma=FINE_SIGMA):
    """L2 of the fine part of the change G(x) - x (what a Gaussian of `sigma` px does not keep), in 0-255 units. Pulled
    up by an age estimator, G learns streaks and scratches it reads as age, and they cost likeness; folds, shading and
    greying are coarse, and cost nothing here (docs/pagan_recipe.md, "The fine part of the change")."""
    change = (generated - young) * scale
    return tf.reduce_mean(tf.square(change - coarse_part(change, sigma)))


def estimator_age_loss(estimated_age, target):
    """The squared shortfall (years) of the estimator's reading of G(x) below the target age: faces already read as
    old as the target cost nothing, so the term pulls the age up without pushing past it."""
    return tf.reduce_mean(tf.square(tf.nn.relu(target - estimated_age)))


def pixel_step(g_step, every):
    """1.0 on every `every`-th generator step (counting from the first), else 0.0: a tensor, so the compiled step
    does not retrace when the pixel term switches on and off."""
    return tf.cast(tf.equal(tf.math.floormod(g_step, every), 0), tf.float32)


def pagan_losses(d_old, d_generated, d_young, id_young, id_generated, young, generated, use_pixel, weights,
                 estimated_age=None):
    """Every term of the objective (as scalars) plus the totals `L_D` and `L_G`. `estimated_age` [N]: the estimator's
    reading of G(x) when L_est is on (then `L_est` and the batch's mean reading `est_age` are terms too)."""
    terms = {
        "L_D": d_loss(d_old, d_generated, d_young),
        "L_G_age": g_age_loss(d_generated),
        "L_ide": identity_loss(id_young, id_generated),
        "L_pix": pixel_loss(young, generated, weights.pixel_scale),
        "L_chroma": chroma_loss(young, generated, weights.pixel_scale),
        "D_old": tf.reduce_mean(d_old),
        "D_generated": tf.reduce_mean(d_generated),
        "D_young": tf.reduce_mean(d_young),
    }
    terms["L_G"] = (weights.adversarial * terms["L_G_age"] + weights.identity * terms["L_ide"]
                    + weights.pixel * use_pixel * terms["L_pix"] + weights.chroma * terms["L_chroma"])
    if weights.fine > 0:
        terms["L_fine"] = fine_loss(young, generated, weights.pixel_scale)
        terms["L_G"] = terms["L_G"] + weights.fine * terms["L_fine"]
    if estimated_age is not None:
        terms["L_est"] = estimator_age_loss(estimated_age, weights.estimator_target)
        terms["est_age"] = tf.reduce_mean(estimated_age)
        terms["L_G"] = terms["L_G"] + weights.estimator * terms["L_est"]
    return terms
