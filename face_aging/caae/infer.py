"""CAAE test mode: age the faces in a folder (or one image) with a trained model.

Writes, as the original did, save/test/test_as_male.png and test_as_female.png: every face (columns) at every age
group (rows, young at the top), once with each gender label, and save/test/input.png. Unlike the original it takes
any number of faces (>= 1, in sorted order; more than 10 go onto further pages) and, with a target age, one aged
image per input.
"""

import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf

from face_aging import images as imio
from face_aging.caae import tf1_checkpoint
from face_aging.caae.model import AgingModel, CAAEConfig, checkpoint_value, gender_labels
from face_aging.data import labels as L
from face_aging.data.pipeline import list_image_files, printable, read_face, warn_skipped
from face_aging.errors import FaceAgingError
from face_aging.rundir import RunDir

FACES_PER_PAGE = 10


@dataclasses.dataclass
class TestOptions:
    testdir: str
    savedir: str = "save"
    target_age: int = None
    gender: str = "auto"          # for --target_age: auto (from a UTKFace-style name), male or female
    init_checkpoint: str = ""
    config: CAAEConfig = dataclasses.field(default_factory=CAAEConfig)


class TestModeError(FaceAgingError, RuntimeError):
    """Test mode cannot run; the message names the folder or checkpoint and what to do."""


def load_test_images(testdir, image_size):
    """(images in [-1, 1] [N, S, S, 3], file paths) of every readable JPEG/PNG in `testdir` (or the one file).

    Any file name is taken (labels are not needed here), duplicates included: each file asked for gets its output.
    Unusable files are skipped with one warning naming each and why; TestModeError when none is left.
    """
    if os.path.isfile(testdir):
        candidates = [testdir]
    else:
        try:
            candidates = list_image_files(testdir)
        except (FileNotFoundError, NotADirectoryError):
            raise TestModeError(f"--testdir {printable(testdir)!r} does not exist") from None
        except OSError as error:
            raise TestModeError(f"--testdir {printable(testdir)!r} cannot be listed "
                                f"({error.strerror or error})") from None
    faces, paths, skipped = [], [], []
    for path in candidates:
        face, reason = read_face(path, image_size)
        if face is None:
            skipped.append((path, reason))
        else:
            faces.append(face)
            paths.append(path)
    warn_skipped(skipped, testdir)
    if not faces:
        found = (f"{len(candidates)} candidate file(s), none usable (each is named above with the reason)"
                 if candidates else "no .jpg/.jpeg/.png files")
        raise TestModeError(f"--testdir {printable(testdir)!r} holds no readable JPEG or PNG image ({found}); "
                            f"nothing is left to age")
    return np.stack(faces), paths


def restore_aging_model(config, savedir, init_checkpoint=""):
    """E and G from the run's latest checkpoint, else from an original TF1 checkpoint; (model, description)."""
    model = AgingModel(config)
    run = RunDir(savedir)
    latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
    if latest and not tf1_checkpoint.is_tf1_checkpoint(latest):
        try:
            model.weights_checkpoint().restore(latest).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as error:
            raise TestModeError(f"Checkpoint {latest} does not fit a {config.image_size}x{config.image_size} model "
                                f"(z_dim {config.z_dim}): {str(error).splitlines()[0]}. Pass the --image_size it was "
                                f"trained with.") from None
        return model, f"{latest} (step {checkpoint_value(latest, 'step')})"
    source = latest or init_checkpoint
    if source:
        tf1_checkpoint.load_tf1_checkpoint(source, model.encoder, model.generator)
        return model, f"original TF1 checkpoint {source}"
    raise TestModeError(f"No checkpoint in {run.checkpoint}: train first (python main.py --model caae --is_train "
                        f"--savedir {savedir}) or pass --init_checkpoint with an original CAAE checkpoint")


def gender_for(path, default):
    """0/1 from a UTKFace-style name when `default` is 'auto' and the name carries it, else the default."""
    if default != "auto":
        return L.GENDER_NAMES.index(default)
    try:
        return L.parse_utkface_name(os.path.basename(path))[1]
    except L.LabelError:
        logging.warning("%s: gender unknown (not an AGE_GENDER_RACE_* name); aging as male. Pass --gender female "
                        "to change it.", os.path.basename(path))
        return 0


def run_test(options):
    """Age the faces in options.testdir; returns the paths written."""
    config = options.config
    model, source = restore_aging_model(config, options.savedir, options.init_checkpoint)
    print(f"\tLoaded {source}")
    faces, paths = load_test_images(options.testdir, config.image_size)
    test_dir = RunDir(options.savedir).test
    written = []
    for page, start in enumerate(range(0, len(faces), FACES_PER_PAGE)):
        chunk = faces[start:start + FACES_PER_PAGE]
        suffix = "" if page == 0 else f"_p{page + 1:02d}"
        for gender, name in enumerate(L.GENDER_NAMES):
            progression = model.age_progression(chunk, gender_labels(gender, len(chunk)))
            path = os.path.join(test_dir, f"test_as_{name}{suffix}.png")
            imio.save_grid(progression.reshape((-1,) + chunk.shape[1:]), path, rows=L.NUM_AGE_GROUPS)
            written.append(path)
        path = os.path.join(test_dir, f"input{suffix}.png")
        imio.save_grid(np.tile(chunk, (L.NUM_AGE_GROUPS, 1, 1, 1)), path, rows=L.NUM_AGE_GROUPS)
        written.append(path)
    if options.target_age is not None:
        group = int(L.age_to_group(options.target_age))
        genders = np.array([gender_for(p, options.gender) for p in paths])
        aged = model.age_to_groups(faces, np.full(len(faces), group), L.plus_minus_one_hot(genders, 2))
        for path, image in zip(paths, imio.to_uint8(aged)):
            stem = os.path.basename(path).split(".")[0]
            out = os.path.join(test_dir, f"{stem}_age{options.target_age}.png")
            imio.save_image(image, out)
            written.append(out)
        print(f"\tAged {len(faces)} face(s) to {options.target_age} (group {L.AGE_GROUP_NAMES[group]})")
    print(f"\tDone! {len(faces)} face(s); results are saved as {test_dir}/test_as_xxx.png")
    return written
