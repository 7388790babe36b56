"""CAAE test mode: age the faces in a folder (or one image) with a trained model -- face chips or ordinary photos.

Inputs (--testdir, a folder or one image): every JPEG/PNG. With --align auto (the default) an image that already is
a face chip is used as it is -- a UTKFace chip name (AGE_GENDER_RACE_DATE.jpg.chip.jpg) says so without detection;
otherwise a square image whose one face sits where UTKFace's chips have it, or a square one without a detectable
face -- and in any other photo every face is detected (MTCNN), aligned to the UTKFace chip convention and aged;
--align on always detects, --align off uses every image as it is (test mode's behaviour before photos were
supported: centre square, resized). Photos in which no face is found are listed in one warning and the run goes on
with the rest. The same input handling serves PAGAN's test mode (face_aging.pagan.infer).

Writes to SAVEDIR/test/ (NAME = the file's stem, plus _faceK when a photo holds several faces):
- test_as_male.png, test_as_female.png: every face (columns) at every age group (rows, young at the top), once with
  each gender label, and input.png, as the original did; pages of 10 faces (_p02, ...) for more.
- aligned/NAME.png: the crop the model saw, for every face that was detected and aligned.
- --target_age N: NAME_age{N}.png, the face at N years.
- --ages 10,30,50,70: NAME_ages.png, the input then the face at each age, left to right.
- --gif: NAME.gif, the face through all ten age groups (400 ms a frame, looping).
- --paste_back (with --target_age or --ages): PHOTO_age{N}_photo.jpg (.png for a PNG photo) for every photo and age,
  the whole photo with each of its faces replaced by the aged one.
The per-face outputs use each face's gender: --gender, or with auto the one a UTKFace-style name carries, else male.
"""

import dataclasses
import io
import logging
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from face_aging import images as imio
from face_aging.caae import bundled, tf1_checkpoint
from face_aging.caae.model import AgingModel, CAAEConfig, checkpoint_value, gender_labels
from face_aging.data import holdout
from face_aging.data import labels as L
from face_aging.data.pipeline import list_image_files, printable, read_face, scale_to_unit, warn_skipped
from face_aging.errors import FaceAgingError
from face_aging.eval.report import describe_outputs
from face_aging.fileio import atomic_write
from face_aging.rundir import RunDir

FACES_PER_PAGE = 10
GIF_FRAME_MS = 400
ALIGN_MODES = ("auto", "on", "off")


@dataclasses.dataclass
class TestOptions:
    testdir: str
    savedir: str = "save"
    target_age: int = None
    gender: str = "auto"          # per-face outputs: auto (from a UTKFace-style name, else male), male or female
    init_checkpoint: str = ""
    ages: tuple = ()              # --ages: NAME_ages.png strips
    gif: bool = False             # --gif: NAME.gif
    paste_back: bool = False      # --paste_back: the aged faces back in the photos (needs target_age or ages)
    align: str = "auto"           # auto | on | off (see the module docstring)
    holdout: str = "none"         # only the faces of this held-out set (face_aging.data.holdout)
    residual: float = None        # residual aging strength (face_aging.caae.residual); None: the model's own
    input_age: object = "auto"    # residual aging's own group: auto (a UTKFace-style name), estimate, or years
    config: CAAEConfig = dataclasses.field(default_factory=CAAEConfig)


class TestModeError(FaceAgingError, RuntimeError):
    """Test mode cannot run; the message names the folder or checkpoint and what to do."""


def list_test_files(testdir):
    """The candidate image files of --testdir: the one file, or the folder's JPEG/PNG names in sorted order."""
    if os.path.isfile(testdir):
        return [testdir]
    try:
        return list_image_files(testdir)
    except (FileNotFoundError, NotADirectoryError):
        raise TestModeError(f"--testdir {printable(testdir)!r} does not exist") from None
    except OSError as error:
        raise TestModeError(f"--testdir {printable(testdir)!r} cannot be listed "
                            f"({error.strerror or error})") from None


def _nothing_readable(testdir, candidates):
    found = (f"{len(candidates)} candidate file(s), none usable (each is named above with the reason)"
             if candidates else "no .jpg/.jpeg/.png files")
    return TestModeError(f"--testdir {printable(testdir)!r} holds no readable JPEG or PNG image ({found}); "
                         f"nothing is left to age")


