"""Test mode on photos: --target_age, --ages, --gif, --paste_back, --align, the no-face message, and their flag
errors, for CAAE (the tiny lively run of conftest) and PAGAN (tiny random generators).

MTCNN does not see the synthetic faces, so the alignment wiring is tested in-process with face detection replaced
by given landmarks (tests/test_faces.py tests real detection)."""

import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image, ImageSequence

from helpers import call_main, first_faces, parsed, write_pagan_run
from face_aging.cli import flags as cli_flags, validate as cli_validate
from face_aging.errors import FlagError

@pytest.fixture
def caae_run(lively_run, tmp_path):
    return str(shutil.copytree(lively_run[0], tmp_path / "run"))


@pytest.fixture
def chips(face_folder, tmp_path):
    """Two UTKFace chips (48x48, square: used as they are)."""
    folder = first_faces(face_folder, tmp_path / "chips", 2)
    return folder


def stem(name):
    return name.split(".")[0]


def gif_frames(path):
    with Image.open(path) as gif:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]


def test_caae_target_age_ages_and_gif(caae_run, chips):
    """Ages in years at the chips' own resolution (48 px; the model runs at 32), faces.json from the names."""
    from face_aging.inference.testmode import GIF_YEARS
    result = call_main("--model", "caae", "--is_train", "False", "--testdir", str(chips), "--savedir", caae_run,
                       "--target_age", "65", "--ages", "10,30,50,70", "--gif", "--align", "off")
    assert result.returncode == 0, result.stderr
    test = os.path.join(caae_run, "test")
    for name in sorted(os.listdir(chips)):
        chip = np.asarray(Image.open(os.path.join(chips, name)).convert("RGB")).astype(int)
        aged = np.asarray(Image.open(os.path.join(test, f"{stem(name)}_age65.png"))).astype(int)
        strip = np.asarray(Image.open(os.path.join(test, f"{stem(name)}_ages.png"))).astype(int)
        assert aged.shape == (48, 48, 3) and strip.shape == (48, 5 * 48, 3)
        # The input itself at its own size (TensorFlow's and Pillow's JPEG decoders differ by a few levels).
        assert np.abs(strip[:, :48] - chip).mean() < 2
        at = {age: strip[:, 48 * (k + 1):48 * (k + 2)] for k, age in enumerate((10, 30, 50, 70))}
        # Years, not groups: 65 lies between 61-70's centre and 71+'s, near 70, far from 10.
        assert 0 < np.abs(at[70] - aged).mean() < np.abs(at[10] - aged).mean()
        frames = gif_frames(os.path.join(test, f"{stem(name)}.gif"))
        assert len(frames) == len(GIF_YEARS) and all(f.shape == (48, 48, 3) for f in frames)
    assert Image.open(os.path.join(test, "test_as_male.png")).size == (2 * 32, 10 * 32)
    assert not os.path.exists(os.path.join(test, "aligned"))      # nothing was aligned
    with open(os.path.join(test, "faces.json")) as f:
        faces = json.load(f)
    assert [(face["gender_from"], face["age_from"]) for face in faces] == [("name", "name")] * 2
    assert [face["age"] for face in faces] == [float(name.split("_")[0]) for name in sorted(os.listdir(chips))]


def test_paste_back_of_an_image_used_as_it_is(caae_run, tmp_path):
    """--align off on a landscape PNG: the aged face goes back over the centre square; the sides stay as they were."""
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = np.random.RandomState(3).randint(0, 255, (40, 64, 3), np.uint8)
    Image.fromarray(photo).save(photos / "wide.png")
    Image.fromarray(photo[:, :40]).save(photos / "me.jpg", quality=95)
    result = call_main("--model", "caae", "--is_train", "False", "--testdir", str(photos), "--savedir", caae_run,
                       "--ages", "20,70", "--paste_back", "--align", "off", "--gender", "female")
    assert result.returncode == 0, result.stderr
    test = os.path.join(caae_run, "test")
    for age in (20, 70):
        out = np.asarray(Image.open(os.path.join(test, f"wide_age{age}_photo.png")))
        assert out.shape == photo.shape
        assert np.array_equal(out[:, :12], photo[:, :12]) and np.array_equal(out[:, -12:], photo[:, -12:])
        assert not np.array_equal(out[:, 12:52], photo[:, 12:52])
        with Image.open(os.path.join(test, f"me_age{age}_photo.jpg")) as jpeg:
            assert jpeg.format == "JPEG" and jpeg.size == (40, 40)


