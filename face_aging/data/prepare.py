"""PAGAN's data preparation: raw face datasets -> train/val/test manifests of age-clustered faces.

PAGAN trains one generator per older age cluster (0 = 30 and under, the young inputs; 1 = 31-40; 2 = 41-50;
3 = 51 and over). `prepare` reads one or more datasets, auto-detecting each from its path, and writes

    out_dir/train.csv, val.csv, test.csv    header path,age,cluster,person,gender,source; absolute paths
    out_dir/prepare.json                    what was read, the counts, how the split was made, what was skipped

It neither copies nor resizes images: the manifests point at the original files.

Sources (see `detect_source`):

- CACD: `celebrity2000_meta.mat`, or a folder holding it. The images are looked for in `CACD2000/` beside the
  .mat, in `CACD2000/CACD2000/` (what unpacking CACD2000.tar.gz inside a CACD2000 folder gives) and in the .mat's
  own folder. A person is a CACD identity.
- FG-NET: a folder of `001A02.JPG`-style files (subject, 'A', age, optional letter), or a folder with such an
  `images/` subfolder (the FG-NET download). Only faces aged 14-30 (`test_ages`) become test faces; FG-NET feeds
  nothing else. A person is a subject.
- MORPH: a CSV file (Album 2 headers `id_num,...,age,...,photo`); file paths in it are relative to its folder.
  A person is a subject (`id_num`).
- UTKFace: a folder of `AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg]` files. No identities: split one face at a time.
- The PyTorch PAGAN reproduction's layout: a folder holding some of `young/ elder1/ elder2/ elder3/ val/ test/`
  (searched recursively). young = cluster 0 and elderK = cluster K go to train; val/ and test/ (young inputs,
  cluster 0) are kept as the val and test splits as given. Ages are unknown (-1).

Train and val are split by person wherever identities are known, so no face of a validation person was seen in
training: a model that memorised a person would otherwise look better than it is. Person ids are prefixed with
their source ("cacd:1234", "fgnet:001", "morph:3316"), so two datasets never merge persons.
"""

import collections
import csv
import dataclasses
import io
import json
import logging
import os
import re

import numpy as np

from face_aging.data import holdout as held_out
from face_aging.data import labels as L
from face_aging.data.decode_check import undecodable
from face_aging.data.pipeline import (IMAGE_EXTENSIONS, DuplicateIndex, check_image, duplicate_reason,
                                      list_image_files, printable, warn_skipped)
from face_aging.errors import FaceAgingError
from face_aging.fileio import atomic_write

SPLITS = ("train", "val", "test")
SOURCE_KINDS = ("cacd", "fgnet", "morph", "utkface", "seed")
CSV_COLUMNS = ("path", "age", "cluster", "person", "gender", "source")
SUMMARY_FILE = "prepare.json"
PREPARE_COMMAND = "python main.py --model prepare --dataset SRC[,SRC...] --prepared_dir DIR"

CACD_META = "celebrity2000_meta.mat"
CACD_IMAGE_FOLDERS = ("CACD2000", os.path.join("CACD2000", "CACD2000"), "")  # relative to the .mat's folder
SEED_FOLDERS = {"young": 0, "elder1": 1, "elder2": 2, "elder3": 3, "val": 0, "test": 0}
SEED_SPLITS = {"young": "train", "elder1": "train", "elder2": "train", "elder3": "train", "val": "val",
               "test": "test"}
# MORPH-style CSV columns: accepted header names (case-insensitive, spaces read as '_'), first match wins.
CSV_FILE_COLUMNS = ("photo", "file", "filename", "file_name", "image", "path")
CSV_SUBJECT_COLUMNS = ("id_num", "subject", "subject_id", "id", "person")
CSV_AGE_COLUMNS = ("age",)
CSV_GENDER_COLUMNS = ("gender", "sex")
GENDER_VALUES = {"m": 0, "male": 0, "0": 0, "f": 1, "female": 1, "1": 1}  # the house convention: 0 male, 1 female

_FGNET_NAME = re.compile(r"^(?P<subject>\d{3})A(?P<age>\d{2,3})(?P<letter>[a-z]?)\.(?:jpe?g|png)$", re.IGNORECASE)
# Looser than labels.parse_utkface_name on purpose: a UTKFace folder with some malformed names is still UTKFace
# (those files are then skipped with the reason), not "unrecognisable".
_UTKFACE_LIKE = re.compile(r"^\d{1,3}_\d")
_FGNET_LIKE = re.compile(r"^\d{3}A\d", re.IGNORECASE)
_CACD_LIKE = re.compile(r"^\d{1,3}_[^_]+_.+_\d{4}\.jpe?g$", re.IGNORECASE)

SOURCES_HELP = (
    f"A source is one of: CACD ({CACD_META}, or a folder holding it, with the images in CACD2000/ beside it); "
    "FG-NET (a folder of files named like 001A02.JPG); MORPH (the CSV file itself, with columns for the image file, "
    "subject id and age); UTKFace (a folder of AGE_GENDER_RACE_DATETIME.jpg files); or the PyTorch PAGAN layout "
    "(a folder holding young/ elder1/ elder2/ elder3/ val/ test/).")


