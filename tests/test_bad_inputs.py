"""The bad-input corpus (docs/bad_inputs.md) through every entry point: CAAE training and test mode (main.py),
evaluation, PAGAN data preparation (and the PAGAN input stream on its manifests) and the VGG-Face import.

Every case must be either used (and decoded correctly) or skipped with a warning naming the file and the reason; a
run stops only when nothing usable is left, with a message saying so.
"""

import io
import logging
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import TINY_FLAGS, call_main, damaged_jpeg
from face_aging.data import pipeline


def _reads_unreadable_files():
    """True where this process can read a chmod 000 file (root, or a process with CAP_DAC_OVERRIDE)."""
    import tempfile
    fd, path = tempfile.mkstemp()
    try:
        os.write(fd, b"x")
        os.close(fd)
        os.chmod(path, 0)
        try:
            with open(path, "rb"):
                return True
        except PermissionError:
            return False
    finally:
        os.remove(path)


READS_CHMOD_000 = _reads_unreadable_files()
ROOT_READS_ALL = (f"running as root (euid {os.geteuid()}) or with CAP_DAC_OVERRIDE, which can read a chmod 000 "
                  f"file: the unreadable-file case cannot happen")
NUM_GOOD = 24          # plain good faces, enough for one batch of 16 after the visualisation hold-out
SIZE = 40              # corpus images (the model is 32x32)


# ---------------------------------------------------------------------------------------------------------------------
# Writers.

def encode(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16_rgb(array16):
    """A 16-bit-per-channel RGB PNG (which Pillow cannot write) of a uint16 [H, W, 3] array."""
    height, width, _ = array16.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array16)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_header_only(width, height):
    """A small file whose PNG header claims width x height (the pixel data is not there)."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def smooth_rgb(seed, size=SIZE):
    """A smooth colour image (JPEG keeps it within a few levels, unlike noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [60 + 150 * (rng.uniform(0.2, 0.8) * x + rng.uniform(0.2, 0.8) * y) / 1.6 for _ in range(3)]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


RGB = smooth_rgb(1)
GREY = smooth_rgb(2)[..., 0]


def write_file(folder, name, data):
    """Write bytes under `name` (str, or bytes for a name that is not UTF-8)."""
    path = os.path.join(os.fsencode(folder), name) if isinstance(name, bytes) else os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------------------------------
# The corpus. Each case: (what, file name, contents or a maker, outcome with labels (train, prepare), outcome
# without (test mode, eval)). An outcome is USED or the text the skip reason must contain.

USED = "used"
MALFORMED = "malformed name"
FIRST_GOOD = "@first good face"          # the duplicate's contents: a copy of the first good face (sorted)


def cmyk_jpeg():
    return encode(Image.fromarray(RGB).convert("CMYK"), "JPEG", quality=95)


def truncated_jpeg(keep=0.75):
    """A JPEG cut short in its picture data (keep=0.75: Pillow still reads the header) or in its header."""
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8)), "JPEG",
                  quality=95)
    return data[:int(len(data) * keep)]


