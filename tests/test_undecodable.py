"""Images that pass the header and tail checks but do not decode (a JPEG damaged in the middle): the decode check,
its cache, and PAGAN and phi_age on prepared data in which a file was damaged after `prepare`.

(CAAE training, test mode, eval and prepare meet such a file in the bad-input corpus, tests/test_bad_inputs.py.)
"""

import logging
import os

import numpy as np
import pytest

from helpers import damaged_jpeg, stray_marker
from face_aging.data import decode_check, pipeline


def damage_in_place(path):
    """Replace `path` by a JPEG damaged in its middle (intact start and end markers)."""
    with open(path, "wb") as f:
        f.write(damaged_jpeg())


def test_a_damaged_jpeg_passes_the_header_checks_but_not_the_decode(tmp_path):
    path = str(tmp_path / "20_0_0_20170101000000001.jpg")
    damage_in_place(path)
    assert pipeline.check_image(path) is None          # what the old code relied on
    failed = decode_check.undecodable([path], 32)
    assert list(failed) == [path]
    assert failed[path] == ("damaged picture data: it does not decode (jpeg::Uncompress failed. Invalid JPEG data "
                            "or crop window.)")


def test_files_that_decoded_are_cached_by_size_and_time(tmp_path):
    from face_aging.data.synthetic import write_utkface_folder
    paths = write_utkface_folder(str(tmp_path / "faces"), 4, 40, seed=5)
    cache = str(tmp_path / "decoded.json")
    assert decode_check.undecodable(paths, 32, cache) == {}
    # Damaged, but with the size and time the cache remembers: taken from the cache, not decoded again.
    status = os.stat(paths[0])
    with open(paths[0], "rb") as f:
        data = stray_marker(f.read())
    with open(paths[0], "wb") as f:
        f.write(data)
    os.utime(paths[0], ns=(status.st_atime_ns, status.st_mtime_ns))
    assert os.path.getsize(paths[0]) == status.st_size
    assert decode_check.undecodable(paths, 32, cache) == {}
    # A new modification time: decoded again, and found.
    os.utime(paths[0], ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    assert list(decode_check.undecodable(paths, 32, cache)) == [paths[0]]
    # Another model size decodes differently (libjpeg's reduced scales): the cache does not apply.
    assert list(decode_check.undecodable(paths, 16, cache)) == [paths[0]]
    # A damaged cache costs a decode, nothing else.
    with open(cache, "w") as f:
        f.write("{not json")
    assert list(decode_check.undecodable(paths, 32, cache)) == [paths[0]]


@pytest.fixture(scope="module")
def damaged_prepared(tmp_path_factory):
    """Prepared data (160 faces) and a random phi_age; afterwards, the first face each of PAGAN's young stream and
    phi_age's stream reads is damaged. Returns (root, the damaged paths)."""
    from face_aging.data import prepare
    from face_aging.data.synthetic import write_utkface_folder
    from face_aging.models.pagan import data as pdata
    from face_aging.models.pagan import frozen
    from face_aging.models.pagan.vgg import VGG16, scaled_channels
    root = tmp_path_factory.mktemp("damaged_prepared")
    write_utkface_folder(str(root / "faces"), 160, 40, seed=3)
    prepare.prepare([str(root / "faces")], str(root / "prepared"), val_fraction=0.2)
    phi_age = VGG16(4, 32, scaled_channels(0.0625), 8, input_scale=1 / 127.5, name="phi_age")
    frozen.save_age_classifier(phi_age, str(root / "phi_age"), {"source": "random, for tests"})
    train = prepare.read_split(str(root / "prepared"), "train")
    young = pdata.cluster_paths(train, 0, "train")
    first_young = young[pdata.stream_indices(len(young), 4, 2018, 0, 1)[0, 0]]
    first_any = train.paths[pdata.stream_indices(len(train), 16, 2018, 0, 1)[0, 0]]
    damaged = sorted({first_young, first_any})
    for path in damaged:
        damage_in_place(path)
    return root, damaged


def assert_skipped_and_listed(run_dir, damaged, caplog):
    warning = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipped ")]
    assert len(warning) == 1, warning
    for path in damaged:
        assert f"  {os.path.basename(path)}: damaged picture data: it does not decode" in warning[0]
    with open(os.path.join(run_dir, "skipped_files.txt")) as f:
        listed = dict(line.rstrip("\n").split("\t") for line in f)
    assert sorted(listed) == damaged
    assert all(why.startswith("damaged picture data") for why in listed.values())


@pytest.mark.slow
def test_pagan_skips_a_file_damaged_after_prepare(damaged_prepared, tmp_path, caplog):
    from face_aging.models.pagan import train as pagan_train
    from face_aging.models.pagan.config import PAGANConfig, PAGANTrainOptions
    root, damaged = damaged_prepared
    config = PAGANConfig(image_size=32, target_cluster=3, gen_channels=4, res_blocks=1, head_width=0.0625)
    options = PAGANTrainOptions(savedir=str(tmp_path / "pagan"), prepared_dir=str(root / "prepared"),
                                            iterations=2, batch_size=4, age_classifier=str(root / "phi_age"),
                                            identity="random", sample_every=2, config=config)
    with caplog.at_level(logging.WARNING):
        model = pagan_train.train(options)
    assert int(model.step.numpy()) == 2
    run_dir = str(tmp_path / "pagan" / "cluster3")
    assert_skipped_and_listed(run_dir, damaged, caplog)
    assert os.path.exists(os.path.join(run_dir, "checkpoint", "model-2.index"))


@pytest.mark.slow
def test_phi_age_skips_a_file_damaged_after_prepare(damaged_prepared, tmp_path, caplog):
    from face_aging.models.pagan.config import AgeOptions
    from face_aging.models.pagan.age_classifier import train_age_classifier
    root, damaged = damaged_prepared
    options = AgeOptions(prepared_dir=str(root / "prepared"), savedir=str(tmp_path / "run"),
                         out_dir=str(tmp_path / "phi_age"), init="", epochs=1, batch_size=16, image_size=32,
                         width=0.0625, fc_units=8)
    with caplog.at_level(logging.WARNING):
        figures = train_age_classifier(options)
    assert np.isfinite(figures["accuracy"])
    assert_skipped_and_listed(str(tmp_path / "run"), damaged, caplog)


WARNING_ONLY = "Corrupt JPEG data"


def test_a_jpeg_decoded_past_damage_is_named_and_skipped_in_training(tmp_path, capfd):
    """libjpeg returns a picture for it and prints a warning naming no file: the check names the file instead, and
    the raw line never reaches the console."""
    from face_aging.data.synthetic import write_utkface_folder
    from helpers import jpeg_that_decodes_past_damage
    paths = write_utkface_folder(str(tmp_path / "faces"), 3, 40, seed=5)
    bad = str(tmp_path / "faces" / "30_1_0_20170101000000009.jpg.chip.jpg")
    with open(bad, "wb") as f:
        f.write(jpeg_that_decodes_past_damage())
    import tensorflow as tf
    assert tf.io.decode_jpeg(open(bad, "rb").read()).shape == (64, 64, 3)      # it does decode
    capfd.readouterr()
    failed = decode_check.undecodable(paths + [bad], 32)
    assert list(failed) == [bad]
    assert failed[bad].startswith("damaged picture data: libjpeg decoded it past damage ('Corrupt JPEG data: ")
    assert WARNING_ONLY not in capfd.readouterr().err


def test_test_mode_warns_about_a_jpeg_decoded_past_damage(tmp_path, capfd, caplog):
    from helpers import jpeg_that_decodes_past_damage
    path = str(tmp_path / "me.jpg")
    with open(path, "wb") as f:
        f.write(jpeg_that_decodes_past_damage())
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        face, reason = pipeline.read_face(path, 32, upright=True)
    assert reason is None and face.shape == (32, 32, 3)                 # used, as the user asked
    assert "me.jpg: damaged JPEG data, decoded past it (libjpeg: Corrupt JPEG data:" in caplog.text
    assert WARNING_ONLY not in capfd.readouterr().err
