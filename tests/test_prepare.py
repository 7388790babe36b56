"""Tests of PAGAN's data preparation: detecting and reading CACD, FG-NET, MORPH, UTKFace and the PyTorch layout,
the person-disjoint split, the manifests prepare writes and read_split reads back, and the errors a user meets.

Every fixture is written here: tiny noise JPEGs, a CACD-style celebrity2000_meta.mat written with scipy, and so on.
The expected labels come from the fixtures' own tables, never from the code under test.
"""

import csv
import io
import json
import logging
import os

import numpy as np
import pytest
import scipy.io
from PIL import Image

from face_aging.data.prepare import (SPLITS, Manifest, PrepareError, describe, detect_source, prepare, read_source,
                                     read_split, split_by_person)


def cluster_of(age):
    """PAGAN's clusters by the test's own reckoning: 0 = 30 and under, 1 = 31-40, 2 = 41-50, 3 = 51+."""
    return 0 if age <= 30 else 1 if age <= 40 else 2 if age <= 50 else 3


def jpeg_bytes(seed, size=16):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buffer, format="JPEG")
    return buffer.getvalue()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------------------------------
# Fixtures: one small copy of each dataset.

def make_cacd(root, persons=24, images_per_person=6, seed=0):
    """A CACD folder: celebrity2000_meta.mat and CACD2000/. Returns {name: (age, identity)} of the good images and
    the names of the two bad ones (listed but missing; zero bytes)."""
    rng = np.random.default_rng(seed)
    names, ages, identities, years, births = [], [], [], [], []
    truth = {}
    for identity in range(1, persons + 1):
        birth = int(rng.integers(1940, 1995))
        for k in range(images_per_person):
            year = 2004 + 2 * k
            age = year - birth
            name = f"{age}_Person_{identity:04d}_{k + 1:04d}.jpg"
            names.append(name)
            ages.append(age)
            identities.append(identity)
            years.append(year)
            births.append(birth)
            truth[name] = (age, identity)
    missing, empty = names[0], names[1]
    del truth[missing], truth[empty]
    n = len(names)

    def column(values):  # MATLAB's N x 1 double
        return np.asarray(values, np.float64)[:, None]
    scipy.io.savemat(os.path.join(root, "celebrity2000_meta.mat"), {
        "celebrityImageData": {
            "age": column(ages), "identity": column(identities), "year": column(years), "rank": column(np.ones(n)),
            "lfw": column(np.zeros(n)), "birth": column(births),
            "name": np.array(names, dtype=object)[:, None], "feature": np.zeros((n, 4))},
        "celebrityData": {
            "name": np.array([f"Person {i}" for i in range(1, persons + 1)], dtype=object)[:, None],
            "identity": column(range(1, persons + 1)), "birth": column(np.zeros(persons)),
            "rank": column(np.ones(persons)), "lfw": column(np.zeros(persons))},
    })
    for i, name in enumerate(names):
        if name == missing:
            continue
        write(os.path.join(root, "CACD2000", name), b"" if name == empty else jpeg_bytes(i))
    return truth, (missing, empty)


FGNET = {  # name -> (subject, age)
    "001A02.JPG": ("001", 2), "001A14.JPG": ("001", 14), "001A22a.JPG": ("001", 22), "001A43a.JPG": ("001", 43),
    "002A18.jpg": ("002", 18), "002A30b.JPG": ("002", 30), "002A31.JPG": ("002", 31),
    "069A10b.JPG": ("069", 10), "069A16.jpeg": ("069", 16), "069A29.JPG": ("069", 29),
}
FGNET_BAD_NAME = "Thumbs.jpg"
FGNET_EMPTY = "003A20.JPG"


def make_fgnet(folder):
    for i, name in enumerate(FGNET):
        write(os.path.join(folder, name), jpeg_bytes(1100 + i))  # not CACD's jpeg_bytes(0..143): no duplicates
    write(os.path.join(folder, FGNET_BAD_NAME), jpeg_bytes(1099))
    write(os.path.join(folder, FGNET_EMPTY), b"")