def truncated_png():
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), np.uint8)), "PNG")
    return data[:len(data) // 2]


CASES = [
    # Used everywhere: unusual but valid images (names carry valid UTKFace labels).
    ("PNG named .jpg", "21_0_0_20170101000000201.jpg.chip.jpg", lambda: encode(Image.fromarray(RGB), "PNG"),
     USED, USED),
    ("16-bit grey PNG", "22_1_0_20170101000000202.png",
     lambda: encode(Image.fromarray(GREY.astype(np.uint16) * 257), "PNG"), USED, USED),
    ("16-bit RGB PNG", "23_0_1_20170101000000203.png", lambda: png16_rgb(RGB.astype(np.uint16) * 257), USED, USED),
    ("grey JPEG", "24_1_1_20170101000000204.jpg", lambda: encode(Image.fromarray(GREY), "JPEG", quality=95),
     USED, USED),
    ("grey+alpha PNG", "25_0_2_20170101000000205.png", lambda: encode(Image.fromarray(GREY).convert("LA"), "PNG"),
     USED, USED),
    ("RGBA PNG", "26_1_2_20170101000000206.png", lambda: encode(Image.fromarray(RGB).convert("RGBA"), "PNG"),
     USED, USED),
    ("palette PNG", "27_0_3_20170101000000207.png",
     lambda: encode(Image.fromarray(RGB).convert("P", palette=Image.ADAPTIVE, colors=256), "PNG"), USED, USED),
    ("CMYK JPEG", "28_1_3_20170101000000208.jpg", cmyk_jpeg, USED, USED),
    ("non-square 40x64", "29_0_4_20170101000000209.jpg",
     lambda: encode(Image.fromarray(smooth_rgb(3, 64)[:40]), "JPEG", quality=95), USED, USED),
    ("8000x8000 JPEG", "30_1_4_20170101000000210.jpg",
     lambda: encode(Image.new("RGB", (8000, 8000), (120, 80, 60)), "JPEG", quality=90), USED, USED),
    ("8000x8000 PNG", "31_0_0_20170101000000211.png",
     lambda: encode(Image.new("RGB", (8000, 8000), (60, 120, 80)), "PNG", compress_level=1), USED, USED),
    # Valid images whose names carry no valid labels: skipped in training and prepare, used in test mode and eval.
    ("space in the name", "my face.jpg", lambda: encode(Image.fromarray(RGB), "JPEG"), MALFORMED, USED),
    ("non-UTF-8 name", b"caf\xe9_face.jpg", lambda: encode(Image.fromarray(smooth_rgb(4)), "JPEG"), MALFORMED, USED),
    ("UTKFace name with a space", "61_1_3_20170109150557335.jpg .chip.jpg",
     lambda: encode(Image.fromarray(smooth_rgb(5)), "JPEG"), "digits only, no spaces", USED),
    ("UTKFace name missing a field", "39_1_20170116174525125.jpg.chip.jpg",
     lambda: encode(Image.fromarray(smooth_rgb(6)), "JPEG"), "found 3 '_'-separated fields", USED),
    ("age -1", "-1_0_0_20170101000000212.jpg", lambda: encode(Image.fromarray(smooth_rgb(7)), "JPEG"),
     "not of the form AGE_GENDER_RACE", USED),
    ("age 200", "200_0_0_20170101000000213.jpg", lambda: encode(Image.fromarray(smooth_rgb(8)), "JPEG"),
     "age 200 is outside 0-120", USED),
    ("age not a number", "xx_0_0_20170101000000214.jpg", lambda: encode(Image.fromarray(smooth_rgb(9)), "JPEG"),
     "not of the form AGE_GENDER_RACE", USED),
    ("gender 3", "40_3_0_20170101000000215.jpg", lambda: encode(Image.fromarray(smooth_rgb(10)), "JPEG"),
     "gender 3 is not 0 (male) or 1 (female)", USED),
    # Same bytes as the first good face: training and prepare keep the first (sorted); test mode and eval keep both.
    ("duplicate file", "99_1_0_20170101000000216.jpg.chip.jpg", FIRST_GOOD, "duplicate of", USED),
    # Not usable anywhere.
    ("zero-byte file", "32_0_0_20170101000000301.jpg", lambda: b"", "empty file (0 bytes)", "empty file (0 bytes)"),
    ("truncated JPEG", "33_0_0_20170101000000302.jpg", truncated_jpeg, "truncated JPEG", "truncated JPEG"),
    ("JPEG cut inside its header", "33_0_0_20170101000000312.jpg", lambda: truncated_jpeg(0.05),
     "damaged or truncated image header", "damaged or truncated image header"),
    ("JPEG damaged in the middle", "33_0_0_20170101000000314.jpg", damaged_jpeg,
     "damaged picture data: it does not decode", "damaged picture data: it does not decode"),
    ("truncated PNG", "33_0_0_20170101000000313.png", truncated_png,
     "truncated PNG", "truncated PNG"),
    ("text file named .jpg", "34_0_0_20170101000000303.jpg", lambda: b"not a picture of a face\n" * 20,
     "not an image", "not an image"),
    ("GIF named .jpg", "35_0_0_20170101000000304.jpg", lambda: encode(Image.fromarray(RGB), "GIF"),
     "GIF image; only JPEG and PNG", "GIF image; only JPEG and PNG"),
    ("1x1 image", "36_0_0_20170101000000305.png", lambda: encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
     "too small (1x1", "too small (1x1"),
    ("10000x10000 (over the pixel limit)", "37_0_0_20170101000000306.png", lambda: png_header_only(10000, 10000),
     "too large (10000x10000", "too large (10000x10000"),
    ("directory named .jpg", "38_0_0_20170101000000307.jpg", "@directory", "is a directory", "is a directory"),
    ("symbolic link loop (a)", "41_0_0_20170101000000308.jpg", "@loop", "symbolic link loop", "symbolic link loop"),
    ("symbolic link loop (b)", "41_0_0_20170101000000309.jpg", "@loop", "symbolic link loop", "symbolic link loop"),
    ("dangling symbolic link", "42_0_0_20170101000000310.jpg", "@dangling", "broken symbolic link",
     "broken symbolic link"),
    # chmod 000: unreadable for users; root reads it, and then it is used.
    ("unreadable file (chmod 000)", "43_0_0_20170101000000311.jpg", "@unreadable",
     USED if READS_CHMOD_000 else "cannot be read (Permission denied)",
     USED if READS_CHMOD_000 else "cannot be read (Permission denied)"),
]
LOOP = ("41_0_0_20170101000000308.jpg", "41_0_0_20170101000000309.jpg")


def shown(name):
    """A file name as warnings print it."""
    return pipeline.printable(os.fsdecode(name))


def build_corpus(folder):
    """Write the corpus into `folder`; returns {name as os.listdir gives it: (what, labelled, unlabelled)}."""
    from face_aging.data.synthetic import write_utkface_folder
    good = write_utkface_folder(folder, NUM_GOOD, SIZE, seed=5)
    first_good = os.path.basename(good[0])
    expected = {os.path.basename(p): ("good face", USED, USED) for p in good}
    for what, name, make, labelled, unlabelled in CASES:
        path = os.path.join(folder, os.fsdecode(name))
        if make == "@directory":
            os.mkdir(path)
        elif make == "@loop":
            other = LOOP[1] if os.fsdecode(name) == LOOP[0] else LOOP[0]
            os.symlink(other, path)
        elif make == "@dangling":
            os.symlink("no-such-face.jpg", path)
        elif make == "@unreadable":
            write_file(folder, name, encode(Image.fromarray(smooth_rgb(11)), "JPEG"))
            os.chmod(path, 0)
        elif make == FIRST_GOOD:
            shutil.copyfile(good[0], path)
            labelled = f"duplicate of {first_good}"
        else:
            write_file(folder, name, make())
        expected[os.fsdecode(name)] = (what, labelled, unlabelled)
    # Ignored by every entry point: not image-named.
    write_file(folder, "notes.txt", b"not an image\n")
    # Two cases sharing a file name would leave one of them untested without any test failing.
    assert len(expected) == NUM_GOOD + len(CASES) and len(os.listdir(folder)) == len(expected) + 1
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("corpus"))
    return folder, build_corpus(folder)