class PrepareError(FaceAgingError, ValueError):
    """A dataset source that cannot be read, or prepared manifests that cannot be used: the message says which file,
    what is wrong and what to do."""


@dataclasses.dataclass
class Manifest:
    """Faces by file, with their labels; one entry per face in every field."""
    paths: list            # absolute paths
    ages: np.ndarray       # int32 years, -1 where unknown
    clusters: np.ndarray   # int32 PAGAN age cluster 0-3
    persons: list          # source-prefixed person id, "" where unknown
    genders: np.ndarray    # int32 0 male / 1 female / -1 unknown
    sources: list          # "cacd" | "fgnet" | "morph" | "utkface" | "seed"

    def __post_init__(self):
        self.paths, self.persons, self.sources = list(self.paths), list(self.persons), list(self.sources)
        self.ages = np.asarray(self.ages, np.int32).reshape(-1)
        self.clusters = np.asarray(self.clusters, np.int32).reshape(-1)
        self.genders = np.asarray(self.genders, np.int32).reshape(-1)
        lengths = {len(self.paths), len(self.ages), len(self.clusters), len(self.persons), len(self.genders),
                   len(self.sources)}
        if len(lengths) != 1:
            raise ValueError(f"Manifest fields have different lengths: {sorted(lengths)}")

    def __len__(self):
        return len(self.paths)

    def select(self, mask_or_indices):
        """The faces at a boolean mask or at integer indices (in that order), as a new Manifest."""
        index = np.asarray(mask_or_indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"mask of shape {index.shape} for a manifest of {len(self)} faces")
            index = np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        return Manifest(paths=[self.paths[i] for i in index], ages=self.ages[index], clusters=self.clusters[index],
                        persons=[self.persons[i] for i in index], genders=self.genders[index],
                        sources=[self.sources[i] for i in index])

    @staticmethod
    def concat(manifests):
        """One Manifest of the faces of `manifests`, in order."""
        manifests = list(manifests)
        return Manifest(paths=[p for m in manifests for p in m.paths],
                        ages=np.concatenate([m.ages for m in manifests] or [np.zeros(0, np.int32)]),
                        clusters=np.concatenate([m.clusters for m in manifests] or [np.zeros(0, np.int32)]),
                        persons=[p for m in manifests for p in m.persons],
                        genders=np.concatenate([m.genders for m in manifests] or [np.zeros(0, np.int32)]),
                        sources=[s for m in manifests for s in m.sources])


class _Collector:
    """Faces of one source as they are read, then one Manifest."""

    def __init__(self, kind):
        self.kind = kind
        self.paths, self.ages, self.clusters, self.persons, self.genders, self.splits = [], [], [], [], [], []

    def add(self, path, age, person="", gender=-1, cluster=None, split=""):
        self.paths.append(os.path.abspath(path))
        self.ages.append(age)
        self.clusters.append(int(L.age_to_cluster(age)) if cluster is None else cluster)
        self.persons.append(f"{self.kind}:{person}" if person else "")
        self.genders.append(gender)
        self.splits.append(split)

    def manifest(self):
        return Manifest(paths=self.paths, ages=self.ages, clusters=self.clusters, persons=self.persons,
                        genders=self.genders, sources=[self.kind] * len(self.paths))

    def keep(self, indices):
        """Keep only the faces at `indices` (in order)."""
        for field in ("paths", "ages", "clusters", "persons", "genders", "splits"):
            values = getattr(self, field)
            setattr(self, field, [values[i] for i in indices])


# ---------------------------------------------------------------------------------------------------------------------
# Detection.

def _image_names(folder):
    """Names of the image-named entries of `folder` that are files."""
    return [os.path.basename(p) for p in list_image_files(folder) if os.path.isfile(p)]


def _name_kind(names):
    """'fgnet' or 'utkface' if most of `names` look like that dataset's file names, else None."""
    fgnet = sum(1 for n in names if _FGNET_LIKE.match(n))
    utkface = sum(1 for n in names if _UTKFACE_LIKE.match(n))
    # A majority, not "any": one stray UTKFace-like name must not turn a folder of other images into UTKFace.
    if fgnet * 2 > len(names):
        return "fgnet"
    if utkface * 2 > len(names):
        return "utkface"
    return None


