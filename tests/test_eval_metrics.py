"""The evaluation's figures and report on hand-made numbers whose answers are known (no TensorFlow, no judges)."""

import copy
import json
import logging
import math
import os
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from face_aging.data.labels import age_to_cluster, age_to_group
from face_aging.eval import metrics, report

NAN = float("nan")


@pytest.fixture(autouse=True)
def _seeded():
    """Overrides conftest's seeding fixture, which imports Keras: these tests use no TensorFlow at all."""


# --------------------------------------------------------------------------------------------------- metrics

def test_eval_targets_match_the_label_functions():
    from face_aging.data import labels as L
    from face_aging.models.ager import eval_targets
    groups = eval_targets(L.AGE_GROUP_UPPER, L.AGE_GROUP_NAMES)
    clusters = eval_targets(L.AGE_CLUSTER_UPPER, L.AGE_CLUSTER_NAMES)
    assert [(t.low, t.high) for t in groups] == [(0, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, 40), (41, 50),
                                                 (51, 60), (61, 70), (71, 120)]
    assert [(t.low, t.high) for t in clusters] == [(0, 30), (31, 40), (41, 50), (51, 120)]
    for targets, to_index in ((groups, age_to_group), (clusters, age_to_cluster)):
        for index, target in enumerate(targets):
            assert int(to_index(target.low)) == index and int(to_index(target.high)) == index
    assert [t.name for t in clusters] == ["30-", "31-40", "41-50", "51+"]
    # The age a target asks for: its middle; an open-ended one's first ten years' middle.
    assert [t.age for t in clusters] == [15.0, 35.5, 45.5, 60.5] and groups[-1].age == 80.5


def test_age_figures_exclude_failures_and_count_inside_after_rounding():
    figures = metrics.age_figures([20.0, 30.0, 40.0, NAN], 25, 35)
    assert figures["n"] == 3 and figures["failed"] == 1
    assert figures["mean"] == pytest.approx(30.0)
    assert figures["std"] == pytest.approx(math.sqrt(200.0 / 3.0))  # population std
    assert figures["inside"] == pytest.approx(1.0 / 3.0)
    # Whole years, halves up: 30.5 is 31 (inside 31-40), 29.5 is 30 (outside), 40.49 is 40 (inside).
    assert metrics.age_figures([30.5, 29.5, 40.49], 31, 40)["inside"] == pytest.approx(2.0 / 3.0)
    np.testing.assert_array_equal(metrics.whole_years([0.5, 1.5, 2.5, 2.49]), [1, 2, 3, 2])
    empty = metrics.age_figures([NAN, NAN], 0, 5)
    assert empty["n"] == 0 and empty["failed"] == 2 and math.isnan(empty["mean"]) and math.isnan(empty["inside"])