def used(expected, column):
    return {name for name, outcome in expected.items() if outcome[column] == USED}


def assert_reported(text, expected, column, where, full_list=None):
    """Every file skipped at this entry point is named in `text` with its reason; no used file is named. With
    `full_list`, the warning may name the first 20 and say how many more are listed there."""
    lines = text.splitlines()
    unnamed = []
    for name, outcome in expected.items():
        label = f"  {shown(name)}: "
        hits = [line for line in lines if line.startswith(label)]
        if outcome[column] == USED:
            assert not hits, f"{where}: {outcome[0]} ({shown(name)}) should be used, but is reported: {hits}"
        elif not hits:
            unnamed.append(name)
        else:
            assert outcome[column] in hits[0], f"{where}: {outcome[0]}: want {outcome[column]!r}, got {hits[0]!r}"
    if unnamed:
        assert full_list, f"{where}: not named with a reason: {[shown(n) for n in unnamed]} in:\n{text}"
        more = [line for line in lines if line.startswith(f"  ... and {len(unnamed)} more, all listed in ")]
        assert more and full_list in more[0], text


LABELLED, UNLABELLED = 1, 2


# ---------------------------------------------------------------------------------------------------------------------
# Decoding: every used image comes out as the right RGB picture.


@pytest.mark.parametrize("name, truth, tolerance", [
    ("21_0_0_20170101000000201.jpg.chip.jpg", RGB, 0.0),                 # PNG named .jpg: exact
    ("22_1_0_20170101000000202.png", np.repeat(GREY[..., None], 3, 2), 0.0),   # 16-bit grey, scaled to 8 bits
    ("23_0_1_20170101000000203.png", RGB, 0.0),                          # 16-bit RGB
    ("24_1_1_20170101000000204.jpg", np.repeat(GREY[..., None], 3, 2), 4),
    ("25_0_2_20170101000000205.png", np.repeat(GREY[..., None], 3, 2), 0.0),   # grey + alpha: alpha dropped
    ("26_1_2_20170101000000206.png", RGB, 0.0),
    ("27_0_3_20170101000000207.png", RGB, 12),                           # palette: quantised to 256 colours
    ("28_1_3_20170101000000208.jpg", RGB, 12),                           # CMYK: converted, not inverted
    ("30_1_4_20170101000000210.jpg", np.full((SIZE, SIZE, 3), (120, 80, 60)), 3),
    ("31_0_0_20170101000000211.png", np.full((SIZE, SIZE, 3), (60, 120, 80)), 0.0),
])
def test_unusual_images_decode_to_their_rgb_picture(corpus, name, truth, tolerance):
    folder, _ = corpus
    assert pipeline.check_image(os.path.join(folder, name)) is None
    with open(os.path.join(folder, name), "rb") as f:
        image = pipeline.decode_and_resize(f.read(), SIZE).numpy()
    assert image.shape == (SIZE, SIZE, 3)
    levels = (image + 1.0) * 127.5
    assert np.abs(levels - truth).max() <= tolerance + 1e-3, (name, np.abs(levels - truth).max())