MORPH_HEADER = "id_num,picture_num,dob,doa,race,gender,facial_hair,age,age_diff,glasses,photo"
MORPH = [  # (subject, gender letter, age)
    ("003316", "M", 54), ("003316", "M", 56), ("004410", "F", 19), ("004410", "F", 22), ("004410", "F", 33),
    ("120001", "M", 45), ("120001", "M", 47), ("230450", "F", 28), ("230450", "F", 61),
]


def make_morph(root, header=MORPH_HEADER, name="morph_2008_nonCommercial.csv"):
    """MORPH Album 2 style: a CSV with photo paths like Album2/003316_1M54.JPG relative to its folder."""
    lines = [header]
    for k, (subject, gender, age) in enumerate(MORPH):
        photo = f"Album2/{subject}_{k}{gender}{age}.JPG"
        write(os.path.join(root, photo), jpeg_bytes(200 + k))
        lines.append(f"{int(subject)},{k},01/01/1950,01/01/2000,W,{gender},No,{age},0,No,{photo}")
    path = os.path.join(root, name)
    write(path, ("\n".join(lines) + "\n").encode())
    return path


UTKFACE = {  # name -> (age, gender)
    "25_0_0_20170101000000001.jpg.chip.jpg": (25, 0), "34_1_2_20170101000000002.jpg.chip.jpg": (34, 1),
    "47_0_1_20170101000000003.jpg.chip.jpg": (47, 0), "70_1_3_20170101000000004.jpg.chip.jpg": (70, 1),
    "8_1_4_20170101000000005.jpg": (8, 1), "30_0_0_20170101000000006.jpg": (30, 0),
}
UTKFACE_BAD_NAME = "39_1_20170116174525125.jpg.chip.jpg"  # a real malformed UTKFace name (no race)


def make_utkface(folder, faces=UTKFACE, bad=True, first_seed=300):
    for i, name in enumerate(faces):
        write(os.path.join(folder, name), jpeg_bytes(first_seed + i))
    if bad:
        write(os.path.join(folder, UTKFACE_BAD_NAME), jpeg_bytes(399))


SEED_LAYOUT = {"young": 3, "elder1": 2, "elder2": 2, "elder3": 1, "val": 2, "test": 2}
SEED_CLUSTER = {"young": 0, "elder1": 1, "elder2": 2, "elder3": 3, "val": 0, "test": 0}


def make_seed_layout(root):
    """The PyTorch PAGAN reproduction's data_train/ layout; elder2's faces one folder deeper."""
    for i, (sub, count) in enumerate(SEED_LAYOUT.items()):
        for k in range(count):
            where = os.path.join(root, sub, "nested") if sub == "elder2" else os.path.join(root, sub)
            write(os.path.join(where, f"{sub}_{k}.jpg"), jpeg_bytes(500 + 10 * i + k))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    paths = {kind: str(root / kind) for kind in ("cacd", "fgnet", "morph", "utkface", "seed")}
    for folder in paths.values():
        os.makedirs(folder)
    cacd_truth, cacd_bad = make_cacd(paths["cacd"])
    make_fgnet(paths["fgnet"])
    paths["morph_csv"] = make_morph(paths["morph"])
    make_utkface(paths["utkface"])
    make_seed_layout(paths["seed"])
    paths["cacd_truth"], paths["cacd_bad"] = cacd_truth, cacd_bad
    return paths


def by_name(manifest):
    return {os.path.basename(p): i for i, p in enumerate(manifest.paths)}


# ---------------------------------------------------------------------------------------------------------------------
# Detection and reading.

def test_detects_each_kind(data, tmp_path):
    assert detect_source(data["cacd"]) == "cacd"
    assert detect_source(os.path.join(data["cacd"], "celebrity2000_meta.mat")) == "cacd"
    assert detect_source(data["fgnet"]) == "fgnet"
    assert detect_source(data["morph_csv"]) == "morph"
    assert detect_source(data["utkface"]) == "utkface"
    assert detect_source(data["seed"]) == "seed"
    # The FG-NET download: images/ (and points/) inside the folder given.
    make_fgnet(str(tmp_path / "FGNET" / "images"))
    os.makedirs(tmp_path / "FGNET" / "points")
    assert detect_source(str(tmp_path / "FGNET")) == "fgnet"
    manifest, _ = read_source(str(tmp_path / "FGNET"))
    assert len(manifest) == len(FGNET)