def _resolve(path):
    """(kind, the path to read) of a source; PrepareError naming the path and what was looked for if none fits."""
    if not os.path.exists(path):
        raise PrepareError(f"Dataset source {printable(path)!r} does not exist. {SOURCES_HELP}")
    if os.path.isfile(path):
        ext = os.path.splitext(path)[1].lower()
        if ext == ".mat":
            return "cacd", path
        if ext == ".csv":
            return "morph", path
        raise PrepareError(f"Dataset source {path!r} is a file but neither a .mat (CACD's {CACD_META}) nor a .csv "
                           f"(MORPH). {SOURCES_HELP}")
    try:
        entries = os.listdir(path)
        names = None if CACD_META in entries else _image_names(path)
    except OSError as error:
        raise PrepareError(f"Dataset source {printable(path)!r} cannot be listed ({error.strerror or error})."
                           ) from None
    if CACD_META in entries:
        return "cacd", os.path.join(path, CACD_META)
    if any(os.path.isdir(os.path.join(path, name)) for name in SEED_FOLDERS):
        return "seed", path
    kind = _name_kind(names)
    if kind:
        return kind, path
    images = os.path.join(path, "images")
    if not names and os.path.isdir(images) and _name_kind(_image_names(images)) == "fgnet":
        return "fgnet", images
    found = [f"{len(names)} image file(s)"]
    if names:
        found.append(f"{sum(1 for n in names if _FGNET_LIKE.match(n))} named like FG-NET's 001A02.JPG and "
                     f"{sum(1 for n in names if _UTKFACE_LIKE.match(n))} like UTKFace's AGE_GENDER_RACE_*.jpg "
                     f"(a folder is read as one of those when most of its images are)")
    hints = []
    if names and sum(1 for n in names if _CACD_LIKE.match(n)) * 2 > len(names):
        hints.append(f"These look like CACD2000 images: CACD's ages and identities are in {CACD_META}; pass that "
                     f"file, or the folder holding it and CACD2000/.")
    if os.path.isdir(os.path.join(path, "CACD2000")):
        hints.append(f"There is a CACD2000/ folder but no {CACD_META} beside it: put the .mat there.")
    csvs = sorted(n for n in entries if n.lower().endswith(".csv"))
    if csvs:
        hints.append(f"For MORPH pass the CSV file itself, e.g. {os.path.join(path, csvs[0])!r}.")
    raise PrepareError(
        f"Dataset source {path!r} is not a dataset this can read: looked for {CACD_META} (CACD), subfolders "
        f"{' '.join(n + '/' for n in SEED_FOLDERS)} (the PyTorch PAGAN layout) and image files named like FG-NET's "
        f"or UTKFace's; found {', '.join(found)}. {' '.join(hints + [SOURCES_HELP])}")


def detect_source(path):
    """The kind of dataset at `path`: one of SOURCE_KINDS. PrepareError naming the path and what was looked for
    when none fits."""
    return _resolve(path)[0]


# ---------------------------------------------------------------------------------------------------------------------
# Readers. Each returns (collector, skipped, details); a face whose file or labels are unusable is skipped with
# the reason, never guessed at, because a wrong age silently trains a generator on the wrong cluster.

def _checked(path, skipped):
    """True if `path` is a usable image; otherwise records why not."""
    reason = check_image(path)
    if not reason:
        try:
            os.path.abspath(path).encode("utf-8")
        except UnicodeEncodeError:
            reason = ("file name is not UTF-8, and the prepared manifests are UTF-8 text; rename the file (or its "
                      "folder)")
    if reason:
        skipped.append((path, reason))
        return False
    return True


def _drop_duplicates(faces, skipped, index):
    """Remove from `faces` (a _Collector) every face whose file has the bytes of one seen before by `index` (this
    source or an earlier one), recording it as skipped: a duplicate could sit on both sides of the split."""
    keep = []
    for i, path in enumerate(faces.paths):
        first = index.first_copy(path)
        if first:
            skipped.append((path, duplicate_reason(path, first)))
        else:
            keep.append(i)
    if len(keep) < len(faces.paths):
        faces.keep(keep)


def _drop_undecodable(faces, skipped):
    """Remove from `faces` every face whose picture data does not decode (decode_check), recording why."""
    failed = undecodable(faces.paths)
    skipped += [(p, failed[p]) for p in faces.paths if p in failed]
    if failed:
        faces.keep([i for i, p in enumerate(faces.paths) if p not in failed])