@pytest.mark.skipif("not __import__('face_aging.faces.detect').faces.detect.detector_available()",
                    reason="needs mtcnn (requirements-photos.txt)")
@pytest.mark.slow
def test_photos_without_a_face_are_listed_and_the_rest_is_aged(caae_run, chips, tmp_path):
    noise = np.random.RandomState(1).randint(0, 255, (60, 100, 3), np.uint8)
    Image.fromarray(noise).save(chips / "landscape.png")
    Image.fromarray(np.full((90, 50, 3), 200, np.uint8)).save(chips / "blank.jpg")
    result = call_main("--model", "caae", "--is_train", "False", "--testdir", str(chips), "--savedir", caae_run,
                       "--target_age", "40")
    assert result.returncode == 0, result.stderr
    assert "No face found in 2 photo(s): blank.jpg, landscape.png" in result.stderr
    assert "--align off" in result.stderr
    aged = sorted(f for f in os.listdir(os.path.join(caae_run, "test")) if f.endswith("_age40.png"))
    assert [stem(f) for f in aged] == [f"{stem(n)}_age40" for n in sorted(os.listdir(chips)) if "_" in n]

    only_photos = tmp_path / "no_faces"
    only_photos.mkdir()
    shutil.copy(chips / "landscape.png", only_photos)
    result = call_main("--model", "caae", "--is_train", "False", "--testdir", str(only_photos), "--savedir", caae_run)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "No face found in any image" in result.stderr and "landscape.png" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("--paste_back",), "--paste_back needs --target_age N or --ages"),
    (("--ages=10,abc",), "'abc' is not a whole number"),
    (("--ages=10,130",), "130 is not an age in years, 0-120"),
    (("--ages=",), "--ages is empty"),
    (("--ages=10,,30",), "'' is not a whole number"),
    (("--model=pagan", "--target_age=200"), "--target_age=200"),
])
def test_photo_flag_errors(args, message, tmp_path):
    fv = parsed("--is_train=false", f"--testdir={tmp_path}", *args)
    cli_flags.apply_model_defaults(fv)
    with pytest.raises(FlagError, match=message.replace("(", r"\(")):
        cli_validate.validate(fv)


def test_a_testdir_that_is_a_broken_link_says_so(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "gone").symlink_to(tmp_path / "photos")
    for name, message in (("a", "symbolic link loop (too many levels of symbolic links)"),
                          ("gone", "broken symbolic link (its target '"), ("missing", "no such file or folder")):
        fv = parsed("--is_train=false", f"--testdir={tmp_path / name}")
        cli_flags.apply_model_defaults(fv)
        with pytest.raises(FlagError, match="^" + re.escape(f"--testdir={tmp_path / name}: {message}")):
            cli_validate.validate(fv)


def test_photo_flags_outside_test_mode_are_refused(tmp_path):
    fv = parsed("--gif")
    with pytest.raises(FlagError, match="--gif is for test mode"):
        cli_validate.validate(fv)
    result = call_main("--is_train=false", f"--testdir={tmp_path}", f"--savedir={tmp_path / 'run'}", "--paste_back")
    assert result.returncode == 2 and "--paste_back needs --target_age" in result.stderr
    assert not (tmp_path / "run").exists()


# --- Alignment wiring, detection replaced ----------------------------------------------------------------------------

PHOTO_SHAPE = (100, 160, 3)
FACE_BOXES = ((20, 25, 40), (100, 30, 44))            # (x, y, side) of the faces in the landscape photo


def landmarks_in(box, template):
    x, y, side = box
    return (np.asarray(template.points) * side + [x, y]).astype(np.float32)


