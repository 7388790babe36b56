"""The CAAE as an Ager (face_aging/ager.py): E and G of a run, an original TF1 checkpoint or the bundled model, aging
faces to ages in years with G's age label interpolated between its groups (labels.interpolated_group_labels) and,
at a residual strength above 0, only G's change from the face's own age added to the face (caae/residual.py)."""

import os

import numpy as np
import tensorflow as tf

from face_aging import images as imio
from face_aging.models.ager import Ager, EvalOutputs, ExportParts, eval_targets
from face_aging.models.caae import bundled
from face_aging.models.caae.config import CAAEConfig
from face_aging.models.caae.infer import input_groups, residual_strength, restore_aging_model
from face_aging.models.caae.model import gender_labels
from face_aging.models.caae.residual import describe_outputs, own_groups
from face_aging.data import labels as L
from face_aging.training.rundir import RunDir

FACES_PER_PAGE = 10          # test mode's test_as_{male,female}.png: columns of faces per sheet


def run_architecture(savedir, init_checkpoint="", architecture=None):
    """The CAAEConfig a trained CAAE is rebuilt with: `architecture` (a CAAEConfig, or a dict of the flags given
    explicitly) where it says, else what the run recorded in its options.json, else the bundled model's when the
    run has no checkpoint and no original TF1 checkpoint is given. Says which values came from where."""
    if isinstance(architecture, CAAEConfig):
        return architecture
    given = dict(architecture or {})
    run = RunDir(savedir)
    recorded, where = run.read_options(), f"{savedir}/options.json"
    if not tf.io.gfile.exists(run.path("checkpoint", "checkpoint")) and not init_checkpoint and bundled.available():
        recorded, where = bundled.architecture(), bundled.OPTIONS
    fields = dict(given)
    for name in CAAEConfig.ARCHITECTURE:
        if name in recorded and name not in given:
            fields[name] = recorded[name]
            if recorded[name] != getattr(CAAEConfig, name):
                print(f"\tUsing --{name}={recorded[name]} from {where}")
    return CAAEConfig(**{name: value for name, value in fields.items() if name in CAAEConfig.ARCHITECTURE})


class CAAEAger(Ager):
    name = "CAAE"
    key = "caae"
    template = "caae"
    takes_gender = True
    reads_own_age = True
    sheets = "test_as_xxx.png: every face at every age group"
    reconstructs = True

    def __init__(self, model, source, residual):
        self.model, self.source, self.residual = model, source, residual
        self.size = model.config.image_size

    @classmethod
    def load(cls, savedir, init_checkpoint="", residual=None, architecture=None):
        """The CAAE test mode uses for these flags: the run's checkpoint, an original one, else the bundled model;
        `residual` as --residual (None: the model's own strength)."""
        config = run_architecture(savedir, init_checkpoint, architecture)
        model, source = restore_aging_model(config, savedir, init_checkpoint)
        return cls(model, source, residual_strength(residual, model))

    def describe(self, input_age="auto"):
        return [f"CAAE: {self.source}", f"Outputs: {describe_outputs(self.residual, input_age)} (--residual)"]

    def age(self, faces, genders, own_ages, ages):
        out = np.empty((len(ages),) + tuple(faces.shape), np.float32)
        genders = np.asarray(genders, int)
        own_ages = np.asarray(own_ages, np.float64)
        for gender in sorted(set(genders.tolist())):
            members = np.flatnonzero(genders == gender)
            out[:, members] = self.model.age_faces(faces[members], list(ages), gender_labels(gender, len(members)),
                                                   self.residual, own_ages[members])
        return out

    def own_ages(self, faces, genders):
        """The centre of the group whose reconstruction is closest (caae.residual.own_groups)."""
        ages = np.zeros(len(faces))
        genders = np.asarray(genders, int)
        for gender in sorted(set(genders.tolist())):
            members = np.flatnonzero(genders == gender)
            chunk = faces[members]
            groups = own_groups(tf.constant(chunk), tf.constant(self.model.age_progression(
                chunk, gender_labels(gender, len(members))))).numpy()
            ages[members] = [L.group_centre_age(g) for g in groups]
        return ages

    def overview(self, faces, genders, own_ages, names, lift, out_dir):
        """test_as_male.png, test_as_female.png: every face (columns) at every group (rows, young at the top), once
        with each gender label, and input.png, as the original wrote them; pages of 10 faces (_p02, ...)."""
        own = input_groups(own_ages, "auto")
        written = []
        for page, start in enumerate(range(0, len(faces), FACES_PER_PAGE)):
            chunk = faces[start:start + FACES_PER_PAGE]
            suffix = "" if page == 0 else f"_p{page + 1:02d}"
            for gender, name in enumerate(L.GENDER_NAMES):
                progression = self.model.age_progression(chunk, gender_labels(gender, len(chunk)), self.residual,
                                                         own[start:start + len(chunk)])
                path = os.path.join(out_dir, f"test_as_{name}{suffix}.png")
                imio.save_grid(progression.reshape((-1,) + chunk.shape[1:]), path, rows=L.NUM_AGE_GROUPS)
                written.append(path)
            path = os.path.join(out_dir, f"input{suffix}.png")
            imio.save_grid(np.tile(chunk, (L.NUM_AGE_GROUPS, 1, 1, 1)), path, rows=L.NUM_AGE_GROUPS)
            written.append(path)
        return written

    def eval_targets(self):
        return eval_targets(L.AGE_GROUP_UPPER, L.AGE_GROUP_NAMES)

    def eval_outputs(self, faces, real_ages, genders, input_age="auto"):
        """Every face at each of the 10 groups (G's group labels, residual aging from its own group), and G's
        reconstruction of each labelled face at its own group."""
        own = input_groups(real_ages, input_age)
        labels = L.plus_minus_one_hot(np.where(genders < 0, 0, genders), 2)
        outputs = [[] for _ in range(L.NUM_AGE_GROUPS)]
        for start in range(0, len(faces), 50):
            progression = self.model.age_progression(faces[start:start + 50], labels[start:start + 50],
                                                     self.residual, own[start:start + 50])
            for g in range(L.NUM_AGE_GROUPS):
                outputs[g].append(progression[g])
        known = np.isfinite(real_ages)
        rebuilt = None
        if known.any():
            rebuilt = (known, np.clip(self.model.age_to_groups(
                faces[known], L.age_to_group(real_ages[known].astype(int)), labels[known]), -1, 1))
        return EvalOutputs(outputs=[np.concatenate(o) for o in outputs], source=self.source,
                           residual={"strength": self.residual,
                                     "input_age": input_age if self.residual > 0 else None},
                           reconstructed=rebuilt)

    def export(self, folder, path):
        from face_aging.models.caae.serving import export_parts
        return export_parts(self.model, folder, path, self.source, self.residual)