def _valid_age(value):
    """An int age 0..MAX_AGE from a number or string, or None."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if not np.isfinite(number) or number != int(number) or not 0 <= number <= L.MAX_AGE:
        return None
    return int(number)


def _numbers(value):
    return np.atleast_1d(np.asarray(value, dtype=np.float64)).reshape(-1)


def _strings(value):
    """MATLAB cell array of strings (as loaded with squeeze_me) -> list of str; an empty cell gives ''."""
    if isinstance(value, str):
        return [value]
    out = []
    for item in np.atleast_1d(np.asarray(value, dtype=object)).reshape(-1):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, np.ndarray):
            out.append("".join(str(c) for c in item.reshape(-1)))
        else:
            out.append(str(item))
    return out


def _load_cacd_meta(mat_path):
    """(names, ages, identities) from celebrity2000_meta.mat's celebrityImageData."""
    import scipy.io  # only CACD needs it
    what = f"CACD metadata {mat_path!r}"
    try:
        mat = scipy.io.loadmat(mat_path, variable_names=["celebrityImageData"], squeeze_me=True,
                               struct_as_record=False)
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) .mat
        raise PrepareError(f"{what} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it as v7 "
                           f"(in MATLAB or Octave: load it, then save('-v7', ...)) or use the file as "
                           f"downloaded from the CACD site.") from None
    except Exception as error:  # scipy raises ValueError, TypeError, OSError, ... for a damaged file
        raise PrepareError(f"{what} cannot be read as a MATLAB file ({error}); download it again from the CACD "
                           f"site.") from None
    if "celebrityImageData" not in mat:
        found = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
        raise PrepareError(f"{what} has no variable celebrityImageData (variables found: {found}); is it the "
                           f"CACD metadata file?")
    data = mat["celebrityImageData"]
    fields = getattr(data, "_fieldnames", None)
    if fields is None:
        raise PrepareError(f"{what}: celebrityImageData is not a 1x1 struct (it is a {type(data).__name__}); is it "
                           f"the CACD metadata file?")
    missing = [f for f in ("age", "identity", "name") if f not in fields]
    if missing:
        raise PrepareError(f"{what}: celebrityImageData has no field(s) {', '.join(missing)} (fields: "
                           f"{', '.join(fields)}); is it the CACD metadata file?")
    names, ages, identities = _strings(data.name), _numbers(data.age), _numbers(data.identity)
    if not len(names) == len(ages) == len(identities):
        raise PrepareError(f"{what}: celebrityImageData's name, age and identity have different lengths "
                           f"({len(names)}, {len(ages)}, {len(identities)}); the file is damaged, download it "
                           f"again.")
    return names, ages, identities


def _read_cacd(mat_path):
    names, ages, identities = _load_cacd_meta(mat_path)
    base = os.path.dirname(os.path.abspath(mat_path))
    candidates = [os.path.normpath(os.path.join(base, sub)) for sub in CACD_IMAGE_FOLDERS]
    wanted = set(names)
    best, best_found, listings = None, 0, {}
    for folder in candidates:
        if os.path.isdir(folder):
            listings[folder] = set(os.listdir(folder))
            found = len(wanted & listings[folder])
            if found > best_found:
                best, best_found = folder, found
    if best is None:
        example = f" (e.g. {names[0]})" if names else ""
        raise PrepareError(
            f"CACD: none of the {len(names)} images listed in {mat_path!r}{example} is in "
            f"{', '.join(repr(c) for c in candidates)}. Unpack CACD2000.tar.gz beside the .mat, so that the images "
            f"are in {candidates[0]!r} (a symbolic link to the image folder works too).")
    faces, skipped = _Collector("cacd"), []
    for name, age, identity in zip(names, ages, identities):
        path = os.path.join(best, name)
        if name not in listings[best]:
            skipped.append((path, f"listed in {CACD_META} but not in {best}"))
            continue
        age = _valid_age(age)
        if age is None:
            skipped.append((path, f"age in {CACD_META} is not a whole number 0-{L.MAX_AGE}"))
            continue
        if not np.isfinite(identity):
            skipped.append((path, f"identity in {CACD_META} is not a number"))
            continue
        if _checked(path, skipped):
            faces.add(path, age, person=str(int(identity)))
    return faces, skipped, {"images": best}


def _read_fgnet(folder):
    faces, skipped = _Collector("fgnet"), []
    for path in list_image_files(folder):
        match = _FGNET_NAME.match(os.path.basename(path))
        if not match:
            skipped.append((path, "not an FG-NET name (SUBJECT 'A' AGE [letter], like 001A02.JPG or 001A43a.JPG)"))
            continue
        age = int(match["age"])
        if age > L.MAX_AGE:
            skipped.append((path, f"age {age} is outside 0-{L.MAX_AGE}"))
            continue
        if _checked(path, skipped):
            faces.add(path, age, person=match["subject"])
    return faces, skipped, {}


def _read_utkface(folder):
    faces, skipped = _Collector("utkface"), []
    for path in list_image_files(folder):
        try:
            age, gender, _ = L.parse_utkface_name(os.path.basename(path))
        except L.LabelError as error:
            skipped.append((path, f"malformed name: {error}"))
            continue
        if _checked(path, skipped):
            faces.add(path, age, gender=gender)
    return faces, skipped, {}


def _read_seed(folder):
    faces, skipped, used = _Collector("seed"), [], []
    for sub, cluster in SEED_FOLDERS.items():
        root = os.path.join(folder, sub)
        if not os.path.isdir(root):
            continue
        used.append(sub)
        # Recursive: an ImageFolder-style young/<anything>/face.jpg is as good as young/face.jpg.
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    path = os.path.join(dirpath, name)
                    if _checked(path, skipped):
                        faces.add(path, -1, cluster=cluster, split=SEED_SPLITS[sub])
    return faces, skipped, {"folders": used}


def _pick_column(header, accepted):
    for name in accepted:
        if name in header:
            return header.index(name)
    return None


