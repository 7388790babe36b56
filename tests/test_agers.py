"""One way to age a face, whatever the model (face_aging/models/ager.py): the CAAE's and PAGAN's agers age a batch to
ages in years through the same calls, and the combined one hands each (face, age) to the model that should make it."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import PAGAN_ARCH
from face_aging.inference.agers import load_ager
from face_aging.models.ager import AgerError


def write_pagan(savedir, clusters, template="utkface"):
    """Tiny random generators SAVEDIR/clusterK, aligned as `template`; {k: generator}."""
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import build_generator
    from face_aging.training.rundir import RunDir
    generators = {}
    for k in clusters:
        keras.utils.set_random_seed(20 + k)
        generators[k] = build_generator(PAGANConfig(target_cluster=k, template=template, **PAGAN_ARCH))
        run = RunDir(os.path.join(savedir, f"cluster{k}")).make()
        tf.train.CheckpointManager(tf.train.Checkpoint(generator=generators[k]), run.checkpoint, max_to_keep=1,
                                   checkpoint_name="model").save(1)
        run.write_options(dict(PAGAN_ARCH, target_cluster=k, template=template))
    return generators


def faces(n, size=32, seed=3):
    return np.random.default_rng(seed).uniform(-0.8, 0.8, (n, size, size, 3)).astype(np.float32)


def test_the_caae_ages_in_years_per_gender_as_its_model_does(lively_run, tiny_config):
    from face_aging.models.caae.model import gender_labels
    ager = load_ager("caae", lively_run[0])
    assert (ager.size, ager.template, ager.takes_gender) == (32, "caae", True)
    x = faces(3)
    out = ager.age(x, [0, 1, 0], [20.0, np.nan, 50.0], [10, 60])
    assert out.shape == (2, 3, 32, 32, 3) and np.isfinite(out).all()
    men = ager.model.age_faces(x[[0, 2]], [10, 60], gender_labels(0, 2), ager.residual, np.array([20.0, 50.0]))
    woman = ager.model.age_faces(x[[1]], [10, 60], gender_labels(1, 1), ager.residual, np.array([np.nan]))
    # E and G run eagerly for their first calls, then traced (models/tracing.py): equal within float error
    np.testing.assert_allclose(out[:, [0, 2]], men, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out[:, [1]], woman, atol=1e-5, rtol=0)
    assert ager.describe()[0].startswith("CAAE: ") and len(ager.eval_targets()) == 10


@pytest.mark.slow
def test_pagan_blends_its_generators_by_years_and_names_a_missing_cluster(tmp_path):
    from face_aging.models.pagan.infer import AGING_RISE
    generators = write_pagan(str(tmp_path / "run"), (1, 3))
    ager = load_ager("pagan", str(tmp_path / "run"))
    x = faces(2)
    out = ager.age(x, [0, 1], [25.0, 25.0], [25, 25 + AGING_RISE[1], 25 + AGING_RISE[3]])
    np.testing.assert_array_equal(out[0], x)                        # at its own age: the input itself
    for i in range(2):
        np.testing.assert_allclose(out[1, i], np.clip(generators[1](x[i:i + 1], training=False)[0], -1, 1),
                                   atol=1e-5)
        np.testing.assert_allclose(out[2, i], np.clip(generators[3](x[i:i + 1], training=False)[0], -1, 1),
                                   atol=1e-5)
    with pytest.raises(AgerError, match=r"cluster 2 \(41-50\)"):
        ager.check_ages([45])
    assert [t.name for t in ager.eval_targets()] == ["31-40", "51+"] and ager.target_word == "cluster"


@pytest.mark.slow
def test_combined_ages_with_pagan_above_a_faces_own_age_and_the_caae_at_or_below(lively_run, tmp_path):
    savedir = str(tmp_path / "run")
    shutil.copytree(lively_run[0], savedir)
    write_pagan(os.path.join(savedir, "pagan"), (1, 2, 3))
    ager = load_ager("combined", savedir).unsteered()          # unsteered: which model makes what (test_steering.py)
    assert ager.size == 32 and ager.takes_gender
    x = faces(2)
    own, ages = [20.0, 50.0], [10, 40, 60]
    out = ager.age(x, [0, 1], own, ages)
    caae = ager.caae.age(x, [0, 1], own, ages)
    pagan = ager.pagan.age(x, [0, 1], own, ages)
    # Both models' networks run eagerly for their first calls, then traced (models/tracing.py): equal within float
    # error
    near = dict(atol=1e-5, rtol=0)
    np.testing.assert_allclose(out[0], caae[0], **near)             # 10: younger than both
    np.testing.assert_allclose(out[1, 0], pagan[1, 0], **near)      # 40: older than the 20-year-old ...
    np.testing.assert_allclose(out[1, 1], caae[1, 1], **near)       # ... younger than the 50-year-old
    np.testing.assert_allclose(out[2], pagan[2], **near)            # 60: older than both
    assert not np.array_equal(caae[1, 0], pagan[1, 0])              # the two models do differ there
    # A child is aged by the CAAE up to a young adult (PAGAN turns a child into a smear: few children in its data),
    # and older than that, the CAAE's young adult is aged on by PAGAN, from the age the CAAE was asked for.
    from face_aging.inference.combined import CHAIN_AGE, PAGAN_MIN_AGE
    kid = [PAGAN_MIN_AGE - 5.0]
    child = ager.age(x[:1], [1], kid, [CHAIN_AGE - 5, 60])
    np.testing.assert_allclose(child[0], ager.caae.age(x[:1], [1], kid, [CHAIN_AGE - 5])[0], **near)
    adult = ager.caae.age(x[:1], [1], kid, [CHAIN_AGE])[0]
    np.testing.assert_allclose(child[1], ager.pagan.age(adult, [1], [CHAIN_AGE], [60])[0], **near)
    assert not np.array_equal(child[1], ager.caae.age(x[:1], [1], kid, [60])[0])
    assert not np.array_equal(child[1], ager.pagan.age(x[:1], [1], kid, [60])[0])
    # ... in a batch with an adult, each as on its own
    both = ager.age(x[[1, 0]], [0, 1], [30.0] + kid, [60])
    np.testing.assert_allclose(both[0, 1], child[1, 0], **near)
    np.testing.assert_allclose(both[0, 0], ager.pagan.age(x[1:], [0], [30.0], [60])[0, 0], atol=1e-5)
    # A face nothing dates: where the models switch is the CAAE's own reading of it.
    unknown = ager.age(x[:1], [0], [np.nan], [40])
    read = ager.caae.own_ages(x[:1], [0])[0]
    if read < PAGAN_MIN_AGE:
        expected = ager.pagan.age(ager.caae.age(x[:1], [0], [read], [CHAIN_AGE])[0], [0], [CHAIN_AGE], [40])
    else:
        expected = (ager.pagan if 40 > read else ager.caae).age(x[:1], [0], [read], [40])
    np.testing.assert_allclose(unknown[0, 0], expected[0, 0], **near)


def test_combined_refuses_models_that_align_faces_differently(lively_run, tmp_path):
    savedir = str(tmp_path / "run")
    shutil.copytree(lively_run[0], savedir)
    write_pagan(os.path.join(savedir, "pagan"), (1,), template="pagan")
    with pytest.raises(AgerError, match="align faces alike"):
        load_ager("combined", savedir)


def test_combined_carries_the_smaller_models_change_to_the_larger_size(lively_run, tmp_path):
    from face_aging.inference.fullres import carry_change
    savedir = str(tmp_path / "run")
    shutil.copytree(lively_run[0], savedir)
    arch = dict(PAGAN_ARCH, image_size=64)
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import build_generator
    from face_aging.training.rundir import RunDir
    run = RunDir(os.path.join(savedir, "pagan", "cluster1")).make()
    generator = build_generator(PAGANConfig(target_cluster=1, template="utkface", **arch))
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), run.checkpoint, max_to_keep=1,
                               checkpoint_name="model").save(1)
    run.write_options(dict(arch, target_cluster=1, template="utkface"))
    ager = load_ager("combined", savedir).unsteered()
    assert ager.size == 64
    x = faces(1, 64)
    out = ager.age(x, [0], [30.0], [10])                            # the CAAE's, made at 32 and carried to 64
    small = tf.image.resize(x, [32, 32], antialias=True).numpy()
    np.testing.assert_allclose(out[0], carry_change(x, small, ager.caae.age(small, [0], [30.0], [10])[0]), atol=1e-6)


def test_an_unknown_model_is_a_flag_error():
    from face_aging.errors import FlagError
    with pytest.raises(FlagError, match="--model=morph: no such aging model; expected one of caae, pagan, combined"):
        load_ager("morph", "/nonexistent")


def test_pagan_runs_its_generators_once_for_the_sheets_and_the_ages(tmp_path):
    write_pagan(str(tmp_path / "run"), (1, 3))
    ager = load_ager("pagan", str(tmp_path / "run"))
    calls = []
    for k, run in list(ager.run_generator.items()):
        ager.run_generator[k] = lambda x, k=k, run=run: calls.append(k) or run(x)
    x = faces(3)
    sheets = ager.cluster_outputs(x)
    aged = ager.age(x, [0, 0, 0], [20.0, 20.0, 20.0], [40, 55])
    assert sorted(calls) == [1, 3]                                   # one batch each, not again for the ages
    ager.age(x + 0.1, [0, 0, 0], [20.0, 20.0, 20.0], [55])          # other faces: computed afresh
    assert sorted(calls) == [1, 3, 3] and set(sheets) == {1, 3} and aged.shape == (2, 3, 32, 32, 3)


@pytest.mark.parametrize("model", ["caae", "pagan"])
def test_each_face_at_its_own_ages_is_the_batch_at_those_ages(model, lively_run, tmp_path):
    savedir = lively_run[0] if model == "caae" else str(tmp_path / "run")
    if model == "pagan":
        write_pagan(savedir, (1, 2, 3))
    ager = load_ager(model, savedir)
    x = faces(3)
    own, genders = [20.0, 24.0, 31.0], [0, 1, 0]
    each = ager.age_each(x, genders, own, [[30, 50], [30, 50], [41, 62, 70]])
    together = ager.age(x, genders, own, [30, 50])
    # (A batch of another size may round differently in the last digits.)
    np.testing.assert_allclose(each[0], together[:, 0], atol=1e-4)
    np.testing.assert_allclose(each[1], together[:, 1], atol=1e-4)
    alone = ager.age(x[2:], genders[2:], own[2:], [41, 62, 70])
    assert each[2].shape == (3, 32, 32, 3) and not np.allclose(each[2][0], each[2][2], atol=1e-3)
    np.testing.assert_allclose(each[2], alone[:, 0], atol=1e-4)


def test_pagan_says_what_it_does_not_do(lively_run, tmp_path, capsys):
    """PAGAN only ages, and paints an adult's folds over a child's face: the console and the page say so, naming
    --model combined, rather than leave the user to take an unchanged or smeared face for a fault."""
    from face_aging.inference.combined import PAGAN_MIN_AGE
    from face_aging.inference.testmode import TestOptions, run_test
    savedir = str(tmp_path / "run")
    write_pagan(savedir, (1, 2, 3))
    ager = load_ager("pagan", savedir)
    assert ager.caveats([20.0, 35.0], [40, 60]) == []
    one = ager.caveats([38.0], [35, 50, 65])
    assert one == ["PAGAN only ages: at 35 years, not above the face's age now (38), the face is left as it is; "
                   "--model combined also makes faces younger."]
    child = ager.caveats([PAGAN_MIN_AGE - 8.0], [40])
    assert len(child) == 1 and child[0].startswith(f"This face is {PAGAN_MIN_AGE - 8:.0f} years old: PAGAN saw few")
    assert ager.caveats([np.nan], [20]) == []                                  # nothing known, nothing said
    assert load_ager("caae", lively_run[0]).caveats([5.0, 60.0], [30]) == []   # the CAAE makes faces younger
    # Test mode: the count of such faces, once, after the faces' own lines.
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("5_0_0_20170101000000001.jpg", "40_1_0_20170101000000002.jpg", "22_1_0_20170101000000003.jpg"):
        Image.fromarray(np.random.default_rng(len(name)).integers(0, 255, (32, 32, 3), np.uint8)).save(folder / name)
    run_test(TestOptions(testdir=str(folder), savedir=savedir, model="pagan", ages=(30, 60), align="off"))
    printed = capsys.readouterr().out
    assert ("PAGAN only ages: 1 of 3 faces were asked for ages not above their age now (test/faces.json) and are "
            "left as they are there") in printed
    assert f"1 of 3 faces are under {PAGAN_MIN_AGE} years old: PAGAN saw few children" in printed
