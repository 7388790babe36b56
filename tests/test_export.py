"""--export: SavedModels that load with TensorFlow alone and give the package's own outputs.

The exported model is loaded in a separate Python process that cannot import face_aging (cwd elsewhere, no
PYTHONPATH, and any import of it fails even where the package is installed), for batch sizes it was not traced
with, and its output compared with the package's on the same uint8 images: at most 1 grey level apart."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import call_main, write_pagan_run

LOADER = r"""
import json, sys
sys.modules["face_aging"] = None  # as if it were not installed (it is, in a virtualenv made by scripts/test)
import numpy as np
import tensorflow as tf
job = json.load(open("job.json"))
models = {path: tf.saved_model.load(path) for path in sorted({call["path"] for call in job["calls"]})}
for i, call in enumerate(job["calls"]):
    signature = models[call["path"]].signatures[call["signature"]]
    inputs = {name: tf.constant(np.load(f)) for name, f in call["inputs"].items()}
    np.save(f"out{i}.npy", signature(**inputs)["aged"].numpy())
"""


def load_elsewhere(tmp_path, path, calls):
    """Run `calls` [(signature, {name: array})] on the SavedModel at `path` in a process without face_aging;
    returns the outputs. `path` None: each call is (path, signature, inputs), all in the same process."""
    work = tmp_path / "elsewhere"
    work.mkdir(exist_ok=True)
    job = {"calls": []}
    for i, call in enumerate(calls):
        where, signature, inputs = call if path is None else (path, *call)
        files = {}
        for name, array in inputs.items():
            files[name] = str(work / f"in{i}_{name}.npy")
            np.save(files[name], array)
        job["calls"].append({"path": str(where), "signature": signature, "inputs": files})
    (work / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run([sys.executable, "-c", LOADER], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return [np.load(work / f"out{i}.npy") for i in range(len(calls))]


def package_input(images, size):
    """What the package's read path (pipeline.decode_and_resize) makes of decoded uint8 images: [-1, 1] at size."""
    import tensorflow as tf
    from face_aging.data.pipeline import scale_to_unit
    h, w = images.shape[1:3]
    side = min(h, w)
    images = images[:, (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return scale_to_unit(tf.image.resize(images, [size, size], antialias=True)).numpy()


def assert_close(exported, expected):
    assert exported.dtype == np.uint8 and exported.shape == expected.shape
    assert np.abs(exported.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.slow
def test_caae_export_round_trip(lively_run, tmp_path):
    from face_aging.models.caae.model import gender_labels
    from face_aging.data.labels import plus_minus_one_hot
    from face_aging.images import to_uint8
    savedir, model = lively_run
    out = tmp_path / "exported"
    result = call_main("--model", "caae", "--export", str(out), "--savedir", savedir)
    assert result.returncode == 0, result.stderr
    info = json.loads((out / "export.json").read_text())
    assert info["image_size"] == 32 and info["model"] == "caae" and len(info["age_groups"]) == 10
    assert "serving_default" in info["signatures"] and (out / "README.txt").exists()
    assert not os.path.exists(str(out) + ".tmp-export")

    rng = np.random.RandomState(0)
    three = rng.randint(0, 256, (3, 48, 40, 3), np.uint8)          # non-square: centre-cropped as the package does
    one = rng.randint(0, 256, (1, 32, 32, 3), np.uint8)
    groups, genders = np.array([0, 4, 9], np.int32), np.array([0, 1, 1], np.int32)
    aged3, aged1, every = load_elsewhere(tmp_path, out, [
        ("serving_default", {"image": three, "age_group": groups, "gender": genders}),
        ("serving_default", {"image": one, "age_group": np.array([7], np.int32), "gender": np.array([0], np.int32)}),
        ("progression", {"image": three, "gender": np.array([1], np.int32)}),
    ])
    x3 = package_input(three, 32)
    assert_close(aged3, to_uint8(model.age_to_groups(x3, groups, plus_minus_one_hot(genders, 2))))
    assert_close(aged1, to_uint8(model.age_to_groups(package_input(one, 32), [7], gender_labels(0, 1))))
    progression = model.age_progression(x3, gender_labels(1, 3))                    # [10, 3, S, S, 3]
    assert_close(every, to_uint8(np.transpose(progression, (1, 0, 2, 3, 4))))
    assert aged3.std() > 10                                         # a lively model's faces, not a flat grey

    # Again into the same folder: a previous export is replaced; any other non-empty folder is refused.
    result = call_main("--model", "caae", "--export", str(out), "--savedir", savedir)
    assert result.returncode == 0, result.stderr
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = call_main("--model", "caae", "--export", str(other), "--savedir", savedir)
    assert result.returncode == 2 and "not a previous export" in result.stderr
    assert os.listdir(other) == ["notes.txt"]


@pytest.mark.slow
def test_pagan_export_round_trip(tmp_path):
    from face_aging.images import to_uint8
    from face_aging.models.pagan.infer import load_generators
    savedir = tmp_path / "pagan"
    write_pagan_run(str(savedir), (1, 3))
    out = tmp_path / "exported"
    result = call_main("--model", "pagan", "--export", str(out), "--savedir", str(savedir))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["README.txt", "cluster1", "cluster3", "export.json"]
    info = json.loads((out / "export.json").read_text())
    assert sorted(info["clusters"]) == ["cluster1", "cluster3"] and info["clusters"]["cluster3"]["ages"] == "51+"
    generators = load_generators(str(savedir))
    rng = np.random.RandomState(1)
    three, one = rng.randint(0, 256, (3, 40, 40, 3), np.uint8), rng.randint(0, 256, (1, 64, 48, 3), np.uint8)
    grey = np.repeat(rng.randint(0, 256, (2, 40, 40, 1), np.uint8), 3, -1)      # a black-and-white photo
    outputs = load_elsewhere(tmp_path, None, [(out / f"cluster{k}", "serving_default", {"image": images})
                                              for k in (1, 3) for images in (three, one, grey)])
    for k, (aged3, aged1, aged_grey) in zip((1, 3), (outputs[:3], outputs[3:])):
        generator = generators[k][0]
        for images, aged in ((three, aged3), (one, aged1)):
            assert_close(aged, to_uint8(generator(package_input(images, 32), training=False).numpy()))
        # As test mode ages it (face_aging/colour.py): in black and white, though the generator's change has colour.
        x = package_input(grey, 32)
        assert np.abs(np.diff(generator(x, training=False).numpy(), axis=-1)).max() > 0.02
        assert not np.diff(aged_grey.astype(int), axis=-1).any()          # R = G = B in every pixel


@pytest.mark.parametrize("args, message", [
    (("--model=age", "--export=x"), "--export: only --model caae or pagan"),
    (("--export=",), "--export is empty"),
    (("--export=x", "--eval"), "--export and --eval"),
    (("--export=x", "--gif"), "--gif is for test mode"),
])
def test_export_flag_errors(args, message):
    from face_aging.cli import flags as cli_flags, validate as cli_validate
    from face_aging.errors import FlagError
    from helpers import parsed
    fv = parsed(*args)
    cli_flags.apply_model_defaults(fv)
    with pytest.raises(FlagError, match=message):
        cli_validate.validate(fv)


def test_no_generator_in_the_run_nor_bundled_is_a_clear_error(tmp_path):
    from face_aging.inference.testmode import TestModeError
    from face_aging.models.pagan.infer import load_generators
    with pytest.raises(TestModeError, match="No PAGAN generator under .*none bundled"):
        load_generators(str(tmp_path / "none"), bundled_dir=str(tmp_path / "no_bundle"))


@pytest.mark.slow
def test_export_without_a_checkpoint_exports_the_bundled_generators(tmp_path):
    from face_aging.models.pagan import bundled
    if not bundled.available():
        pytest.skip("no bundled PAGAN generators in this tree")
    result = call_main("--model", "pagan", "--export", str(tmp_path / "out"), "--savedir", str(tmp_path / "none"))
    assert result.returncode == 0, result.stderr
    for k in bundled.available():
        assert (tmp_path / "out" / f"cluster{k}" / "saved_model.pb").exists()
    assert "bundled generator pagan_utkface128/cluster3" in result.stdout
    assert "pagan_utkface128" in (tmp_path / "out" / "export.json").read_text()