def test_cacd_labels_and_skipped_files(data):
    manifest, skipped = read_source(data["cacd"])
    truth, (missing, empty) = data["cacd_truth"], data["cacd_bad"]
    names = by_name(manifest)
    assert set(names) == set(truth)
    for name, (age, identity) in truth.items():
        i = names[name]
        assert manifest.paths[i] == os.path.join(data["cacd"], "CACD2000", name)
        assert manifest.ages[i] == age
        assert manifest.clusters[i] == cluster_of(age)
        assert manifest.persons[i] == f"cacd:{identity}"
    assert manifest.ages.dtype == manifest.clusters.dtype == manifest.genders.dtype == np.int32
    assert set(manifest.genders.tolist()) == {-1} and set(manifest.sources) == {"cacd"}
    reasons = {os.path.basename(p): why for p, why in skipped}
    assert set(reasons) == {missing, empty}
    assert "not in" in reasons[missing] and "CACD2000" in reasons[missing]
    assert reasons[empty]
    # The fixture spans every cluster, so the split tests below mean something.
    assert set(manifest.clusters.tolist()) == {0, 1, 2, 3}


def test_cacd_images_found_beside_the_mat_too(tmp_path):
    """Images in the .mat's own folder (no CACD2000/) are found as well."""
    truth, _ = make_cacd(str(tmp_path), persons=2, images_per_person=3)
    for name in os.listdir(tmp_path / "CACD2000"):
        os.replace(tmp_path / "CACD2000" / name, tmp_path / name)
    os.rmdir(tmp_path / "CACD2000")
    manifest, _ = read_source(str(tmp_path / "celebrity2000_meta.mat"))
    assert set(by_name(manifest)) == set(truth)


def test_fgnet_labels(data):
    manifest, skipped = read_source(data["fgnet"])
    names = by_name(manifest)
    assert set(names) == set(FGNET)
    for name, (subject, age) in FGNET.items():
        i = names[name]
        assert (manifest.ages[i], manifest.clusters[i], manifest.persons[i]) == (age, cluster_of(age),
                                                                                  f"fgnet:{subject}")
    reasons = {os.path.basename(p): why for p, why in skipped}
    assert set(reasons) == {FGNET_BAD_NAME, FGNET_EMPTY}
    assert "FG-NET name" in reasons[FGNET_BAD_NAME]


def test_morph_labels_and_relative_paths(data):
    manifest, skipped = read_source(data["morph_csv"])
    assert skipped == [] and len(manifest) == len(MORPH)
    for k, (subject, gender, age) in enumerate(MORPH):
        i = manifest.paths.index(os.path.join(data["morph"], "Album2", f"{subject}_{k}{gender}{age}.JPG"))
        assert manifest.ages[i] == age and manifest.clusters[i] == cluster_of(age)
        assert manifest.persons[i] == f"morph:{int(subject)}"
        assert manifest.genders[i] == {"M": 0, "F": 1}[gender]
        assert manifest.sources[i] == "morph"


def test_morph_header_names_are_matched_case_insensitively(tmp_path):
    path = make_morph(str(tmp_path), header="ID,Picture,DOB,DOA,Race,Sex,Facial_Hair,AGE,Age_Diff,Glasses,Filename",
                      name="other.csv")
    manifest, skipped = read_source(path)
    assert skipped == [] and len(manifest) == len(MORPH)
    assert sorted(manifest.ages.tolist()) == sorted(age for _, _, age in MORPH)
    assert {p for p in manifest.persons} == {f"morph:{int(s)}" for s, _, _ in MORPH}


def test_csv_without_a_subject_column_is_split_per_face_with_a_note(tmp_path, caplog):
    path = make_morph(str(tmp_path), header="x,picture_num,dob,doa,race,gender,facial_hair,age,age_diff,glasses,photo")
    with caplog.at_level(logging.WARNING):
        summary = prepare([path], str(tmp_path / "out"))
    assert summary["split"]["per_face"] == ["morph"] and summary["split"]["by_person"] == []
    assert any("no subject column" in n for n in summary["notes"])
    assert any("no subject column" in r.getMessage() for r in caplog.records)
    assert set(read_split(str(tmp_path / "out"), "train").persons) == {""}