def test_a_big_jpeg_is_decoded_at_a_reduced_scale():
    """An 8000x8000 JPEG for a 32px model is decoded at 1/8 scale (1000x1000) by libjpeg, not at 192 MB."""
    data = encode(Image.new("RGB", (8000, 8000), (120, 80, 60)), "JPEG", quality=90)
    assert tuple(pipeline.decode_rgb(data, 32).shape) == (1000, 1000, 3)
    assert tuple(pipeline.decode_rgb(data, 2000).shape) == (2000, 2000, 3)
    assert tuple(pipeline.decode_rgb(data, 5000).shape) == (8000, 8000, 3)
    small = encode(Image.fromarray(RGB), "JPEG")
    assert tuple(pipeline.decode_rgb(small, 32).shape) == (SIZE, SIZE, 3)


# ---------------------------------------------------------------------------------------------------------------------
# The entry points.


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One epoch of CAAE training on the corpus through main.py's entry point: (savedir, CompletedProcess)."""
    folder, _ = corpus
    savedir = str(tmp_path_factory.mktemp("bad_run"))
    result = call_main("--model", "caae", "--is_train", f"--dataset={folder}", f"--savedir={savedir}", "--epoch=1",
                       *TINY_FLAGS)
    return savedir, result


@pytest.mark.slow
def test_train_uses_the_usable_faces_and_names_every_skipped_file(corpus, trained):
    folder, expected = corpus
    savedir, result = trained
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "\r" not in result.stdout                   # stdout is a pipe here: plain progress lines
    good = used(expected, LABELLED)
    assert f"Data: {len(good)} faces" in result.stdout
    assert_reported(result.stderr, expected, LABELLED, "train (warning)", full_list="skipped_files.txt")
    with open(os.path.join(savedir, "skipped_files.txt"), encoding="utf-8") as f:
        listed = {os.path.basename(line.split("\t")[0]): line.rstrip("\n").split("\t")[1] for line in f}
    assert set(listed) == {shown(n) for n in expected if n not in good}
    for name, (what, labelled, _) in expected.items():
        if name not in good:
            assert labelled in listed[shown(name)], (what, listed[shown(name)])
    assert os.path.exists(os.path.join(savedir, "checkpoint", "checkpoint"))