def _read_csv_table(csv_path):
    """Header (normalised names) and rows of a CSV, with the delimiter (',', ';' or tab) read off the header."""
    try:
        with open(csv_path, "rb") as f:
            raw = f.read()
    except OSError as error:
        raise PrepareError(f"MORPH CSV {csv_path!r} cannot be read ({error.strerror or error}).") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # MORPH's own files are ASCII; never fails, and file names stay byte-exact
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = [(reader.line_num, row) for row in reader]
    if not rows:
        raise PrepareError(f"MORPH CSV {csv_path!r} is empty; expected a header line such as "
                           f"id_num,picture_num,dob,doa,race,gender,facial_hair,age,age_diff,glasses,photo.")
    header = [re.sub(r"\s+", "_", h.strip().lower()) for h in rows[0][1]]
    return header, rows[1:]


def _read_morph(csv_path):
    header, rows = _read_csv_table(csv_path)
    columns = {"file": _pick_column(header, CSV_FILE_COLUMNS), "subject": _pick_column(header, CSV_SUBJECT_COLUMNS),
               "age": _pick_column(header, CSV_AGE_COLUMNS), "gender": _pick_column(header, CSV_GENDER_COLUMNS)}
    for role, accepted in (("file", CSV_FILE_COLUMNS), ("age", CSV_AGE_COLUMNS)):
        if columns[role] is None:
            raise PrepareError(f"MORPH CSV {csv_path!r} has no {role} column: its header is {','.join(header)}; "
                               f"name the {role} column one of {', '.join(accepted)} (any case).")
    details = {"columns": {role: header[i] for role, i in columns.items() if i is not None}}
    if columns["subject"] is None:
        # Still usable, but the split can then put one person on both sides: say so loudly rather than refuse.
        details["notes"] = [f"{csv_path}: no subject column ({', '.join(CSV_SUBJECT_COLUMNS)}): persons are "
                            f"unknown and its faces were split one at a time"]
        logging.warning("%s", details["notes"][0])
    base = os.path.dirname(os.path.abspath(csv_path))
    faces, skipped = _Collector("morph"), []
    width = len(header)
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{csv_path}:{line}"
        if len(row) != width:
            skipped.append((where, f"line {line} has {len(row)} fields, the header {width}"))
            continue
        value = row[columns["file"]].strip()
        if not value:
            skipped.append((where, f"line {line} has an empty {header[columns['file']]}"))
            continue
        if os.sep == "/":
            value = value.replace("\\", "/")  # CSVs written on Windows
        path = os.path.normpath(os.path.join(base, value))
        age = _valid_age(row[columns["age"]])
        if age is None:
            skipped.append((path, f"line {line}: age {row[columns['age']]!r} is not a whole number 0-{L.MAX_AGE}"))
            continue
        gender = -1
        if columns["gender"] is not None:
            text = row[columns["gender"]].strip().lower()
            if text:
                if text not in GENDER_VALUES:
                    skipped.append((path, f"line {line}: gender {text!r} is not M/F/male/female/0/1"))
                    continue
                gender = GENDER_VALUES[text]
        person = row[columns["subject"]].strip() if columns["subject"] is not None else ""
        if _checked(path, skipped):
            faces.add(path, age, person=person, gender=gender)
    return faces, skipped, details


_READERS = {"cacd": _read_cacd, "fgnet": _read_fgnet, "morph": _read_morph, "utkface": _read_utkface,
            "seed": _read_seed}


def _read(path, duplicates=None):
    """(kind, resolved path, collector, skipped, details) of one source; duplicates (same bytes as a face read
    before, here or by the DuplicateIndex `duplicates` of earlier sources) are skipped."""
    kind, resolved = _resolve(path)
    faces, skipped, details = _READERS[kind](resolved)
    _drop_undecodable(faces, skipped)  # first: of two copies, the one kept must be one that decodes
    _drop_duplicates(faces, skipped, DuplicateIndex() if duplicates is None else duplicates)
    return kind, resolved, faces, skipped, details


def read_source(path):
    """(Manifest, skipped) of the dataset at `path`, its kind auto-detected; skipped lists (path, reason) of every
    file or row left out. Every face's file is checked with pipeline.check_image; of files with the same bytes only
    the first (in reading order: sorted for folders) is kept."""
    _, _, faces, skipped, _ = _read(path)
    return faces.manifest(), skipped


# ---------------------------------------------------------------------------------------------------------------------
# Splitting.

def _check_fraction(val_fraction):
    if not 0 <= val_fraction < 1:
        raise PrepareError(f"val_fraction={val_fraction}: must be in [0, 1) (0.1 puts a tenth of the faces in val)")


def split_by_person(manifest, val_fraction, seed):
    """(train, val): whole persons go to one side; faces whose person is "" are placed one at a time.

    Deterministic given `seed`; see _val_mask for how.
    """
    mask = _val_mask(manifest, val_fraction, seed)
    return manifest.select(~mask), manifest.select(mask)