def test_morph_bad_rows_are_skipped_with_the_line(tmp_path):
    path = make_morph(str(tmp_path))
    with open(path, "a") as f:
        f.write("999,0,x,x,W,M,No,old,0,No,Album2/nothing.JPG\n")   # line 11: no age
        f.write("998,0,x,x,W,X,No,40,0,No,Album2/003316_0M54.JPG\n")  # line 12: unknown gender
        f.write("997,0,x,x,W,M,No,40,0,No,Album2/missing.JPG\n")      # line 13: no such file
    manifest, skipped = read_source(path)
    assert len(manifest) == len(MORPH)
    reasons = [why for _, why in skipped]
    assert len(reasons) == 3
    assert "line 11" in reasons[0] and "age" in reasons[0]
    assert "line 12" in reasons[1] and "gender" in reasons[1]
    assert skipped[2][0].endswith("missing.JPG") and reasons[2]


def test_utkface_labels(data):
    manifest, skipped = read_source(data["utkface"])
    names = by_name(manifest)
    assert set(names) == set(UTKFACE)
    for name, (age, gender) in UTKFACE.items():
        i = names[name]
        assert (manifest.ages[i], manifest.clusters[i], manifest.genders[i]) == (age, cluster_of(age), gender)
        assert manifest.persons[i] == ""
    assert [os.path.basename(p) for p, _ in skipped] == [UTKFACE_BAD_NAME]
    assert "name" in skipped[0][1]


def test_seed_layout_labels(data):
    manifest, skipped = read_source(data["seed"])
    assert skipped == []
    assert len(manifest) == sum(SEED_LAYOUT.values())
    for path, age, cluster, person in zip(manifest.paths, manifest.ages, manifest.clusters, manifest.persons):
        folder = os.path.basename(path).split("_")[0]
        assert (age, cluster, person) == (-1, SEED_CLUSTER[folder], "")


# ---------------------------------------------------------------------------------------------------------------------
# The split.

def synthetic_manifest(persons=300, anonymous=0, seed=0):
    """Faces of `persons` persons (2-12 each, ages spread over all clusters) plus `anonymous` faces of no one."""
    rng = np.random.default_rng(seed)
    paths, ages, who = [], [], []
    for p in range(persons):
        start = int(rng.integers(15, 60))
        for k in range(int(rng.integers(2, 13))):
            paths.append(f"/faces/p{p}_{k}.jpg")
            ages.append(start + 2 * k)
            who.append(f"cacd:{p}")
    for k in range(anonymous):
        paths.append(f"/faces/a{k}.jpg")
        ages.append(int(rng.integers(10, 80)))
        who.append("")
    n = len(paths)
    return Manifest(paths=paths, ages=ages, clusters=[cluster_of(a) for a in ages], persons=who,
                    genders=[-1] * n, sources=["cacd"] * n)


def test_split_keeps_persons_whole_and_respects_the_fraction():
    manifest = synthetic_manifest(anonymous=400)
    train, val = split_by_person(manifest, 0.2, seed=3)
    assert len(train) + len(val) == len(manifest)
    assert sorted(train.paths + val.paths) == sorted(manifest.paths)
    assert not ({p for p in train.persons if p} & {p for p in val.persons if p})
    for cluster in range(4):
        total = np.sum(manifest.clusters == cluster)
        assert total > 100
        share = np.sum(val.clusters == cluster) / total
        assert 0.15 < share < 0.25, (cluster, share)
    # The faces of no one are split too, and labels travel with their faces.
    assert 0 < sum(1 for p in val.persons if not p) < 400
    index = {p: i for i, p in enumerate(manifest.paths)}
    for part in (train, val):
        for i, path in enumerate(part.paths):
            assert part.ages[i] == manifest.ages[index[path]]
            assert part.persons[i] == manifest.persons[index[path]]