@pytest.mark.slow
def test_test_mode_ages_every_readable_image_and_names_the_rest(corpus, trained):
    folder, expected = corpus
    savedir, _ = trained
    # --align off: the corpus's non-square image is noise, which --align auto would report as a photo without a face.
    result = call_main("--model", "caae", "--is_train", "False", f"--testdir={folder}", f"--savedir={savedir}",
                       "--target_age", "65", "--align", "off")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    good = used(expected, UNLABELLED)
    assert f"Done! {len(good)} face(s)" in result.stdout
    assert_reported(result.stderr, expected, UNLABELLED, "test mode (warning)")
    written = set(os.listdir(os.path.join(savedir, "test")))
    for name in good:
        assert f"{name.split('.')[0]}_age65.png" in written, name
    assert len([n for n in written if n.endswith("_age65.png")]) == len(good)


@pytest.mark.slow
def test_eval_uses_every_readable_image_and_names_the_rest(corpus, trained, tiny_config, caplog):
    from face_aging.eval.evaluate import EvalOptions, evaluate
    folder, expected = corpus
    savedir, _ = trained
    with caplog.at_level(logging.WARNING):
        results = evaluate(EvalOptions(model="caae", testdir=folder, savedir=savedir, age_judge="none",
                                       identity_judge="none", architecture=tiny_config))
    assert results["num_faces"] == len(used(expected, UNLABELLED))
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipped ")]
    assert len(skipped) == 1
    assert_reported(skipped[0], expected, UNLABELLED, "eval (warning)")


def test_prepare_uses_the_usable_faces_and_records_every_skipped_file(corpus, tmp_path, caplog):
    from face_aging.data.prepare import prepare, read_split
    from face_aging.models.pagan.data import face_stream, load_images
    folder, expected = corpus
    out = str(tmp_path / "prepared")
    with caplog.at_level(logging.WARNING):
        summary = prepare([folder], out)
    good = used(expected, LABELLED)
    manifests = [read_split(out, split) for split in ("train", "val")]
    paths = [p for m in manifests for p in m.paths]
    assert sorted(os.path.basename(p) for p in paths) == sorted(good)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {shown(n) for n in expected if n not in good}
    for name in expected:
        if name not in good:
            assert expected[name][LABELLED] in reasons[shown(name)]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipped ")]
    assert len(skipped) == 1
    assert_reported(skipped[0], expected, LABELLED, "prepare (warning)", full_list="prepare.json")
    # What PAGAN and phi_age read: every prepared face decodes through the tf.data stream and the fixed-set loader.
    batch = next(iter(face_stream(paths, 32, len(paths), seed=1, start_step=0, end_step=1))).numpy()
    assert batch.shape == (len(paths), 32, 32, 3) and np.all(np.abs(batch) <= 1.0)
    assert load_images(paths[:3], 32).shape == (3, 32, 32, 3)


def test_unreadable_file_is_skipped_with_permission_denied(tmp_path, caplog):
    if READS_CHMOD_000:
        pytest.skip(ROOT_READS_ALL)
    from face_aging.inference.testmode import load_test_images
    from face_aging.data.synthetic import write_utkface_folder
    write_utkface_folder(str(tmp_path), 2, SIZE, seed=5)
    locked = tmp_path / "43_0_0_20170101000000311.jpg"
    locked.write_bytes(encode(Image.fromarray(RGB), "JPEG"))
    locked.chmod(0)
    with caplog.at_level(logging.WARNING):
        faces = pipeline.scan_labelled_folder(str(tmp_path))
        images, paths = load_test_images(str(tmp_path), 32)
    assert len(faces) == 2 and len(paths) == 2
    assert (str(locked), "cannot be read (Permission denied)") in faces.skipped