def _val_mask(manifest, val_fraction, seed):
    """Boolean mask of the faces that go to val.

    Persons are visited in an order shuffled by `seed` and each is put in val if that brings val's face count in
    every cluster closer to `val_fraction` of the cluster (errors relative to each cluster's target, so the small
    old clusters count as much as the large young one). Persons are whole units, so the fraction is met only
    approximately, and not at all in a cluster too small for one person's faces to fit.
    """
    _check_fraction(val_fraction)
    known = sorted({p for p in manifest.persons if p})
    unit_index = {p: i for i, p in enumerate(known)}
    units = np.empty(len(manifest), np.int64)
    next_unit = len(known)
    for i, person in enumerate(manifest.persons):
        if person:
            units[i] = unit_index[person]
        else:
            units[i] = next_unit
            next_unit += 1
    counts = np.zeros((next_unit, L.NUM_AGE_CLUSTERS))
    np.add.at(counts, (units, manifest.clusters), 1)
    target = val_fraction * counts.sum(axis=0)
    weight = 1.0 / np.maximum(target, 1.0) ** 2
    in_val = np.zeros(next_unit, bool)
    val_counts = np.zeros(L.NUM_AGE_CLUSTERS)
    for unit in np.random.RandomState(seed).permutation(next_unit):
        c = counts[unit]
        change = np.sum(weight * ((val_counts + c - target) ** 2 - (val_counts - target) ** 2))
        if change < 0:
            in_val[unit] = True
            val_counts += c
    return in_val[units]


# ---------------------------------------------------------------------------------------------------------------------
# Writing and reading prepared manifests.

def _csv_bytes(manifest):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in zip(manifest.paths, manifest.ages, manifest.clusters, manifest.persons, manifest.genders,
                   manifest.sources):
        writer.writerow([row[0], int(row[1]), int(row[2]), row[3], int(row[4]), row[5]])
    return buffer.getvalue().encode("utf-8")


def _cluster_counts(manifest):
    return np.bincount(manifest.clusters, minlength=L.NUM_AGE_CLUSTERS).astype(int).tolist()