def test_split_is_deterministic_and_depends_on_the_seed():
    manifest = synthetic_manifest()
    a = split_by_person(manifest, 0.1, seed=2018)[1]
    b = split_by_person(manifest, 0.1, seed=2018)[1]
    c = split_by_person(manifest, 0.1, seed=7)[1]
    assert a.paths == b.paths and len(a) > 0
    assert set(a.persons) != set(c.persons)
    assert len(split_by_person(manifest, 0.0, seed=1)[1]) == 0
    with pytest.raises(PrepareError, match="val_fraction"):
        split_by_person(manifest, 1.0, seed=1)


def test_split_per_face_where_persons_are_unknown():
    manifest = synthetic_manifest(persons=0, anonymous=1000)
    train, val = split_by_person(manifest, 0.1, seed=0)
    for cluster in range(4):
        total = np.sum(manifest.clusters == cluster)
        assert abs(np.sum(val.clusters == cluster) - 0.1 * total) <= 1


# ---------------------------------------------------------------------------------------------------------------------
# prepare and read_split.

def read_csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_prepare_combined_sources_round_trip(data, tmp_path, caplog):
    out = str(tmp_path / "prepared")
    with caplog.at_level(logging.WARNING):
        summary = prepare([data["cacd"], data["fgnet"], data["morph_csv"], data["utkface"]], out, val_fraction=0.2,
                          seed=5)
    splits = {split: read_split(out, split) for split in SPLITS}
    # Every usable face of the train/val sources is in exactly one of train and val, with its labels.
    expected = Manifest.concat([read_source(data[k])[0] for k in ("cacd", "morph_csv", "utkface")])
    got = Manifest.concat([splits["train"], splits["val"]])
    assert sorted(got.paths) == sorted(expected.paths)
    where = {p: i for i, p in enumerate(expected.paths)}
    for i, path in enumerate(got.paths):
        j = where[path]
        assert (got.ages[i], got.clusters[i], got.persons[i], got.genders[i], got.sources[i]) == (
            expected.ages[j], expected.clusters[j], expected.persons[j], expected.genders[j], expected.sources[j])
    # No person on both sides; persons of different datasets never share an id.
    train_persons = {p for p in splits["train"].persons if p}
    assert train_persons and not train_persons & {p for p in splits["val"].persons if p}
    assert {p.split(":")[0] for p in got.persons if p} == {"cacd", "morph"}
    assert len(splits["val"]) > 0
    # Test: FG-NET faces aged 14-30 only, nothing else.
    test = splits["test"]
    assert set(test.sources) == {"fgnet"}
    assert sorted(os.path.basename(p) for p in test.paths) == sorted(
        n for n, (_, age) in FGNET.items() if 14 <= age <= 30)
    assert all(14 <= a <= 30 for a in test.ages) and set(test.clusters.tolist()) == {0}
    assert summary["fgnet_excluded_by_age"]["count"] == sum(1 for _, a in FGNET.values() if not 14 <= a <= 30)
    # The summary is prepare.json, and its counts are those of the CSVs.
    with open(os.path.join(out, "prepare.json")) as f:
        assert json.load(f) == summary
    for split in SPLITS:
        assert summary["counts"][split] == [int(np.sum(splits[split].clusters == c)) for c in range(4)]
        assert summary["faces"][split] == len(splits[split])
        assert summary["persons"][split] == len({p for p in splits[split].persons if p})
        assert read_csv_rows(os.path.join(out, f"{split}.csv"))[0] == \
            ["path", "age", "cluster", "person", "gender", "source"]
    assert [s["kind"] for s in summary["sources"]] == ["cacd", "fgnet", "morph", "utkface"]
    assert summary["split"]["seed"] == 5 and summary["split"]["val_fraction"] == 0.2
    assert summary["split"]["by_person"] == ["cacd", "morph"] and summary["split"]["per_face"] == ["utkface"]
    for info in summary["sources"]:
        assert sum(info["to"].values()) == info["faces"] - info.get("excluded_by_age", 0)
    # Skipped files are listed with their reasons and were warned about; they did not stop the run.
    skipped = {os.path.basename(s["path"]): s["reason"] for s in summary["skipped"]}
    assert set(skipped) == set(data["cacd_bad"]) | {FGNET_BAD_NAME, FGNET_EMPTY, UTKFACE_BAD_NAME}
    assert all(skipped.values())
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for name in skipped:
        assert name in warned
    text = describe(summary)
    for split in SPLITS:
        assert split in text
    assert str(summary["faces"]["train"]) in text and "51+" in text


