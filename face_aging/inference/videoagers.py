"""The two models as a video ages faces with them: a batch of aligned crops (the faces of one frame) to the ages asked
for, each face with its own gender and age now, fixed for its whole track (face_aging.inference.video). The same
functions test mode ages a photo's faces with: the CAAE's `age_faces` (residual aging, the ghost guard) and PAGAN's
generators blended by years (pagan.infer.change_weights)."""

import numpy as np
import tensorflow as tf

from face_aging.data import labels as L


class CAAEFrames:
    """A restored CAAE (caae.infer.restore_aging_model) and its residual strength."""
    name = "CAAE"
    template = "caae"

    def __init__(self, model, residual):
        self.model, self.residual = model, residual
        self.size = model.config.image_size

    def own_ages(self, faces, genders):
        """Each face's age now as the CAAE reads it, for --input_age estimate: the centre of the group whose
        reconstruction is closest (caae.residual.own_groups), once per face rather than in every frame."""
        from face_aging.caae.model import gender_labels
        from face_aging.caae.residual import own_groups
        ages = np.zeros(len(faces))
        for gender in set(int(g) for g in genders):
            members = [i for i, g in enumerate(genders) if int(g) == gender]
            chunk = faces[members]
            groups = own_groups(tf.constant(chunk), tf.constant(self.model.age_progression(
                chunk, gender_labels(gender, len(members))))).numpy()
            ages[members] = [L.group_centre_age(g) for g in groups]
        return ages

    def age(self, faces, genders, own_ages, ages):
        """[A, N, S, S, 3] in [-1, 1]: every face (`faces` [N, S, S, 3]) at every age of `ages`."""
        from face_aging.caae.model import gender_labels
        out = np.empty((len(ages),) + faces.shape, np.float32)
        for gender in set(int(g) for g in genders):
            members = [i for i, g in enumerate(genders) if int(g) == gender]
            out[:, members] = self.model.age_faces(faces[members], list(ages), gender_labels(gender, len(members)),
                                                   self.residual, np.asarray(own_ages, np.float64)[members])
        return out


class PAGANFrames:
    """PAGAN's trained generators (pagan.infer.load_generators). Only the generators the ages need are run: a face
    aged to 70 needs the 51+ one alone."""
    name = "PAGAN"

    def __init__(self, generators):
        from face_aging.pagan.infer import face_template
        self.generators = generators
        self.template = face_template(generators)
        self.size = max(config.image_size for _, config, _ in generators.values())
        # Traced once per generator: called eagerly, Keras's per-layer overhead is most of a small batch's time.
        self.traced = {k: tf.function(lambda x, g=generator: g(x, training=False), reduce_retracing=True)
                       for k, (generator, _, _) in generators.items()}

    def own_ages(self, faces, genders):
        from face_aging.pagan.infer import UNKNOWN_INPUT_AGE
        return np.full(len(faces), UNKNOWN_INPUT_AGE)

    def age(self, faces, genders, own_ages, ages):
        from face_aging.pagan.infer import UNKNOWN_INPUT_AGE, change_weights
        trained = sorted(self.generators)
        own = [float(a) if np.isfinite(a) else UNKNOWN_INPUT_AGE for a in own_ages]
        weights = [[change_weights(own[i], age, trained) for i in range(len(faces))] for age in ages]
        needed = sorted({k for per_age in weights for w in per_age for k in w})
        changes = {}
        for k in needed:
            _, config, _ = self.generators[k]
            inputs = faces if config.image_size == self.size else tf.image.resize(
                faces, [config.image_size] * 2, antialias=True)
            output = self.traced[k](tf.constant(inputs, tf.float32))
            if config.image_size != self.size:
                output = tf.image.resize(output, [self.size] * 2)
            changes[k] = np.asarray(output) - faces
        out = np.empty((len(ages),) + faces.shape, np.float32)
        for a in range(len(ages)):
            for i in range(len(faces)):
                change = sum((w * changes[k][i] for k, w in weights[a][i].items()), np.zeros(faces.shape[1:]))
                out[a, i] = np.clip(faces[i] + change, -1.0, 1.0)
        return out


def frames_ager(ager):
    """The video ager for one of the page's (face_aging.inference.app: CAAEAger, PAGANAger), or any object holding a
    CAAE `model` and `residual`, or PAGAN `generators`."""
    if hasattr(ager, "generators"):
        return PAGANFrames(ager.generators)
    return CAAEFrames(ager.model, ager.residual)