def load_test_images(testdir, image_size, held_out="none"):
    """(images in [-1, 1] [N, S, S, 3], file paths) of every readable JPEG/PNG in `testdir` (or the one file), each
    used as it is (turned upright by its EXIF orientation, centre square, resized): the chips of --eval.

    Any file name is taken (labels are not needed here), duplicates included: each file asked for gets its output.
    Unusable files are skipped with one warning naming each and why; TestModeError when none is left.
    `held_out` (test | val) keeps only the files of that held-out set (face_aging.data.holdout).
    """
    candidates = holdout.select(list_test_files(testdir), held_out)
    if held_out != "none":
        print(f"\tThe {held_out} set of {printable(testdir)}: {len(candidates)} faces (docs/caae_recipe.md)")
    faces, paths, skipped = [], [], []
    for path in candidates:
        face, reason = read_face(path, image_size, upright=True)
        if face is None:
            skipped.append((path, reason))
        else:
            faces.append(face)
            paths.append(path)
    warn_skipped(skipped, testdir)
    if not faces:
        raise _nothing_readable(testdir, candidates)
    return np.stack(faces), paths


# --- Faces from photos (CAAE and PAGAN test mode) -------------------------------------------------------------------

@dataclasses.dataclass
class TestFaces:
    """The faces test mode ages: crops (face_aging.faces.inputs.FaceCrop), unique output names, model inputs."""
    crops: list
    names: list
    images: np.ndarray            # float32 [N, S, S, 3] in [-1, 1]


def no_face_message(paths, align):
    names = ", ".join(printable(os.path.basename(p)) for p in paths)
    hint = "pass --align off to use them as they are" if align != "off" else "they are skipped"
    return f"No face found in {len(paths)} photo(s): {names} -- {hint}"


def _unique_names(crops):
    """Each crop's output name; a name already taken (a.jpg and a.png) gets _2, _3, ..."""
    names, seen = [], set()
    for crop in crops:
        name, k = crop.name, 2
        while name in seen:
            name, k = f"{crop.name}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


def _model_input(crop, size):
    """A crop in [-1, 1]: an image used as it is exactly as --eval and --align off read it (no rounding to uint8
    between the resize and the model); an aligned crop is the uint8 crop scaled."""
    if crop.image is not None and crop.image.shape[0] == size:
        return crop.image
    image = np.asarray(crop.crop)
    if image.shape[:2] != (size, size):
        image = tf.image.resize(image, [size, size], antialias=True).numpy()
    return scale_to_unit(image).numpy()


def collect_test_faces(testdir, model, size, align="auto", test_dir=None, held_out="none"):
    """The faces of every image in `testdir` for `model` ("caae" | "pagan") at `size`, per --align.

    Skipped files are named in one warning, photos without a face in another; TestModeError only when no face is
    left at all. With `test_dir`, each aligned crop is saved as test_dir/aligned/NAME.png (what the model sees).
    `held_out` (test | val) keeps only the files of that held-out set (face_aging.data.holdout).
    """
    from face_aging.faces.inputs import collect_faces
    candidates = holdout.select(list_test_files(testdir), held_out)
    crops, no_face, skipped = collect_faces(candidates, model, size, align)
    warn_skipped(skipped, testdir)
    if no_face:
        logging.warning("%s", no_face_message(no_face, align))
    if not crops:
        if no_face:
            raise TestModeError(f"No face found in any image of --testdir {printable(testdir)!r} "
                                f"({len(no_face)} photo(s), each named above); nothing is left to age. Pass "
                                f"--align off to age the images as they are.")
        raise _nothing_readable(testdir, candidates)
    names = _unique_names(crops)
    if test_dir is not None:
        for crop, name in zip(crops, names):
            if crop.matrix is not None:
                imio.save_image(np.asarray(crop.crop), os.path.join(test_dir, "aligned", f"{name}.png"))
    images = np.stack([_model_input(crop, size) for crop in crops]).astype(np.float32)
    return TestFaces(crops=crops, names=names, images=images)


def save_gif(frames, path, duration=GIF_FRAME_MS):
    """uint8 [F, H, W, 3] frames as an animated GIF looping forever, written atomically.

    The GIF writer merges a frame identical to the one before it into that one (a longer frame)."""
    pictures = [Image.fromarray(np.asarray(frame)) for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration, loop=0)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def _photo_stem(path):
    return os.path.basename(path).split(".")[0]


def _over_centre_square(photo, face):
    """`photo` with its centre square (what an image used as it is was cut to) replaced by `face`, resized."""
    photo = np.array(photo)
    height, width = photo.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    resized = Image.fromarray(np.asarray(face)).resize((side, side), Image.BICUBIC)
    photo[top:top + side, left:left + side] = np.asarray(resized)[..., :3]
    return photo