def test_prepare_with_the_same_seed_is_reproducible(data, tmp_path):
    first = prepare([data["cacd"]], str(tmp_path / "a"), seed=11)
    second = prepare([data["cacd"]], str(tmp_path / "b"), seed=11)
    assert read_split(str(tmp_path / "a"), "val").paths == read_split(str(tmp_path / "b"), "val").paths
    assert first["counts"] == second["counts"]


def test_prepare_keeps_the_seed_layout_splits(data, tmp_path):
    out = str(tmp_path / "out")
    summary = prepare([data["seed"], data["fgnet"]], out)
    splits = {split: read_split(out, split) for split in SPLITS}
    folder = lambda p: os.path.basename(p).split("_")[0]  # noqa: E731
    assert sorted(folder(p) for p in splits["val"].paths) == ["val"] * SEED_LAYOUT["val"]
    assert sorted(folder(p) for p in splits["train"].paths) == sorted(
        sub for sub in ("young", "elder1", "elder2", "elder3") for _ in range(SEED_LAYOUT[sub]))
    test = splits["test"]
    assert [folder(p) for p, s in zip(test.paths, test.sources) if s == "seed"] == ["test"] * SEED_LAYOUT["test"]
    assert test.sources.count("fgnet") == sum(1 for _, age in FGNET.values() if 14 <= age <= 30)
    assert summary["counts"]["train"] == [SEED_LAYOUT["young"], SEED_LAYOUT["elder1"], SEED_LAYOUT["elder2"],
                                          SEED_LAYOUT["elder3"]]
    assert set(splits["train"].ages.tolist()) == {-1}