def prepare(sources, out_dir, val_fraction=0.1, seed=2017, test_ages=(14, 30), holdout=False):
    """Read `sources` (paths, or one path), split them and write out_dir/{train,val,test}.csv and prepare.json.

    CACD, MORPH and UTKFace faces are split into train and val by `split_by_person`; the PAGAN layout's folders
    keep the split they were given; test is FG-NET's faces aged `test_ages` (inclusive) plus the layout's test/.
    `holdout`: the CACD/MORPH/UTKFace faces go by the held-out rule instead (face_aging/data/holdout.py, the same
    faces the CAAE recipe leaves out): its test set to test, its val set to val, the rest to train, so that no
    generator trains on a face --eval --holdout test reports on.
    Returns the summary written to prepare.json. PrepareError if a source is unreadable or gives no usable face.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [os.fspath(s) for s in sources]
    if not sources:
        raise PrepareError(f"No dataset source given. {SOURCES_HELP}")
    _check_fraction(val_fraction)
    val_fraction, seed = float(val_fraction), int(seed)  # plain numbers: they go into prepare.json
    low, high = (int(a) for a in test_ages)
    if not 0 <= low <= high:
        raise PrepareError(f"test_ages={tuple(test_ages)}: must be (youngest, oldest) with 0 <= youngest <= oldest")
    seen = {}
    for source in sources:
        key = os.path.realpath(source)
        if key in seen:
            raise PrepareError(f"Dataset source {source!r} is given twice (also as {seen[key]!r}); give it once.")
        seen[key] = source

    pooled, fixed = [], {split: [] for split in SPLITS}
    source_info, all_skipped, notes = [], [], []
    fgnet_excluded = collections.Counter()
    duplicates = DuplicateIndex()  # across sources too: one file in two datasets must not straddle the split
    for source in sources:
        kind, resolved, faces, skipped, details = _read(source, duplicates)
        warn_skipped(skipped, resolved, full_list=os.path.join(out_dir, SUMMARY_FILE))
        all_skipped += [{"source": printable(source), "path": printable(p), "reason": why} for p, why in skipped]
        manifest = faces.manifest()
        if not len(manifest):
            shown = "; ".join(f"{printable(os.path.basename(p))}: {why}" for p, why in skipped[:3])
            raise PrepareError(f"Dataset source {printable(source)!r} ({kind}) gives no usable face: "
                               f"{len(skipped)} file(s) skipped{' (' + shown + ')' if shown else ''}; nothing is "
                               f"left to prepare from it. Check the path, or leave the source out.")
        info = {"path": os.path.abspath(source), "kind": kind, "read": os.path.abspath(resolved),
                "faces": len(manifest), "skipped": len(skipped)}
        info.update(details)
        notes += details.pop("notes", [])
        if kind == "fgnet":
            keep = (manifest.ages >= low) & (manifest.ages <= high)
            fixed["test"].append(manifest.select(keep))
            fgnet_excluded.update(int(a) for a in manifest.ages[~keep])
            info["excluded_by_age"] = int((~keep).sum())
            info["to"] = {"test": int(keep.sum())}
        elif kind == "seed":
            splits = np.array(faces.splits)
            for split in SPLITS:
                fixed[split].append(manifest.select(splits == split))
            info["to"] = {split: int((splits == split).sum()) for split in SPLITS}
        else:
            pooled.append((info, manifest))
        source_info.append(info)

    pool = Manifest.concat(manifest for _, manifest in pooled)
    if holdout:
        fractions = np.array([held_out.file_fraction(p) for p in pool.paths])
        in_test = fractions < held_out.SETS["test"][1]
        in_val = ~in_test & (fractions < held_out.HELD_OUT_BELOW)
    else:
        in_test = np.zeros(len(pool), bool)
        in_val = _val_mask(pool, val_fraction, seed)
    out = {"train": Manifest.concat([pool.select(~in_val & ~in_test)] + fixed["train"]),
           "val": Manifest.concat([pool.select(in_val)] + fixed["val"]),
           "test": Manifest.concat([pool.select(in_test)] + fixed["test"])}
    start = 0
    for info, manifest in pooled:
        part, test_part = in_val[start:start + len(manifest)], in_test[start:start + len(manifest)]
        info["to"] = {"train": int((~part & ~test_part).sum()), "val": int(part.sum())}
        if holdout:
            info["to"]["test"] = int(test_part.sum())
        start += len(manifest)

    if not len(out["test"]):
        notes.append("test split is empty: no FG-NET source (nor the PAGAN layout's test/) gave faces aged "
                     f"{low}-{high}")
    for cluster, name in enumerate(L.AGE_CLUSTER_NAMES):
        if not np.any(out["train"].clusters == cluster):
            what = ("the young inputs of every generator" if cluster == 0
                    else f"the real faces the cluster-{cluster} generator's discriminator learns from")
            message = (f"No training faces in age cluster {cluster} ({name}): they are {what}, so PAGAN cannot "
                       f"train {'any generator' if cluster == 0 else 'that cluster'}; add a source with such faces "
                       f"(CACD, MORPH, UTKFace)")
            logging.warning("%s", message)
            notes.append(message)

    if val_fraction > 0 and not len(out["val"]):
        message = (f"val split is empty: the train/val sources have too few persons for val_fraction="
                   f"{val_fraction:g} to take a whole one")
        logging.warning("%s", message)
        notes.append(message)
    by_person = sorted({i["kind"] for i, m in pooled if any(m.persons)})
    per_face = sorted({i["kind"] for i, m in pooled if not any(m.persons)})
    method = []
    if by_person and not holdout:
        method.append(f"train/val: whole persons to one side ({', '.join(by_person)})")
    if per_face and not holdout:
        method.append(f"train/val: one face at a time, persons unknown ({', '.join(per_face)})")
    if pooled and holdout:
        method.append("train/val/test: the held-out rule on each file's bytes (face_aging/data/holdout.py)")
    elif pooled:
        method.append(f"about {val_fraction:g} of every age cluster in val, persons shuffled with seed {seed}")
    if any(i["kind"] == "seed" for i in source_info):
        method.append("the PAGAN layout's young/ elder1-3/ -> train, val/ -> val, test/ -> test, as given")
    if any(i["kind"] == "fgnet" for i in source_info):
        method.append(f"test: FG-NET faces aged {low}-{high}")
    summary = {
        "version": 1,
        "out_dir": os.path.abspath(out_dir),
        "files": {split: f"{split}.csv" for split in SPLITS},
        "sources": source_info,
        "cluster_names": list(L.AGE_CLUSTER_NAMES),
        "counts": {split: _cluster_counts(out[split]) for split in SPLITS},
        "faces": {split: len(out[split]) for split in SPLITS},
        "persons": {split: len({p for p in out[split].persons if p}) for split in SPLITS},
        "faces_without_person": {split: sum(1 for p in out[split].persons if not p) for split in SPLITS},
        "split": {
            "val_fraction": None if holdout else val_fraction, "seed": seed, "test_ages": [low, high],
            "holdout": bool(holdout),
            "by_person": by_person, "per_face": per_face,
            "as_given": ["seed"] if any(i["kind"] == "seed" for i in source_info) else [],
            "test_only": ["fgnet"] if any(i["kind"] == "fgnet" for i in source_info) else [],
            "method": "; ".join(method),
        },
        "fgnet_excluded_by_age": {"count": sum(fgnet_excluded.values()),
                                  "ages": {str(a): n for a, n in sorted(fgnet_excluded.items())}},
        "skipped": all_skipped,
        "notes": notes,
    }
    # prepare.json vouches for a complete set of manifests: it goes before the first CSV is replaced and comes
    # back after the last, so an interrupted run never leaves a new train.csv beside an old val.csv that read_split
    # would take for one preparation. A run that fails while reading leaves the previous preparation as it was.
    summary_path = os.path.join(out_dir, SUMMARY_FILE)
    if os.path.exists(summary_path):
        os.remove(summary_path)
    for split in SPLITS:
        with atomic_write(os.path.join(out_dir, f"{split}.csv"), "wb") as f:
            f.write(_csv_bytes(out[split]))
    with atomic_write(summary_path, "wb") as f:
        f.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return summary


def _not_prepared(prepared_dir, what):
    return PrepareError(f"{what}: {prepared_dir!r} holds no complete preparation. Make one with `{PREPARE_COMMAND}` "
                        f"(with --prepared_dir {prepared_dir}).")


def read_split(prepared_dir, split):
    """The Manifest of one split of a prepared directory. Relative paths are read against the CSV's folder.

    PrepareError if the directory was not (completely) prepared, naming the command that prepares it, or if a row
    is bad, naming the file and line.
    """
    if split not in SPLITS:
        raise PrepareError(f"split {split!r}: must be one of {', '.join(SPLITS)}")
    csv_path = os.path.join(prepared_dir, f"{split}.csv")
    if not os.path.isfile(os.path.join(prepared_dir, SUMMARY_FILE)):
        raise _not_prepared(prepared_dir, f"No {os.path.join(prepared_dir, SUMMARY_FILE)}")
    if not os.path.isfile(csv_path):
        raise _not_prepared(prepared_dir, f"No {csv_path}")
    with open(csv_path, "rb") as f:
        try:
            text = f.read().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise PrepareError(f"{csv_path} is not UTF-8 text ({error}); prepare it again with "
                               f"`{PREPARE_COMMAND}`.") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(CSV_COLUMNS):
        raise PrepareError(f"{csv_path}, line 1: the header must be {','.join(CSV_COLUMNS)}, found "
                           f"{','.join(header or []) or 'an empty file'}; prepare it again with "
                           f"`{PREPARE_COMMAND}`.")
    base = os.path.dirname(os.path.abspath(csv_path))
    paths, ages, clusters, persons, genders, sources = [], [], [], [], [], []
    for row in reader:
        line = reader.line_num
        if not row:
            continue

        def bad(what):
            return PrepareError(f"{csv_path}, line {line}: {what}. Fix or delete the line, or prepare again with "
                                f"`{PREPARE_COMMAND}`.")
        if len(row) != len(CSV_COLUMNS):
            raise bad(f"{len(row)} fields, expected {len(CSV_COLUMNS)} ({','.join(CSV_COLUMNS)})")
        path, age, cluster, person, gender, source = row
        if not path.strip():
            raise bad("empty path")
        try:
            age, cluster, gender = int(age), int(cluster), int(gender)
        except ValueError:
            raise bad(f"age {age!r}, cluster {cluster!r} and gender {gender!r} must be whole numbers") from None
        if not -1 <= age <= L.MAX_AGE:
            raise bad(f"age {age} is not -1 (unknown) or 0-{L.MAX_AGE}")
        if not 0 <= cluster < L.NUM_AGE_CLUSTERS:
            raise bad(f"cluster {cluster} is not 0-{L.NUM_AGE_CLUSTERS - 1}")
        if age >= 0 and cluster != int(L.age_to_cluster(age)):
            raise bad(f"cluster {cluster} does not hold age {age} (cluster {int(L.age_to_cluster(age))})")
        if gender not in (-1, 0, 1):
            raise bad(f"gender {gender} is not -1 (unknown), 0 (male) or 1 (female)")
        paths.append(os.path.normpath(os.path.join(base, path)))
        ages.append(age)
        clusters.append(cluster)
        persons.append(person)
        genders.append(gender)
        sources.append(source)
    return Manifest(paths=paths, ages=ages, clusters=clusters, persons=persons, genders=genders, sources=sources)


def describe(summary):
    """A short table of a preparation's faces per split and age cluster, then its sources and notes."""
    names = summary["cluster_names"]
    head = ["split"] + names + ["total", "persons"]
    rows = [[split] + [str(n) for n in summary["counts"][split]] + [str(summary["faces"][split]),
                                                                     str(summary["persons"][split])]
            for split in SPLITS]
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = [f"Prepared in {summary['out_dir']}:"]
    for r in [head] + rows:
        lines.append("  " + "  ".join(r[0].ljust(widths[0]) if i == 0 else r[i].rjust(widths[i])
                                      for i in range(len(r))))
    for info in summary["sources"]:
        extra = f", {info['excluded_by_age']} outside ages {summary['split']['test_ages'][0]}-" \
                f"{summary['split']['test_ages'][1]} left out" if "excluded_by_age" in info else ""
        lines.append(f"  {info['kind']}: {info['path']} ({info['faces']} faces, {info['skipped']} skipped{extra})")
    if summary["skipped"]:
        lines.append(f"  {len(summary['skipped'])} file(s) skipped, each with its reason in "
                     f"{os.path.join(summary['out_dir'], SUMMARY_FILE)}")
    lines += [f"  note: {n}" for n in summary["notes"]]
    return "\n".join(lines)