def test_rank_correlation_known_cases():
    up = [1, 2, 3, 4, 5]
    assert metrics.rank_correlation(up, [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert metrics.rank_correlation(up, [50, 40, 30, 20, 10]) == pytest.approx(-1.0)
    # Two neighbouring swaps: rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    assert metrics.rank_correlation(up, [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert metrics.rank_correlation(up, [7, 7, 7, 7, 7]) is None
    assert metrics.rank_correlation([3, 3, 3], [1, 2, 3]) is None
    assert metrics.rank_correlation([1, 2, 3, 4], [1, NAN, NAN, 4]) is None  # two valid pairs
    assert metrics.rank_correlation([1, 2, 3, NAN], [1, 2, 3, 0]) == pytest.approx(1.0)


def test_per_face_rank_correlation():
    matrix = [[10, 20, 30, 40, 50], [50, 40, 30, 20, 10], [9, 9, 9, 9, 9], [2, 1, 4, 3, 5]]
    result = metrics.per_face_rank_correlation(matrix, range(5))
    np.testing.assert_allclose(result["rhos"], [1.0, -1.0, NAN, 0.8])
    assert result["n"] == 3 and result["undefined"] == 1
    assert result["mean"] == pytest.approx(0.8 / 3.0)
    assert result["median"] == pytest.approx(0.8)
    assert metrics.per_face_rank_correlation([[1, 1, 1]], [0, 1, 2])["mean"] is None
    with pytest.raises(ValueError):
        metrics.per_face_rank_correlation(matrix, range(4))


PERSONS = ["a", "a", "b", "", None, "b", "c", "a"]


def _brute_force_impostors(persons):
    key = [("u", i) if p in ("", None) else p for i, p in enumerate(persons)]
    return [(i, j) for i, j in combinations(range(len(persons)), 2) if key[i] != key[j]]


def test_impostor_pairs_are_complete_when_few_and_never_pair_one_person():
    pairs, description = metrics.impostor_pairs(PERSONS, 1000, seed=0)
    expected = _brute_force_impostors(PERSONS)
    assert [tuple(p) for p in pairs] == expected
    assert len(expected) == 28 - 3 - 1  # 8 faces, minus a's 3 pairs and b's 1 pair
    assert f"all {len(expected)} pairs" in description
    assert "2 faces without a person id" in description and "person of its own" in description


@pytest.mark.parametrize("enumerate_limit", [metrics.ENUMERATE_LIMIT, 0])
def test_impostor_samples_are_deterministic_distinct_and_uniform(monkeypatch, enumerate_limit):
    # A limit of 0 forces the rejection sampler meant for huge data sets onto this small case.
    monkeypatch.setattr(metrics, "ENUMERATE_LIMIT", enumerate_limit)
    valid = set(_brute_force_impostors(PERSONS))
    pairs, description = metrics.impostor_pairs(PERSONS, 5, seed=3)
    again, _ = metrics.impostor_pairs(PERSONS, 5, seed=3)
    np.testing.assert_array_equal(pairs, again)
    assert "5 pairs drawn uniformly without repeats (seed 3) from the 24 pairs" in description
    counts = dict.fromkeys(valid, 0)
    seeds = 1000
    for seed in range(seeds):
        pairs, _ = metrics.impostor_pairs(PERSONS, 5, seed=seed)
        rows = [tuple(p) for p in pairs]
        assert len(rows) == 5 == len(set(rows)) and set(rows) <= valid and all(i < j for i, j in rows)
        for row in rows:
            counts[row] += 1
    # Each of the 24 pairs is in a sample with probability 5/24: expect 208 +- 13 (binomial std) per pair.
    expected = seeds * 5 / 24
    assert all(abs(count - expected) < 60 for count in counts.values()), counts


def test_pair_ranks_invert_row_by_row_listing():
    for n in (2, 3, 7, 50):
        rows, cols = np.triu_indices(n, 1)
        i, j = metrics._pair_from_rank(np.arange(rows.size), n)
        np.testing.assert_array_equal(i, rows)
        np.testing.assert_array_equal(j, cols)


SCORES = np.arange(1000) / 1000.0  # impostor scores 0.000, 0.001, ..., 0.999


def test_threshold_at_far_on_a_known_impostor_distribution():
    info = metrics.threshold_at_far(SCORES, 1e-2)
    assert info["threshold"] == pytest.approx(0.989)
    assert int(np.sum(SCORES > info["threshold"])) == 10
    assert info["far_achieved"] == pytest.approx(0.01)
    assert info["n_impostor"] == 1000 and info["enough"] and info["min_pairs_needed"] == 100

    info = metrics.threshold_at_far(SCORES, 1e-3)
    assert info["threshold"] == pytest.approx(0.998) and info["far_achieved"] == pytest.approx(0.001)
    assert info["enough"] and info["min_pairs_needed"] == 1000

    info = metrics.threshold_at_far(SCORES, 1e-5)
    assert not info["enough"] and info["min_pairs_needed"] == 100000
    assert info["threshold"] == pytest.approx(0.999)  # the strictest: no impostor gets through
    assert info["far_achieved"] == 0.0


def test_threshold_at_far_for_distances_ties_and_failures():
    info = metrics.threshold_at_far(SCORES, 1e-2, higher_means_same=False)
    assert info["threshold"] == pytest.approx(0.010)
    assert int(np.sum(SCORES < info["threshold"])) == 10 and info["far_achieved"] == pytest.approx(0.01)
    assert metrics.threshold_at_far(SCORES, 1e-5, higher_means_same=False)["threshold"] == 0.0
    # NaN scores (judge failed) do not count as impostors.
    assert metrics.threshold_at_far(np.append(SCORES, [NAN] * 5), 1e-2)["n_impostor"] == 1000
    # Ties with the threshold are rejected: the achieved FAR may fall short of the target, never exceed it.
    tied = metrics.threshold_at_far(np.full(1000, 0.5), 1e-2)
    assert tied["threshold"] == 0.5 and tied["far_achieved"] == 0.0
    none = metrics.threshold_at_far([], 1e-3)
    assert none["threshold"] is None and not none["enough"]
    assert metrics.verification_rate([0.9], none) is None
    assert metrics.min_pairs_needed(1e-5) == 100000 and metrics.min_pairs_needed(1e-3) == 1000
    # Floating-point dust must not cost a pair: 5 * 10**-6 is 4.9999999999999996e-06, and 0.7 * 90 is 62.99999...
    assert metrics.min_pairs_needed(5 * 10 ** -6) == 200000
    assert metrics.threshold_at_far(np.arange(90.0), 0.7)["far_achieved"] == pytest.approx(0.7)


def test_verification_rate_at_a_threshold():
    info = metrics.threshold_at_far(SCORES, 1e-2)  # threshold 0.989
    assert metrics.verification_rate([0.5, 0.98, 0.99, 0.995, NAN], info) == pytest.approx(0.5)
    distance = metrics.threshold_at_far(SCORES, 1e-2, higher_means_same=False)  # threshold 0.010
    assert metrics.verification_rate([0.005, 0.01, 0.5], distance, higher_means_same=False) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="contradicts"):
        metrics.verification_rate([0.5], distance, higher_means_same=True)
    # An unresolved FAR still gives a rate (flagged by the report through "enough").
    unresolved = metrics.threshold_at_far(SCORES, 1e-5)
    figures = metrics.verification_figures([0.9995, 0.5, NAN], unresolved)
    assert figures == dict(far=1e-5, rate=0.5, enough=False, n=2, failed=1)


def test_near_age_verification_counts_targets_near_the_own_group():
    distances = np.full((2, 10), 0.9)                        # dlib-like: below 0.6 is the same person
    distances[0, 3:6] = [0.5, 0.0, 0.55]                     # face 0, own group 4: verified at 3, 4 and 5
    distances[0, 2] = NAN                                    # undefined: left out
    distances[1, 0:2] = 0.1                                  # face 1, own group 0: verified at 0 and 1
    figures = metrics.near_age_verification(distances, [4, 0], 0.6, higher_means_same=False)
    # Near (within 2): face 0 groups 3-6 (2 is undefined), face 1 groups 0-2: 7 outputs, 5 verified.
    assert figures["n"] == 7 and figures["share"] == pytest.approx(5 / 7)
    # Without the own group: face 0 groups 3, 5, 6 and face 1 groups 1, 2: 5 outputs, 3 verified.
    assert figures["n_aged"] == 5 and figures["share_aged"] == pytest.approx(3 / 5)
    similarities = 1 - distances                             # the same verdicts as similarities above 0.4
    same = metrics.near_age_verification(similarities, [4, 0], 0.4, higher_means_same=True, within=1)
    assert same["n"] == 5 and same["share"] == pytest.approx(5 / 5) and same["share_aged"] == pytest.approx(3 / 3)
    assert metrics.near_age_verification(np.full((1, 10), NAN), [3], 0.6, False) is None


def test_cosine_similarity_and_reconstruction_error():
    sims = metrics.cosine_similarity([[1, 0], [1, 1], [0, 0], [1, 0]], [[0, 1], [2, 2], [1, 0], [-3, 0]])
    np.testing.assert_allclose(sims, [0.0, 1.0, NAN, -1.0])
    assert metrics.identity_figures([0.5, 0.7, NAN]) == pytest.approx(dict(mean=0.6, std=0.1, n=2, failed=1))

    black, white = np.zeros((2, 4, 4, 3), np.uint8), np.full((2, 4, 4, 3), 255, np.uint8)
    assert metrics.reconstruction_error(black, white) == pytest.approx(1.0)
    assert metrics.reconstruction_error(-np.ones((2, 4)), np.ones((2, 4))) == pytest.approx(1.0)
    # A [-1, 1] float 0 is mid-grey: half-way to white.
    assert metrics.reconstruction_error(np.zeros((2, 4, 4, 3), np.float32), white) == pytest.approx(0.5)
    assert metrics.reconstruction_error(np.full((1, 2), 0.5), np.full((1, 2), 0.25)) == pytest.approx(0.125)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        metrics.reconstruction_error(np.full((1, 2), 200.0), np.zeros((1, 2)))


@pytest.mark.slow
def test_the_eval_package_imports_no_tensorflow():
    code = ("import sys; import face_aging.eval.metrics, face_aging.eval.report; "
            "sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib') for m in sys.modules))")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert subprocess.run([sys.executable, "-c", code], cwd=repo).returncode == 0


# ---------------------------------------------------------------------------------------------------- report

def _figures(mean, std, n=100, failed=0, inside=None, low=31, high=40):
    return dict(mean=mean, std=std, n=n, failed=failed, inside=inside, low=low, high=high)


def _results():
    """A PAGAN-like results dict with the seed's numbers, FAR 1e-5 unresolved, FAR 1e-3 resolved."""
    bounds = [(31, 40), (41, 50), (51, 120)]
    rng = np.random.default_rng(0)
    thresholds = [dict(threshold=0.71, far_target=1e-5, far_achieved=0.0, n_impostor=4950, enough=False,
                       min_pairs_needed=100000, higher_means_same=True),
                  dict(threshold=0.62, far_target=1e-3, far_achieved=0.0008, n_impostor=4950, enough=True,
                       min_pairs_needed=1000, higher_means_same=True)]
    gen = [(42.1, 5.3, 0.331), (50.7, 6.0, 0.330), (61.7, 7.2, 0.902)]
    identity = [(0.915, 0.04), (0.866, 0.05), (0.799, 0.061)]
    rates = [(0.998, 0.999), (0.978, 0.99), (0.84, 0.9)]
    per_target = []
    for (low, high), (mean, std, inside), (sim, sim_std), (r5, r3) in zip(bounds, gen, identity, rates):
        per_target.append(dict(
            gen_age=_figures(mean, std, failed=2, inside=inside, low=low, high=high),
            gen_ages=list(rng.normal(mean, std, 100)) + [NAN],
            real_age=_figures(mean - 2, 4.0, n=50, inside=0.7, low=low, high=high),
            real_ages=list(rng.normal(mean - 2, 4.0, 50)),
            identity=dict(mean=sim, std=sim_std, n=100, failed=0),
            verification=[dict(far=1e-5, rate=r5, enough=False, n=100, failed=0),
                          dict(far=1e-3, rate=r3, enough=True, n=100, failed=0)]))
    per_target[2]["real_age"], per_target[2]["real_ages"] = None, None
    return dict(model="pagan", target_word="cluster", checkpoint="runs/pagan", data="CACD val", num_faces=100,
                targets=["31-40", "41-50", "51+"], target_bounds=bounds,
                judges=dict(age=dict(name="DEX", kind="age estimator", source="dex.h5", version="1.0"),
                            identity=dict(name="VGG-Face fc7", kind="face descriptor", source="vgg_face.mat",
                                          score="cosine similarity", higher_means_same=True)),
                face_box="the whole crop", impostors=dict(description="all 4,950 pairs of faces", n_pairs=4950),
                thresholds=thresholds, per_target=per_target)


def _row(text, label):
    return next(line for line in text.splitlines() if line.startswith(f"| {label}"))


def test_build_table_formats_the_seed_numbers():
    table = report.build_table(_results())
    assert "| | 31-40 | 41-50 | 51+ |" in table
    assert _row(table, "generated faces: mean estimated age").endswith("| 42.1 ± 5.3 | 50.7 ± 6.0 | 61.7 ± 7.2 |")
    assert _row(table, "real faces of the cluster").endswith("| 40.1 ± 4.0 | 48.7 ± 4.0 | — |")
    assert _row(table, "generated faces estimated inside the cluster").endswith("| 33.1% | 33.0% | 90.2% |")
    assert _row(table, "generated faces with an age estimate").endswith("| 100 (+2 failed) " * 3 + "|")
    identity = _row(table, "mean identity cosine similarity")
    assert identity.endswith("| 0.915 ± 0.040 | 0.866 ± 0.050 | 0.799 ± 0.061 |")
    assert _row(table, "verification rate @FAR 1e-5").endswith("| 99.8%* | 97.8%* | 84.0%* |")
    assert _row(table, "verification rate @FAR 1e-3").endswith("| 99.9% | 99.0% | 90.0% |")
    assert "\\* fewer than 100,000 impostor pairs (4,950 available): FAR 1e-5 cannot be resolved" in table
    assert "fewer than 1,000" not in table
    for fact in ("PAGAN", "CACD val; 100 input faces", "DEX (age estimator; dex.h5; 1.0)", "the whole crop",
                 "all 4,950 pairs of faces", "Threshold @FAR 1e-5: 0.71"):
        assert fact in table
    assert "Rank correlation" not in table and "Reconstruction" not in table  # CAAE only


def test_build_table_says_why_a_judge_is_missing():
    results = _results()
    results["judges"]["identity"] = {"missing": "no VGG-Face weights in checkpoints/"}
    table = report.build_table(results)
    missing = "| — (judge missing: no VGG-Face weights in checkpoints/) | — | — |"
    for label in ("mean identity", "verification rate @FAR 1e-5", "verification rate @FAR 1e-3"):
        assert _row(table, label).endswith(missing)
    assert "Identity judge: missing: no VGG-Face weights" in table
    assert "impostor pairs (" not in table and "%*" not in table  # no threshold without a judge
    assert _row(table, "generated faces estimated inside").endswith("| 33.1% | 33.0% | 90.2% |")
    console = report.format_console(results)
    assert "judge missing (no VGG-Face weights in checkpoints/)" in console


def test_caae_extra_figures_and_console_table():
    results = _results()
    results.update(model="caae", target_word="group", ranks_targets=True, reconstructs=True,
                   rank_correlation=dict(mean=0.9312, median=0.95, n=99, undefined=1, pooled=0.88),
                   reconstruction_error=0.07123, residual=dict(strength=2.0, input_age="estimate"),
                   near_age_verification=dict(share=0.85, n=1000, threshold=0.6, within=2, share_aged=0.8,
                                              n_aged=800, strict=dict(share=0.7, n=1000, threshold=0.5, within=2,
                                                                      share_aged=0.625, n_aged=800)))
    table = report.build_table(results)
    assert ("per face mean 0.931, median 0.950 over 99 faces (1 undefined); all outputs pooled 0.880") in table
    assert "Reconstruction error of G at the input's own group (mean absolute, [0, 1] pixel units): 0.0712" in table
    assert "Outputs: residual aging, strength 2: the input plus 2 x G's change from the input's own age; own age: " \
           "the group whose reconstruction is closest" in table
    assert "85.0% of 1,000 outputs (80.0% of the 800 at targets 1-2 groups away)" in table
    assert "by the stricter threshold 0.5: 70.0% (62.5% of those at targets 1-2 groups away)" in table
    results["residual"] = dict(strength=0.0, input_age=None)
    assert "Outputs: G's own faces (residual aging off)" in report.build_table(results)
    assert "real faces of the group" in table
    results["judges"]["age"] = {"missing": "no age model"}
    assert "Rank correlation of estimated age with target group: — (judge missing: no age model)" in \
        report.build_table(results)
    console = report.format_console(_results()).splitlines()
    line = next(row for row in console if row.startswith("41-50"))
    assert line.split()[:4] == ["41-50", "50.7", "±", "6.0"] and "97.8%*" in line and "99.0%" in line


def test_format_far_and_json_safety():
    assert report.format_far(1e-5) == "1e-5" and report.format_far(0.001) == "1e-3"
    safe = report.to_json_safe({"a": np.float32(NAN), "b": (np.int64(3), np.array([1.5, np.inf])), 4: np.bool_(1)})
    assert safe == {"a": None, "b": [3, [1.5, None]], "4": True}


def _read_png(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def _near(image, colour, tolerance=8):
    """Pixels within `tolerance` of an RGB colour (antialiased edges blend, the inside of a mark does not)."""
    return np.all(np.abs(image - np.asarray(colour, np.float64)) < tolerance, axis=-1)


def _assert_plot(path):
    image = _read_png(path)
    assert image.shape == (500, 900, 3)
    assert image.var() > 100.0
    assert _near(image, report.GEN_COLOUR).sum() > 100    # the generated faces' markers are drawn
    return image


def test_write_report_writes_json_markdown_and_two_plots(tmp_path):
    pytest.importorskip("matplotlib")
    results = _results()
    results["per_target"][1]["real_age"]["std"] = NAN
    paths = report.write_report(results, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["age_by_target.png", "eval.json", "eval.md", "identity_by_target.png"]
    text = open(paths["json"], encoding="utf-8").read()
    assert "NaN" not in text
    saved = json.loads(text)
    assert saved["per_target"][1]["real_age"]["std"] is None
    assert saved["per_target"][0]["gen_ages"][-1] is None
    assert saved["thresholds"][0]["min_pairs_needed"] == 100000
    assert saved["plots"]["age_by_target"] == dict(path="age_by_target.png", skipped=None)
    assert open(paths["markdown"], encoding="utf-8").read().startswith(report.build_table(results))
    age = _assert_plot(paths["age_by_target"])
    identity = _assert_plot(paths["identity_by_target"])
    assert _near(age, report.REAL_COLOUR).sum() > 100                # real faces drawn beside
    assert np.all(age == report.BAND_COLOUR, axis=-1).sum() > 2000   # the target ranges shaded
    assert _near(identity, report.THRESHOLD_COLOURS[0]).sum() > 300  # the FAR 1e-5 threshold line
    assert "plots" not in results  # the caller's dict is not changed


def _blue_rows(image, columns):
    """Mean row of the generated faces' marks (markers, bars, dots) within a range of pixel columns."""
    rows, _ = np.nonzero(_near(image[:, columns], report.GEN_COLOUR, 40))
    assert rows.size > 50
    return rows.mean()


def test_plots_follow_their_data(tmp_path):
    """Raising the first target's estimated ages moves its marks up and leaves the other targets' pixels alone;
    lowering a threshold moves its line down."""
    pytest.importorskip("matplotlib")
    before = _results()
    after = copy.deepcopy(before)
    target = after["per_target"][0]
    target["gen_age"]["mean"] += 20.0
    target["gen_ages"] = [a + 20.0 for a in target["gen_ages"]]
    after["thresholds"][0]["threshold"] = 0.66
    old = report.write_report(before, str(tmp_path / "before"))
    new = report.write_report(after, str(tmp_path / "after"))
    age_old, age_new = _read_png(old["age_by_target"]), _read_png(new["age_by_target"])
    first, others = slice(60, 300), slice(340, 900)   # the first target's column (of three), the other two
    # The y axis runs 0-90 years over about 400 rows: 20 years is about 90 rows.
    assert _blue_rows(age_old, first) - _blue_rows(age_new, first) > 50
    np.testing.assert_array_equal(age_old[:, others], age_new[:, others])
    red_old, red_new = (np.nonzero(_near(_read_png(p["identity_by_target"])[100:], report.THRESHOLD_COLOURS[0]))[0]
                        for p in (old, new))
    assert red_new.mean() - red_old.mean() > 20        # 0.71 -> 0.66 of a 0.59-0.99 axis: about 50 rows lower


def test_without_matplotlib_the_report_is_written_and_the_plots_named_once(tmp_path, monkeypatch, caplog):
    pytest.importorskip("matplotlib")
    report.write_report(_results(), str(tmp_path))       # plots an earlier run left, which this run must not own
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)     # as if the eval extra were not installed
    with caplog.at_level(logging.WARNING):
        paths = report.write_report(_results(), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["eval.json", "eval.md"]
    assert paths["age_by_target"] is None and paths["identity_by_target"] is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "age_by_target, identity_by_target" in warnings[0]
    assert "pip install -r requirements-eval.txt" in warnings[0]
    saved = json.load(open(paths["json"], encoding="utf-8"))
    assert saved["plots"]["age_by_target"]["skipped"] == report.NO_MATPLOTLIB
    assert f"- identity_by_target: skipped ({report.NO_MATPLOTLIB})" in open(paths["markdown"], encoding="utf-8").read()
    # A plot that has no data gives that reason, not the missing library, and is not in the warning.
    results = _results()
    results["judges"]["age"] = {"missing": "no age model"}
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        paths = report.write_report(results, str(tmp_path))
    assert json.load(open(paths["json"]))["plots"]["age_by_target"]["skipped"] == "no age judge: no age model"
    assert [r.getMessage() for r in caplog.records] == [f"Plots not drawn (identity_by_target): {report.NO_MATPLOTLIB}"]


def test_plots_are_skipped_when_their_data_is_missing(tmp_path):
    pytest.importorskip("matplotlib")
    report.write_report(_results(), str(tmp_path))  # leaves plots that a later run must not appear to own
    results = _results()
    results["judges"]["age"] = {"missing": "no age model"}
    for target in results["per_target"]:
        target["identity"] = dict(mean=NAN, std=NAN, n=0, failed=100)
    paths = report.write_report(results, str(tmp_path))
    assert paths["age_by_target"] is None and paths["identity_by_target"] is None
    assert sorted(os.listdir(tmp_path)) == ["eval.json", "eval.md"]
    saved = json.load(open(paths["json"], encoding="utf-8"))
    assert saved["plots"]["age_by_target"] == dict(path=None, skipped="no age judge: no age model")
    assert "no (input, output) pair has an identity score" in saved["plots"]["identity_by_target"]["skipped"]
    assert "skipped (no age judge: no age model)" in open(paths["markdown"], encoding="utf-8").read()
    # A judge that scored nothing on one target still lets the others be drawn.
    partial = copy.deepcopy(_results())
    partial["per_target"][0]["gen_age"] = _figures(NAN, NAN, n=0, failed=100)
    partial["per_target"][0]["gen_ages"] = [NAN] * 100
    _assert_plot(report.write_report(partial, str(tmp_path))["age_by_target"])