def paste_back_photos(crops, aged, ages, test_dir, size):
    """For every photo and age: the photo with each of its faces replaced by the aged one; returns the paths.

    `aged[i][age]` is crop i aged to `age`, uint8 [size, size, 3]. Faces detected in the photo go back through their
    alignment's inverse (face_aging.faces.align.paste_back); an image used as it is gets the aged face over its centre
    square."""
    from face_aging.faces.align import paste_back
    by_photo = {}
    for i, crop in enumerate(crops):
        by_photo.setdefault(crop.source, []).append(i)
    stems, written = {}, []
    for source, indices in by_photo.items():
        stem = _photo_stem(source)
        if stem in stems.values():
            stem = f"{stem}_{len(stems) + 1}"
        stems[source] = stem
        original = np.asarray(crops[indices[0]].photo())
        extension = ".jpg" if source.lower().endswith((".jpg", ".jpeg")) else ".png"
        for age in ages:
            photo = original
            for i in indices:
                face = aged[i][age]
                if crops[i].matrix is None:
                    photo = _over_centre_square(photo, face)
                else:
                    photo = paste_back(photo, face, crops[i].matrix, size)
            path = os.path.join(test_dir, f"{stem}_age{age}_photo{extension}")
            imio.save_image(np.asarray(photo, np.uint8), path, jpeg_quality=95)
            written.append(path)
    return written


def requested_ages(target_age, ages):
    """The ages asked for by --target_age and --ages, each once, in that order."""
    out = [] if target_age is None else [int(target_age)]
    for age in ages or ():
        if int(age) not in out:
            out.append(int(age))
    return out


# --- CAAE -----------------------------------------------------------------------------------------------------------

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
    size = config.image_size
    model, source = restore_aging_model(config, options.savedir, options.init_checkpoint)
    residual = residual_strength(options.residual, model)
    print(f"\tLoaded {source}\n\tOutputs: {describe_outputs(residual, options.input_age)} (--residual)")
    test_dir = RunDir(options.savedir).test
    found = collect_test_faces(options.testdir, "caae", size, options.align, test_dir, options.holdout)
    faces, names, crops = found.images, found.names, found.crops
    ages = list(options.ages or ())
    pasted = requested_ages(options.target_age, ages) if options.paste_back else []
    per_face = options.target_age is not None or ages or options.gif or pasted
    genders = {}
    if per_face:
        for crop in crops:
            if crop.source not in genders:
                genders[crop.source] = gender_for(crop.source, options.gender)
    own = input_groups([name_age(crop.source) for crop in crops], options.input_age)
    written, aged = [], [dict() for _ in crops]
    for page, start in enumerate(range(0, len(faces), FACES_PER_PAGE)):
        chunk = faces[start:start + FACES_PER_PAGE]
        suffix = "" if page == 0 else f"_p{page + 1:02d}"
        progressions = []                                   # per gender: [10, n, S, S, 3]
        for gender, name in enumerate(L.GENDER_NAMES):
            progression = model.age_progression(chunk, gender_labels(gender, len(chunk)), residual,
                                                own[start:start + FACES_PER_PAGE])
            progressions.append(progression)
            path = os.path.join(test_dir, f"test_as_{name}{suffix}.png")
            imio.save_grid(progression.reshape((-1,) + chunk.shape[1:]), path, rows=L.NUM_AGE_GROUPS)
            written.append(path)
        path = os.path.join(test_dir, f"input{suffix}.png")
        imio.save_grid(np.tile(chunk, (L.NUM_AGE_GROUPS, 1, 1, 1)), path, rows=L.NUM_AGE_GROUPS)
        written.append(path)
        if not per_face:
            continue
        for j in range(len(chunk)):
            i = start + j
            groups = progressions[genders[crops[i].source]][:, j]       # this face, its gender: [10, S, S, 3]
            if options.target_age is not None:
                out = os.path.join(test_dir, f"{names[i]}_age{options.target_age}.png")
                imio.save_image(imio.to_uint8(groups[L.age_to_group(options.target_age)]), out)
                written.append(out)
            if ages:
                out = os.path.join(test_dir, f"{names[i]}_ages.png")
                imio.save_grid(np.stack([chunk[j]] + [groups[L.age_to_group(a)] for a in ages]), out, rows=1)
                written.append(out)
            if options.gif:
                out = os.path.join(test_dir, f"{names[i]}.gif")
                save_gif(imio.to_uint8(groups), out)
                written.append(out)
            for age in pasted:
                aged[i][age] = imio.to_uint8(groups[L.age_to_group(age)])
    if pasted:
        written += paste_back_photos(crops, aged, pasted, test_dir, size)
    if options.target_age is not None:
        group = int(L.age_to_group(options.target_age))
        print(f"\tAged {len(faces)} face(s) to {options.target_age} (group {L.AGE_GROUP_NAMES[group]})")
    extras = [label for flag, label in ((options.target_age is not None, f"NAME_age{options.target_age}.png"),
                                        (ages, "NAME_ages.png"), (options.gif, "NAME.gif"),
                                        (pasted, "PHOTO_ageN_photo.*")) if flag]
    print(f"\tDone! {len(faces)} face(s) from {len(set(c.source for c in crops))} image(s); results are saved as "
          f"{test_dir}/test_as_xxx.png" + (f" and {', '.join(extras)}" if extras else ""))
    return written