@pytest.fixture
def fake_detection(monkeypatch):
    """detect_faces: the two FACE_BOXES in a 160x100 photo, nothing in any other image."""
    from face_aging.faces import detect

    def detect_faces(image, *args, **kwargs):
        if image.shape != PHOTO_SHAPE:
            return []
        return [detect.Face(box=(x, y, side, side), confidence=0.99, landmarks=landmarks_in((x, y, side), template))
                for x, y, side in FACE_BOXES]

    template = None

    def use(model):
        nonlocal template
        from face_aging.faces.align import template_for
        template = template_for(model)

    monkeypatch.setattr(detect, "detect_faces", detect_faces)
    monkeypatch.setattr(detect, "detector_available", lambda: True)
    return use


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    ys, xs = np.mgrid[0:PHOTO_SHAPE[0], 0:PHOTO_SHAPE[1]]
    photo = np.stack([xs * 1.5, ys * 2.0, np.full_like(xs, 90)], axis=-1).astype(np.uint8)
    Image.fromarray(photo).save(folder / "party.png")
    Image.fromarray(np.full((50, 80, 3), 128, np.uint8)).save(folder / "wall.png")
    return folder, photo


def check_pasted(out, photo):
    assert out.shape == photo.shape
    assert np.array_equal(out[:, :15], photo[:, :15]) and np.array_equal(out[:, -10:], photo[:, -10:])
    assert np.array_equal(out[:20], photo[:20]) and np.array_equal(out[-18:], photo[-18:])
    for x, y, side in FACE_BOXES:
        centre = (slice(y + side // 3, y + 2 * side // 3), slice(x + side // 3, x + 2 * side // 3))
        assert np.abs(out[centre].astype(int) - photo[centre]).mean() > 2


@pytest.mark.slow
def test_caae_aligns_every_face_and_pastes_it_back(caae_run, photo_folder, fake_detection, tiny_config, caplog):
    from face_aging.inference.testmode import TestOptions, run_test
    fake_detection("caae")
    folder, photo = photo_folder
    with caplog.at_level(logging.WARNING):
        written = run_test(TestOptions(testdir=str(folder), savedir=caae_run, target_age=60, ages=(20, 60),
                                       gif=True, paste_back=True, align="on", input_age=20, gender="female",
                                       config=tiny_config))
    assert "No face found in 1 photo(s): wall.png" in caplog.text
    test = os.path.join(caae_run, "test")
    from face_aging.inference.testmode import GIF_YEARS
    for k, (_, _, box) in zip((1, 2), FACE_BOXES):
        # At the face's own resolution: the template's crop of a face this size in the photo, not the model's 32.
        side = Image.open(os.path.join(test, "aligned", f"party_face{k}.png")).size[0]
        assert abs(side - box) <= 1 and side != 32
        assert Image.open(os.path.join(test, f"party_face{k}_age60.png")).size == (side, side)
        assert Image.open(os.path.join(test, f"party_face{k}_ages.png")).size == (3 * side, side)
        assert len(gif_frames(os.path.join(test, f"party_face{k}.gif"))) == len(GIF_YEARS)
    assert Image.open(os.path.join(test, "test_as_female.png")).size == (2 * 32, 10 * 32)
    photos = sorted(os.path.basename(p) for p in written if p.endswith("_photo.png"))
    assert photos == ["party_age20_photo.png", "party_age60_photo.png"]
    check_pasted(np.asarray(Image.open(os.path.join(test, "party_age60_photo.png"))), photo)


@pytest.mark.slow
def test_pagan_ages_gif_and_paste_back(photo_folder, fake_detection, tmp_path, caplog):
    from face_aging.inference.testmode import TestModeError, TestOptions, run_test
    fake_detection("pagan")
    savedir = str(tmp_path / "pagan")
    write_pagan_run(savedir, (1, 3))
    folder, photo = photo_folder
    with pytest.raises(TestModeError, match=r"cluster 2 \(41-50\).*cluster2.*--target_cluster 2"):
        run_test(TestOptions(testdir=str(folder), savedir=savedir, model="pagan", target_age=45))
    from face_aging.models.pagan.infer import AGING_RISE, change_weights, gif_years
    old = int(round(25 + AGING_RISE[3]))           # about cluster 3's rise above the face's own 25 years
    run_test(TestOptions(testdir=str(folder), savedir=savedir, model="pagan", target_age=25, ages=(20, 34, old),
                         gif=True, paste_back=True, align="on", input_age=25))
    test = os.path.join(savedir, "test")
    for k in (1, 2):
        name = f"party_face{k}"
        crop = np.asarray(Image.open(os.path.join(test, "aligned", f"{name}.png"))).astype(int)
        side = crop.shape[0]
        assert side > 32                                   # the face's own resolution in the photo
        # At its own age (25), PAGAN leaves the face as it is.
        assert np.abs(np.asarray(Image.open(os.path.join(test, f"{name}_age25.png"))).astype(int) - crop).max() <= 1
        strip = np.asarray(Image.open(os.path.join(test, f"{name}_ages.png"))).astype(int)
        progression = np.asarray(Image.open(os.path.join(test, f"{name}_progression.png"))).astype(int)
        assert strip.shape == (side, 4 * side, 3) and progression.shape == (side, 3 * side, 3)  # input, clusters 1, 3
        # `old` years: the clusters' changes blended as their weights say (nearly all of cluster 3's, which adds
        # infer.AGING_RISE[3] years).
        c1, c3 = progression[:, side:2 * side], progression[:, 2 * side:]
        weights = change_weights(25, old, [1, 3])
        assert weights[3] > 0.9
        blended = crop + sum(w * (c - crop) for w, c in ((weights.get(1, 0.0), c1), (weights[3], c3)))
        error = np.abs(strip[:, 3 * side:] - blended)     # three images rounded to 8 bits, two changes clipped
        assert error.max() <= 6 and error.mean() < 0.5          # a weight 2% off moves the mean by about 1
        # 34 years: nearly all of cluster 1's change (it adds 9.2 years), none of cluster 3's.
        assert np.abs(strip[:, 2 * side:3 * side] - c1).mean() < 0.2 * np.abs(crop - c1).mean()
        frames = gif_frames(os.path.join(test, f"{name}.gif"))
        assert len(frames) == len(gif_years(25, [1, 3])) > 5 and frames[0].shape == (side, side, 3)
    assert Image.open(os.path.join(test, "overview.png")).size == (3 * 32, 2 * 32)
    for age in (20, 25, 34, old):
        check = np.asarray(Image.open(os.path.join(test, f"party_age{age}_photo.png")))
        assert check.shape == photo.shape
    check_pasted(np.asarray(Image.open(os.path.join(test, f"party_age{old}_photo.png"))), photo)


def test_pagan_target_age_through_main(tmp_path):
    savedir = tmp_path / "pagan"
    write_pagan_run(str(savedir), (2,))
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(2):
        Image.fromarray(np.random.RandomState(i).randint(0, 255, (40, 40, 3), np.uint8)).save(faces / f"me{i}.png")
    result = call_main("--model", "pagan", "--is_train", "False", "--testdir", str(faces), "--savedir", str(savedir),
                       "--target_age", "45", "--ages", "20,45", "--gif", "--align", "off", "--input_age", "20")
    assert result.returncode == 0, result.stderr
    for i in range(2):
        aged = np.asarray(Image.open(savedir / "test" / f"me{i}_age45.png"))
        strip = np.asarray(Image.open(savedir / "test" / f"me{i}_ages.png"))
        assert aged.shape == (40, 40, 3) and strip.shape == (40, 3 * 40, 3)      # the images' own 40 px
        assert np.array_equal(strip[:, 80:], aged)
        from face_aging.models.pagan.infer import gif_years
        assert len(gif_frames(savedir / "test" / f"me{i}.gif")) == len(gif_years(20, [2])) > 3   # to 41-50's rise
    result = call_main("--model", "pagan", "--is_train", "False", "--testdir", str(faces), "--savedir", str(savedir),
                       "--target_age", "70", "--align", "off")
    assert result.returncode == 1 and "cluster 3 (51+)" in result.stderr and "--target_cluster 3" in result.stderr
