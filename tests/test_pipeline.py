"""Tests of the training input: scanning a messy UTKFace-style folder, decoding, and FaceDataset's epochs."""

import io
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from face_aging.data.pipeline import (DatasetError, FaceDataset, LabelledFaces, check_image, decode_and_resize,
                                      load_faces, resolve_dataset, scan_labelled_folder)
from face_aging.data.synthetic import write_utkface_folder

GROUP_UPPER = (5, 10, 15, 20, 30, 40, 50, 60, 70)  # CAAE's groups 0-5, ..., 61-70, 71+ (inclusive upper bounds)


def group_of(age):
    return next((g for g, upper in enumerate(GROUP_UPPER) if age <= upper), 9)


def name_labels(path):
    """(age, gender) read off a UTKFace name by the test itself."""
    age, gender = os.path.basename(path).split("_")[:2]
    return int(age), int(gender)


def encode(array, fmt, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def noise(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def assert_help(message):
    assert "UTKFace" in message
    assert "--dataset synthetic" in message


# ---------------------------------------------------------------------------------------------------------------------
# A messy folder.

# Usable although unusual: each must come out as RGB [S, S, 3].
GREY_JPEG = "30_0_1_20170101000000001.jpg.chip.jpg"
RGBA_PNG = "45_1_2_20170101000000002.png"
PNG_NAMED_JPG = "50_0_3_20170101000000003.jpg.chip.jpg"
NON_SQUARE = "65_1_0_20170101000000004.jpg.chip.jpg"
UNUSUAL = (GREY_JPEG, RGBA_PNG, PNG_NAMED_JPG, NON_SQUARE)

# Malformed names (real UTKFace ones among them); their contents are valid JPEGs.
MALFORMED = (
    "39_1_20170116174525125.jpg.chip.jpg",
    "55_0_0_20170116232725357jpg.chip.jpg",
    "61_1_3_20170109150557335.jpg .chip.jpg",
    "24_0_1_ 20170116220224657.jpg.chip.jpg",
    "30_3_0_20170116220224657.jpg.chip.jpg",   # gender 3
)
# Well-named but not usable: name -> a word the reason must contain.
ZERO_BYTES = "22_0_0_20170101000000010.jpg.chip.jpg"
TEXT = "23_1_0_20170101000000011.jpg.chip.jpg"
TRUNCATED_JPEG = "24_0_2_20170101000000012.jpg.chip.jpg"
TRUNCATED_PNG = "25_1_2_20170101000000013.png"
DIRECTORY = "26_1_3_20170101000000014.jpg.chip.jpg"
DIRECTORY_X = "x.jpg"
GIF = "27_0_4_20170101000000015.jpg.chip.jpg"
BAD_CONTENT = {ZERO_BYTES: "", TEXT: "", TRUNCATED_JPEG: "truncated", TRUNCATED_PNG: "truncated",
               DIRECTORY: "directory", DIRECTORY_X: "", GIF: "GIF"}


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """A folder of good JPEGs and PNGs, unusual-but-usable images and every kind of bad entry."""
    folder = str(tmp_path_factory.mktemp("messy"))
    # (Seeds whose synthetic faces are all distinct: byte-identical files would be skipped as duplicates.)
    good = write_utkface_folder(folder, 8, 40, seed=11, ext="jpg") + write_utkface_folder(folder, 4, 40, seed=13,
                                                                                            ext="png")
    face = noise((40, 40, 3), 0)
    write(os.path.join(folder, GREY_JPEG), encode(noise((40, 40), 1), "JPEG"))
    rgba = np.concatenate([noise((40, 40, 3), 2), np.full((40, 40, 1), 128, np.uint8)], axis=2)
    write(os.path.join(folder, RGBA_PNG), encode(rgba, "PNG"))
    write(os.path.join(folder, PNG_NAMED_JPG), encode(face, "PNG"))
    write(os.path.join(folder, NON_SQUARE), encode(noise((40, 56, 3), 3), "JPEG"))
    for name in MALFORMED:
        write(os.path.join(folder, name), encode(face, "JPEG"))
    write(os.path.join(folder, ZERO_BYTES), b"")
    write(os.path.join(folder, TEXT), b"this is not a picture of a face\n" * 10)
    jpeg = encode(noise((40, 40, 3), 4), "JPEG", quality=95)
    write(os.path.join(folder, TRUNCATED_JPEG), jpeg[:len(jpeg) // 2])
    png = encode(noise((40, 40, 3), 5), "PNG")
    write(os.path.join(folder, TRUNCATED_PNG), png[:len(png) // 2])
    os.mkdir(os.path.join(folder, DIRECTORY))
    os.mkdir(os.path.join(folder, DIRECTORY_X))
    Image.fromarray(face).save(os.path.join(folder, GIF), format="GIF")
    # Ignored: not image-named, or in a subfolder (the scan does not descend).
    write(os.path.join(folder, "README.txt"), b"faces\n")
    write_utkface_folder(os.path.join(folder, "more"), 2, 40, seed=14, ext="jpg")
    # The fixture is only meaningful if the truncated files still have headers Pillow reads.
    with Image.open(os.path.join(folder, TRUNCATED_JPEG)) as image:
        assert image.size == (40, 40)
    good_names = {os.path.basename(p) for p in good} | set(UNUSUAL)
    assert len(good_names) == 16
    bad_names = set(MALFORMED) | set(BAD_CONTENT)
    return folder, good_names, bad_names


def test_scan_uses_exactly_the_usable_files_with_their_labels(messy):
    folder, good_names, _ = messy
    faces = scan_labelled_folder(folder)
    names = [os.path.basename(p) for p in faces.paths]
    assert set(names) == good_names
    assert len(names) == len(good_names) == len(faces)
    assert all(os.path.dirname(p) == folder for p in faces.paths)
    assert faces.ages.dtype == np.int32 and faces.genders.dtype == np.int32
    for path, age, gender in zip(faces.paths, faces.ages, faces.genders):
        assert (age, gender) == name_labels(path)
    assert faces.images is None
    assert os.path.abspath(folder) in faces.source


def test_scan_lists_every_skipped_file_with_a_reason(messy):
    folder, good_names, bad_names = messy
    faces = scan_labelled_folder(folder)
    reasons = {os.path.basename(p): why for p, why in faces.skipped}
    assert len(reasons) == len(faces.skipped)  # each named once
    assert set(reasons) == bad_names
    assert not set(reasons) & good_names
    for name in MALFORMED:
        assert "name" in reasons[name]
    assert "gender 3" in reasons["30_3_0_20170116220224657.jpg.chip.jpg"]
    for name, word in BAD_CONTENT.items():
        assert reasons[name].strip()
        assert word in reasons[name], (name, reasons[name])
    # A header-only check would accept these; they need the reason that they are not images at all.
    for name in (ZERO_BYTES, TEXT):
        assert "truncated" not in reasons[name]


def test_scan_logs_one_warning_naming_every_skipped_file(messy, caplog):
    folder, good_names, bad_names = messy
    with caplog.at_level(logging.WARNING):
        scan_labelled_folder(folder)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert folder in message
    assert str(len(bad_names)) in message
    for name in bad_names:
        assert name in message
    for name in good_names:
        assert name not in message


def test_no_warning_for_a_clean_folder(tmp_path, caplog):
    write_utkface_folder(str(tmp_path), 3, 32, seed=3)
    with caplog.at_level(logging.WARNING):
        faces = scan_labelled_folder(str(tmp_path))
    assert len(faces) == 3 and faces.skipped == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_check_image_accepts_good_files_and_explains_bad_ones(messy):
    folder, good_names, _ = messy
    for name in good_names:
        assert check_image(os.path.join(folder, name)) is None, name
    for name in (ZERO_BYTES, TEXT, TRUNCATED_JPEG, TRUNCATED_PNG, GIF):
        reason = check_image(os.path.join(folder, name))
        assert isinstance(reason, str) and reason, name
    assert check_image(os.path.join(folder, "no-such-file.jpg"))


def test_usable_unusual_files_decode_to_rgb_in_unit_range(messy):
    folder, good_names, _ = messy
    for name in sorted(good_names):
        contents = tf.io.read_file(os.path.join(folder, name))
        image = decode_and_resize(contents, 32).numpy()
        assert image.shape == (32, 32, 3), name
        assert image.dtype == np.float32
        assert image.min() >= -1.0 and image.max() <= 1.0, name
    grey = decode_and_resize(tf.io.read_file(os.path.join(folder, GREY_JPEG)), 32).numpy()
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=1e-6)
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-6)
    assert grey.std() > 0.1  # the picture itself, not a blank


def test_messy_folder_trains_without_errors(messy):
    """Every face the scan keeps goes through tf.data; none makes an epoch fail."""
    folder, _, _ = messy
    faces = scan_labelled_folder(folder)
    data = FaceDataset(faces, 32, batch_size=4, seed=5, num_vis=3)
    vis_images, vis_ages, vis_genders = data.visualisation_set()
    assert vis_images.shape == (3, 32, 32, 3) and vis_ages.shape == (3, 10) and vis_genders.shape == (3, 2)
    batches = list(data.epoch(0))
    assert len(batches) == data.steps_per_epoch == 13 // 4
    for images, ages, genders in batches:
        assert images.shape == (4, 32, 32, 3) and ages.shape == (4, 10) and genders.shape == (4, 2)
        assert -1.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


# ---------------------------------------------------------------------------------------------------------------------
# Folders without usable faces, and where --dataset points.


def test_missing_folder(tmp_path):
    missing = str(tmp_path / "UTKFace")
    with pytest.raises(DatasetError) as info:
        scan_labelled_folder(missing)
    assert missing in str(info.value)
    assert_help(str(info.value))


def test_a_file_instead_of_a_folder(tmp_path):
    path = tmp_path / "faces.tar.gz"
    path.write_bytes(b"\x1f\x8b")
    with pytest.raises(DatasetError) as info:
        scan_labelled_folder(str(path))
    assert_help(str(info.value))


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no faces here")
    with pytest.raises(DatasetError) as info:
        scan_labelled_folder(str(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert_help(str(info.value))


def test_folder_with_only_bad_files_raises_and_still_names_them(tmp_path, caplog):
    write(str(tmp_path / MALFORMED[0]), encode(noise((32, 32, 3), 0), "JPEG"))
    write(str(tmp_path / ZERO_BYTES), b"")
    with caplog.at_level(logging.WARNING):
        with pytest.raises(DatasetError) as info:
            scan_labelled_folder(str(tmp_path))
    assert_help(str(info.value))
    assert "2" in str(info.value)  # how many files it looked at
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert MALFORMED[0] in logged and ZERO_BYTES in logged


def test_dataset_error_is_a_user_error():
    from face_aging.errors import USER_ERRORS
    assert issubclass(DatasetError, USER_ERRORS)


def test_resolve_dataset_name_under_data_root_or_path(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "UTKFace_test_only").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "faces"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")  # a cwd where the name is not a folder
    assert resolve_dataset("UTKFace_test_only", data_root=str(root)) == str(root / "UTKFace_test_only")
    assert resolve_dataset(str(elsewhere), data_root=str(root)) == str(elsewhere)
    assert os.path.samefile(resolve_dataset("faces", data_root=str(root)), str(elsewhere))  # relative path
    with pytest.raises(DatasetError) as info:
        resolve_dataset("CACD", data_root=str(root))
    message = str(info.value)
    assert os.path.join(str(root), "CACD") in message and "CACD" in message
    assert_help(message)


def test_load_faces_by_name_under_the_data_root(tmp_path):
    paths = write_utkface_folder(str(tmp_path / "data" / "mine"), 5, 32, seed=7)
    faces = load_faces("mine", 32, data_root=str(tmp_path / "data"))
    assert sorted(faces.paths) == sorted(paths)
    with pytest.raises(DatasetError) as info:
        load_faces("UTKFace", 32, data_root=str(tmp_path / "data"))
    assert_help(str(info.value))


# ---------------------------------------------------------------------------------------------------------------------
# Decoding.


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("shape, size", [((32, 32), 32), ((40, 40), 32), ((40, 60), 24), ((48, 30), 48)])
def test_uniform_images_scale_to_the_ends_of_the_range(fmt, shape, size):
    for value, expected in ((255, 1.0), (0, -1.0)):
        image = decode_and_resize(encode(np.full(shape + (3,), value, np.uint8), fmt), size).numpy()
        assert image.shape == (size, size, 3)
        np.testing.assert_allclose(image, expected, atol=1e-5)


def test_scaling_is_the_originals_without_resizing():
    pixels = noise((32, 32, 3), 9)
    pixels[0, :3] = [[0, 0, 0], [255, 255, 255], [128, 64, 1]]
    image = decode_and_resize(encode(pixels, "PNG"), 32).numpy()
    np.testing.assert_allclose(image, pixels.astype(np.float64) * 2 / 255 - 1, atol=1e-5)


@pytest.mark.parametrize("height, width", [(40, 120), (40, 100), (40, 41), (120, 40), (100, 40), (41, 40)])
def test_non_square_images_are_centre_cropped_not_squashed(height, width):
    side = min(height, width)
    middle, edge = np.array([30, 200, 90], np.uint8), np.array([250, 10, 10], np.uint8)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[...] = edge
    top, left = (height - side) // 2, (width - side) // 2
    pixels[top:top + side, left:left + side] = middle
    for size in (side, 32):
        image = decode_and_resize(encode(pixels, "PNG"), size).numpy()
        assert image.shape == (size, size, 3)
        np.testing.assert_allclose(image, np.broadcast_to(middle / 127.5 - 1, image.shape), atol=1e-5)


def test_grey_and_rgba_come_out_as_rgb():
    grey = noise((32, 32), 1)
    image = decode_and_resize(encode(grey, "PNG"), 32).numpy()
    np.testing.assert_allclose(image, np.repeat(grey[..., None], 3, axis=2) / 127.5 - 1, atol=1e-5)
    rgba = np.concatenate([noise((32, 32, 3), 2), np.full((32, 32, 1), 255, np.uint8)], axis=2)
    image = decode_and_resize(encode(rgba, "PNG"), 32).numpy()
    np.testing.assert_allclose(image, rgba[..., :3] / 127.5 - 1, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# FaceDataset on in-memory synthetic faces.


@pytest.fixture(scope="module")
def synthetic():
    faces = load_faces("synthetic", 32, num_synthetic=60)
    keys = {image.tobytes(): i for i, image in enumerate(faces.images)}
    assert len(keys) == 60  # every face is distinct, so a batch image identifies its face
    return faces, keys


def identify(images, keys):
    """Indices into the faces of a batch of [-1, 1] images."""
    images = np.asarray(images)
    as_uint8 = np.rint((images + 1.0) * 127.5).astype(np.uint8)
    np.testing.assert_allclose(images, as_uint8 / 127.5 - 1, atol=1e-5)  # the scaling is exact
    return [keys[image.tobytes()] for image in as_uint8]


def epoch_indices(data, keys, epoch, skip=0):
    return [identify(images, keys) for images, _, _ in data.epoch(epoch, skip_batches=skip)]


def test_load_faces_synthetic(synthetic):
    faces, _ = synthetic
    assert isinstance(faces, LabelledFaces)
    assert faces.paths is None
    assert faces.images.shape == (60, 32, 32, 3) and faces.images.dtype == np.uint8
    assert len(faces) == 60 and faces.ages.shape == faces.genders.shape == (60,)


def test_visualisation_set_is_fixed_and_disjoint_from_training(synthetic):
    faces, keys = synthetic
    data = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=10)
    vis = set(data.vis_index.tolist())
    train = set(data.train_index.tolist())
    assert len(vis) == len(data.vis_index) == 10
    assert len(train) == len(data.train_index) == 50
    assert not vis & train and vis | train == set(range(60))
    images, ages, genders = data.visualisation_set()
    assert images.shape == (10, 32, 32, 3) and ages.shape == (10, 10) and genders.shape == (10, 2)
    assert identify(images, keys) == data.vis_index.tolist()
    # The same seed gives the same set, whatever the batch size; and it never shows up in training batches.
    again = FaceDataset(faces, 32, batch_size=5, seed=3, num_vis=10)
    np.testing.assert_array_equal(again.vis_index, data.vis_index)
    np.testing.assert_array_equal(again.visualisation_set()[0], images)
    for epoch in range(3):
        assert not vis & {i for batch in epoch_indices(data, keys, epoch) for i in batch}
    other = FaceDataset(faces, 32, batch_size=8, seed=4, num_vis=10)
    assert set(other.vis_index.tolist()) != vis


def test_small_sets_hold_out_at_most_a_fifth(synthetic):
    faces, _ = synthetic
    data = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=100)
    assert len(data.vis_index) == 12 and len(data.train_index) == 48


def test_epoch_order_is_a_function_of_seed_and_epoch(synthetic):
    faces, keys = synthetic
    a = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=10)
    b = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=10)
    c = FaceDataset(faces, 32, batch_size=8, seed=99, num_vis=10)
    epoch0, epoch1 = epoch_indices(a, keys, 0), epoch_indices(a, keys, 1)
    assert epoch_indices(b, keys, 0) == epoch0          # same seed, another instance (a restarted run)
    assert epoch_indices(a, keys, 0) == epoch0          # re-iterating the same epoch
    assert epoch1 != epoch0                             # a new epoch, a new order
    assert epoch_indices(c, keys, 0) != epoch0
    train = set(a.train_index.tolist())
    seen = set()
    for batches in (epoch0, epoch1, *(epoch_indices(a, keys, e) for e in range(2, 5))):
        flat = [i for batch in batches for i in batch]
        assert len(flat) == len(set(flat)) == 6 * 8   # no face twice in an epoch
        assert set(flat) <= train
        seen |= set(flat)
    assert seen == train  # the dropped remainder changes from epoch to epoch


@pytest.mark.parametrize("epoch", [0, 7])
def test_skip_batches_resumes_exactly(synthetic, epoch):
    faces, keys = synthetic
    data = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=10)
    full = [tuple(t.numpy() for t in batch) for batch in data.epoch(epoch)]
    assert len(full) == 6
    restarted = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=10)
    for skip in (1, 4, 5, 6):
        resumed = [tuple(t.numpy() for t in batch) for batch in restarted.epoch(epoch, skip_batches=skip)]
        assert len(resumed) == 6 - skip
        for got, want in zip(resumed, full[skip:]):
            np.testing.assert_array_equal(got[1], want[1])   # age labels
            np.testing.assert_array_equal(got[2], want[2])   # gender labels
            np.testing.assert_array_equal(got[0], want[0])   # and the faces themselves


def test_last_partial_batch_is_dropped(synthetic):
    faces, _ = synthetic
    for batch_size in (7, 8, 10, 50):
        data = FaceDataset(faces, 32, batch_size=batch_size, seed=3, num_vis=10)
        assert data.steps_per_epoch == 50 // batch_size
        dataset = data.epoch(0)
        assert dataset.element_spec[0].shape.as_list() == [batch_size, 32, 32, 3]  # static batch size
        sizes = [int(images.shape[0]) for images, _, _ in dataset]
        assert sizes == [batch_size] * (50 // batch_size)


def test_batch_labels_match_each_faces_age_and_gender(synthetic):
    faces, keys = synthetic
    data = FaceDataset(faces, 32, batch_size=8, seed=3, num_vis=10)
    for images, ages, genders in data.epoch(2):
        ages, genders = ages.numpy(), genders.numpy()
        assert ages.dtype == np.float32 and set(np.unique(ages).tolist()) == {-1.0, 1.0}
        assert set(np.unique(genders).tolist()) <= {-1.0, 1.0}
        assert np.all((ages == 1).sum(axis=1) == 1) and np.all((genders == 1).sum(axis=1) == 1)
        for i, age_row, gender_row in zip(identify(images, keys), ages, genders):
            assert np.argmax(age_row) == group_of(faces.ages[i])
            assert np.argmax(gender_row) == faces.genders[i]


def test_too_few_faces_for_one_batch(synthetic):
    faces, _ = synthetic
    few = LabelledFaces(ages=faces.ages[:12], genders=faces.genders[:12], images=faces.images[:12],
                        source="twelve faces")
    data = FaceDataset(few, 32, batch_size=10, seed=3)   # 2 held out, exactly one batch left
    assert data.steps_per_epoch == 1 and len(list(data.epoch(0))) == 1
    with pytest.raises(DatasetError) as info:
        FaceDataset(few, 32, batch_size=11, seed=3)
    assert "--batch_size" in str(info.value) and "twelve faces" in str(info.value)
    with pytest.raises(DatasetError, match="--batch_size"):
        FaceDataset(faces, 32, batch_size=100, seed=3)


def test_in_memory_faces_of_the_wrong_size_are_refused(synthetic):
    faces, _ = synthetic
    with pytest.raises(ValueError, match="32"):
        FaceDataset(faces, 64, batch_size=8)


# ---------------------------------------------------------------------------------------------------------------------
# FaceDataset on a folder: labels come from the file names.


def test_folder_batch_labels_match_the_file_names(tmp_path):
    paths = write_utkface_folder(str(tmp_path), 20, 32, seed=21, ext="png")
    pixels = {}
    for path in paths:
        with Image.open(path) as image:
            pixels[np.asarray(image.convert("RGB")).tobytes()] = path
    assert len(pixels) == 20
    faces = scan_labelled_folder(str(tmp_path))
    data = FaceDataset(faces, 32, batch_size=4, seed=1, num_vis=4)
    assert data.steps_per_epoch == 4
    seen = []
    for images, ages, genders in data.epoch(0):
        for image, age_row, gender_row in zip(images.numpy(), ages.numpy(), genders.numpy()):
            path = pixels[np.rint((image + 1) * 127.5).astype(np.uint8).tobytes()]
            age, gender = name_labels(path)
            expected_age = -np.ones(10, np.float32)
            expected_age[group_of(age)] = 1
            np.testing.assert_array_equal(age_row, expected_age)
            np.testing.assert_array_equal(gender_row, [1, -1] if gender == 0 else [-1, 1])
            seen.append(path)
    assert len(seen) == len(set(seen)) == 16
    vis_images, vis_ages, _ = data.visualisation_set()
    vis_paths = {pixels[np.rint((im + 1) * 127.5).astype(np.uint8).tobytes()] for im in vis_images}
    assert len(vis_paths) == 4 and not vis_paths & set(seen)
    for path, age_row in zip([faces.paths[i] for i in data.vis_index], vis_ages):
        assert np.argmax(age_row) == group_of(name_labels(path)[0])