def test_no_fgnet_gives_an_empty_test_split_and_a_warning_for_a_missing_cluster(tmp_path, caplog):
    make_utkface(str(tmp_path / "young"), {f"{20 + k}_0_0_2017010100000000{k}.jpg": None for k in range(6)},
                 bad=False)
    make_utkface(str(tmp_path / "young"), {f"{60 + k}_1_0_2017010100000001{k}.jpg": None for k in range(3)},
                 bad=False, first_seed=400)
    out = str(tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        summary = prepare([str(tmp_path / "young")], out)
    assert read_csv_rows(os.path.join(out, "test.csv")) == [["path", "age", "cluster", "person", "gender", "source"]]
    assert len(read_split(out, "test")) == 0
    assert any("test split is empty" in n for n in summary["notes"])
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("cluster 1" in m for m in warned) and any("cluster 2" in m for m in warned)
    assert not any("cluster 3" in m for m in warned) and not any("cluster 0" in m for m in warned)


def test_read_split_resolves_relative_paths_and_names_bad_lines(data, tmp_path):
    out = tmp_path / "out"
    prepare([data["utkface"]], str(out))
    rows = read_csv_rows(str(out / "train.csv"))
    rows.append(["faces/x.jpg", "44", "2", "", "1", "utkface"])
    with open(out / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    manifest = read_split(str(out), "train")
    assert manifest.paths[-1] == str(out / "faces" / "x.jpg")
    assert (manifest.ages[-1], manifest.clusters[-1], manifest.genders[-1]) == (44, 2, 1)
    line = len(rows) + 1
    for bad, word in ((["y.jpg", "44", "0", "", "1", "utkface"], "cluster"),
                      (["y.jpg", "old", "2", "", "1", "utkface"], "whole number"),
                      (["y.jpg", "44", "2"], "fields")):
        with open(out / "train.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows + [bad])
        with pytest.raises(PrepareError) as error:
            read_split(str(out), "train")
        message = str(error.value)
        assert "train.csv" in message and f"line {line}" in message and word in message, message


# ---------------------------------------------------------------------------------------------------------------------
# Errors a user meets.

def test_missing_path(tmp_path):
    with pytest.raises(PrepareError, match="does not exist") as error:
        detect_source(str(tmp_path / "nowhere"))
    assert "nowhere" in str(error.value)
    with pytest.raises(PrepareError):
        prepare([str(tmp_path / "nowhere")], str(tmp_path / "out"))


def test_folder_with_nothing_recognisable(tmp_path):
    # One FG-NET-like name among them must not make the folder FG-NET: the majority decides.
    for name in ("cat.jpg", "dog.png", "holiday.jpg", "001A02.jpg"):
        write(str(tmp_path / name), jpeg_bytes(1))
    write(str(tmp_path / "notes.csv"), b"a,b\n1,2\n")
    with pytest.raises(PrepareError) as error:
        detect_source(str(tmp_path))
    message = str(error.value)
    assert str(tmp_path) in message
    for looked_for in ("celebrity2000_meta.mat", "young/", "FG-NET", "UTKFace", "4 image file", "1 named like"):
        assert looked_for in message, looked_for
    assert "notes.csv" in message  # the hint to pass a MORPH CSV itself


def test_csv_without_an_age_column(tmp_path):
    path = make_morph(str(tmp_path), header="id_num,picture_num,dob,doa,race,gender,facial_hair,years,age_diff,"
                                            "glasses,photo")
    with pytest.raises(PrepareError) as error:
        read_source(path)
    message = str(error.value)
    assert path in message and "age column" in message and "years" in message


def test_missing_cacd_image_folder(tmp_path):
    make_cacd(str(tmp_path), persons=2, images_per_person=2)
    for name in os.listdir(tmp_path / "CACD2000"):
        os.remove(tmp_path / "CACD2000" / name)
    os.rmdir(tmp_path / "CACD2000")
    with pytest.raises(PrepareError) as error:
        read_source(str(tmp_path))
    message = str(error.value)
    assert "CACD2000" in message and str(tmp_path) in message and "Unpack" in message


def test_mat_that_is_not_cacd(tmp_path):
    scipy.io.savemat(str(tmp_path / "celebrity2000_meta.mat"), {"something": np.zeros(3)})
    with pytest.raises(PrepareError, match="celebrityImageData"):
        read_source(str(tmp_path))


def test_matlab_v73_file_is_explained(tmp_path):
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM"
    write(str(tmp_path / "celebrity2000_meta.mat"), header + bytes(512))
    with pytest.raises(PrepareError, match="v7.3") as error:
        read_source(str(tmp_path))
    assert "-v7" in str(error.value)


def test_source_without_usable_faces(tmp_path):
    write(str(tmp_path / "001A20.JPG"), b"")
    with pytest.raises(PrepareError, match="no usable face"):
        prepare([str(tmp_path)], str(tmp_path / "out"))


def test_read_split_on_an_unprepared_dir(data, tmp_path):
    with pytest.raises(PrepareError) as error:
        read_split(str(tmp_path), "train")
    assert "--model prepare" in str(error.value) and str(tmp_path) in str(error.value)
    # CSVs without their prepare.json (an interrupted run) are not a preparation either.
    prepare([data["utkface"]], str(tmp_path))
    os.remove(tmp_path / "prepare.json")
    with pytest.raises(PrepareError, match="--model prepare"):
        read_split(str(tmp_path), "val")


def test_an_interrupted_prepare_is_not_taken_for_a_preparation(data, tmp_path, monkeypatch):
    out = str(tmp_path)
    prepare([data["utkface"]], out)
    before = read_split(out, "train").paths
    # A run that fails while reading its sources leaves the previous preparation usable.
    with pytest.raises(PrepareError):
        prepare([data["utkface"], str(tmp_path / "nowhere")], out)
    assert read_split(out, "train").paths == before
    # A run killed between writing train.csv and val.csv leaves no preparation at all.
    from face_aging.data import prepare as module
    real = module.atomic_write

    def dies_at_val(path, mode="wb"):
        if path.endswith("val.csv"):
            raise KeyboardInterrupt
        return real(path, mode)
    monkeypatch.setattr(module, "atomic_write", dies_at_val)
    with pytest.raises(KeyboardInterrupt):
        prepare([data["cacd"]], out)
    with pytest.raises(PrepareError, match="--model prepare"):
        read_split(out, "train")