def test_a_folder_that_cannot_be_listed_is_a_clear_error(tmp_path):
    if READS_CHMOD_000:
        pytest.skip(ROOT_READS_ALL)
    from face_aging.inference.testmode import TestModeError, load_test_images
    from face_aging.data.prepare import PrepareError, prepare
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        for call, error in ((lambda: pipeline.load_faces(str(locked), 32), pipeline.DatasetError),
                            (lambda: load_test_images(str(locked), 32), TestModeError),
                            (lambda: prepare([str(locked)], str(tmp_path / "out")), PrepareError)):
            with pytest.raises(error, match="cannot be listed \\(Permission denied\\)"):
                call()
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------------------------------------------------------------
# Folders with nothing usable: each entry point stops, saying so.


@pytest.fixture(scope="module")
def hopeless(tmp_path_factory, corpus):
    """(a folder of only the corpus's files that no entry point can use, an empty folder)."""
    source, expected = corpus
    folder = tmp_path_factory.mktemp("hopeless")
    for name, (what, _, unlabelled) in expected.items():
        path = os.path.join(source, name)
        if unlabelled != USED and os.path.isfile(path) and not os.path.islink(path) and "chmod" not in what:
            shutil.copyfile(path, os.path.join(folder, name))
    os.mkdir(folder / "38_0_0_20170101000000307.jpg")
    os.symlink("no-such-face.jpg", folder / "42_0_0_20170101000000310.jpg")
    assert len(os.listdir(folder)) == 11
    empty = tmp_path_factory.mktemp("empty")
    return str(folder), str(empty)


def test_training_stops_when_nothing_is_usable(hopeless, tmp_path):
    folder, empty = hopeless
    for where in (folder, empty, str(tmp_path / "missing")):
        with pytest.raises(pipeline.DatasetError) as info:
            pipeline.load_faces(where, 32)
        message = str(info.value)
        assert where in message
        assert "none usable" in message or "no .jpg" in message or "is a folder" in message, message


@pytest.mark.slow
def test_test_mode_and_eval_stop_when_nothing_is_usable(hopeless, trained, tiny_config, tmp_path):
    from face_aging.inference.testmode import TestModeError, load_test_images
    from face_aging.eval.evaluate import EvalOptions, evaluate
    folder, empty = hopeless
    for where, words in ((folder, "none usable"), (empty, "no .jpg"), (str(tmp_path / "missing"), "does not exist")):
        with pytest.raises(TestModeError, match=words):
            load_test_images(where, 32)
        with pytest.raises(TestModeError, match=words):
            evaluate(EvalOptions(model="caae", testdir=where, savedir=trained[0], age_judge="none",
                                 identity_judge="none", architecture=tiny_config))
    with pytest.raises(TestModeError, match="nothing is left"):
        load_test_images(folder, 32)


def test_prepare_stops_when_nothing_is_usable(hopeless, tmp_path):
    from face_aging.data.prepare import PrepareError, prepare
    folder, empty = hopeless
    with pytest.raises(PrepareError, match="gives no usable face.*nothing is left"):
        prepare([folder], str(tmp_path / "a"))
    with pytest.raises(PrepareError, match="found 0 image file"):
        prepare([empty], str(tmp_path / "b"))
    with pytest.raises(PrepareError, match="does not exist"):
        prepare([str(tmp_path / "missing")], str(tmp_path / "c"))
    assert not os.path.exists(tmp_path / "a" / "prepare.json")


# ---------------------------------------------------------------------------------------------------------------------
# File names that are not UTF-8: in a folder whose own name is not UTF-8, every path is.


@pytest.fixture(scope="module")
def latin1_folder(tmp_path_factory):
    from face_aging.data.synthetic import write_utkface_folder
    folder = os.path.join(str(tmp_path_factory.mktemp("names")), os.fsdecode(b"visages_\xe9t\xe9"))
    write_utkface_folder(folder, 6, SIZE, seed=9)
    return folder


def test_non_utf8_paths_train_and_age(latin1_folder, caplog):
    from face_aging.inference.testmode import load_test_images
    faces = pipeline.scan_labelled_folder(latin1_folder)
    assert len(faces) == 6 and "\\xe9" in faces.source
    data = pipeline.FaceDataset(faces, 32, batch_size=2, seed=1, num_vis=1)
    batches = list(data.epoch(0))
    assert len(batches) == 2 and batches[0][0].shape == (2, 32, 32, 3)
    assert data.visualisation_set()[0].shape == (1, 32, 32, 3)
    images, paths = load_test_images(latin1_folder, 32)
    assert images.shape == (6, 32, 32, 3)


def test_non_utf8_paths_are_skipped_by_prepare_with_the_reason(latin1_folder, tmp_path, caplog):
    """The prepared manifests are UTF-8 CSV, so such a file cannot be listed in them: skipped, saying why."""
    from face_aging.data.prepare import PrepareError, prepare
    with caplog.at_level(logging.WARNING):
        with pytest.raises(PrepareError, match="no usable face"):
            prepare([latin1_folder], str(tmp_path / "out"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "visages_\\xe9t\\xe9" in text and "not UTF-8" in text


def test_pagan_stream_reads_non_utf8_paths(latin1_folder):
    from face_aging.models.pagan.data import face_stream
    paths = sorted(os.path.join(latin1_folder, n) for n in os.listdir(latin1_folder))
    batch = next(iter(face_stream(paths, 32, 3, seed=1, start_step=0, end_step=1)))
    assert batch.shape == (3, 32, 32, 3)


def test_a_file_gone_from_a_prepared_split_is_named(tmp_path):
    from face_aging.models.pagan.data import PAGANDataError, load_images
    with pytest.raises(PAGANDataError, match="gone.jpg.*prepare the data again"):
        load_images([str(tmp_path / "gone.jpg")], 32)


# ---------------------------------------------------------------------------------------------------------------------
# Import: a bad weights file is an error naming the file and what is wrong with it.


@pytest.fixture(scope="module")
def bad_mats(tmp_path_factory):
    import scipy.io
    folder = tmp_path_factory.mktemp("mats")
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"layers": np.zeros((3, 3, 3, 8), np.float32)}, do_compression=True)
    whole = buffer.getvalue()
    (folder / "zero.mat").write_bytes(b"")
    (folder / "text.mat").write_text("this is not a MATLAB file\n" * 10)
    (folder / "truncated.mat").write_bytes(whole[:len(whole) // 2])
    (folder / "directory.mat").mkdir()
    os.symlink("loop_b.mat", folder / "loop_a.mat")
    os.symlink("loop_a.mat", folder / "loop_b.mat")
    os.symlink("nowhere.mat", folder / "dangling.mat")
    return str(folder)


@pytest.mark.parametrize("name, words", [
    ("zero.mat", "is empty (0 bytes)"),
    ("text.mat", "is not a readable MATLAB .mat file"),
    ("truncated.mat", "damaged, truncated"),
    ("directory.mat", "is a directory"),
    ("loop_a.mat", "symbolic link loop"),
    ("dangling.mat", "does not exist"),
    ("missing.mat", "no VGG-Face weights file"),
])
def test_import_of_a_bad_weights_file_names_it_and_the_reason(bad_mats, tmp_path, name, words):
    from face_aging.errors import USER_ERRORS
    from face_aging.models.pagan import vggface_import
    path = os.path.join(bad_mats, name)
    with pytest.raises(USER_ERRORS) as info:
        vggface_import.convert(path, str(tmp_path / "out"))
    assert path in str(info.value) and words in str(info.value)
    assert not os.path.exists(tmp_path / "out")


def test_import_of_a_zero_byte_file_through_main(bad_mats, tmp_path):
    path = os.path.join(bad_mats, "zero.mat")
    result = call_main("--model", "import", "--source", path, "--identity", str(tmp_path / "out"))
    assert result.returncode == 1
    assert path in result.stderr and "is empty (0 bytes)" in result.stderr
    assert "Traceback" not in result.stderr
