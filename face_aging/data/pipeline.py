"""The training input: a folder of labelled faces (or the synthetic set) as a tf.data pipeline.

As in the original: a fixed-seed shuffle of the file list, the first `num_vis` faces held out as the fixed
visualisation set, the last partial batch dropped, images resized to the model size and scaled to [-1, 1], labels
as -1/+1 one-hot. Unlike the original, each epoch's order is a pure function of (seed, epoch), so a run restarted
mid-epoch skips exactly the batches it already trained on.
"""

import dataclasses
import hashlib
import logging
import os
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from face_aging import exif
from face_aging.data import labels as L
# decode_rgb lives with the decode check, which decodes exactly as training does.
from face_aging.data.decode_check import decode_rgb, libjpeg_warnings, undecodable, unusable_reason  # noqa: F401
from face_aging.errors import FaceAgingError
from face_aging.fileio import link_problem, printable  # noqa: F401 (printable: used from here too)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
UTKFACE_HELP = ("Get the aligned & cropped UTKFace faces (UTKFace.tar.gz, https://susanqq.github.io/UTKFace/) and "
                "unpack them into ./data/UTKFace, pass a folder of AGE_GENDER_RACE_*.jpg faces with --dataset PATH, "
                "or train on the built-in faces with --dataset synthetic.")


class DatasetError(FaceAgingError, ValueError):
    """No usable training data: the message says where we looked and how to get data."""


# Smallest image side used: a face needs some pixels (a 1x1 "image" upscaled is a flat colour, not a face).
MIN_SIDE = 16


def max_pixels():
    """Largest image (width x height) read: Pillow's decompression-bomb limit. TensorFlow's decoders have none of
    their own, so this is what keeps a tiny file that claims to be 50000x50000 from taking gigabytes."""
    return Image.MAX_IMAGE_PIXELS


def _claimed_header(path):
    """(format, (width, height)) a JPEG or PNG header claims, for an image Pillow refuses to open (past twice its
    decompression-bomb limit it raises without naming the size). The format plugins read the header alone and make
    no such check."""
    from PIL import JpegImagePlugin, PngImagePlugin
    for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:
            with plugin(path) as image:
                return image.format, image.size
        except Exception:  # not this format, or a damaged header: the other plugin, or Pillow's own words
            continue
    return None


def check_image(path):
    """None if `path` looks like a complete JPEG or PNG of a usable size, else the reason it will be skipped.

    Reads the header with Pillow and the file's tail, which catches directories, broken symbolic links, empty,
    non-image, unreadable, truncated, tiny and oversized files without decoding every image before training starts.
    """
    reason = link_problem(path)
    if reason:
        return reason
    if os.path.isdir(path):
        return "is a directory"
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS (and refuses above twice that); the size is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt = image.format
                width, height = image.size
    except UnidentifiedImageError:
        return "not an image Pillow can identify"
    except Image.DecompressionBombError as error:
        claimed = _claimed_header(path)
        if claimed is None:
            return f"too large ({error})"
        fmt, (width, height) = claimed
    except OSError as error:
        if error.errno is None:  # Pillow's own complaint about the contents, e.g. "Truncated File Read"
            return f"damaged or truncated image header ({error})"
        return f"cannot be read ({error.strerror or error})"
    except Exception as error:  # a damaged header can make a Pillow plugin raise anything
        return f"damaged image header ({type(error).__name__}: {error})"
    if fmt == "MPO":  # multi-picture JPEGs from phones: TensorFlow decodes the first picture
        fmt = "JPEG"
    if fmt not in ("JPEG", "PNG"):
        return f"{fmt} image; only JPEG and PNG are read"
    if width < 1 or height < 1:
        return f"empty image ({width}x{height})"
    if min(width, height) < MIN_SIDE:
        return f"too small ({width}x{height}; a face needs at least {MIN_SIDE} pixels a side)"
    limit = max_pixels()
    if limit and width * height > limit:
        return (f"too large ({width}x{height} = {width * height / 1e6:.0f} megapixels; the limit is Pillow's "
                f"decompression-bomb limit of {limit / 1e6:.0f} megapixels, PIL.Image.MAX_IMAGE_PIXELS)")
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 1024))
            tail = f.read()
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if fmt == "JPEG" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if fmt == "PNG" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


class DuplicateIndex:
    """Finds files whose bytes equal those of a file seen before: sizes first, a hash only for equal sizes."""

    def __init__(self):
        self._by_size = {}      # size -> [paths seen with that size]
        self._digests = {}      # path -> sha256 of its contents

    def _digest(self, path):
        if path not in self._digests:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._digests[path] = digest.digest()
        return self._digests[path]

    def first_copy(self, path):
        """The earlier path with the same contents as `path`, else None (and `path` is remembered)."""
        try:
            size = os.path.getsize(path)
            same_size = self._by_size.setdefault(size, [])
            for earlier in same_size:
                if self._digest(earlier) == self._digest(path):
                    return earlier
        except OSError:
            return None  # unreadable now: check_image has said, or will say, why
        same_size.append(path)
        return None


def duplicate_reason(path, first):
    """The skip reason of a duplicate: the first copy by name, or by path when it is in another folder."""
    shown = os.path.basename(first) if os.path.dirname(first) == os.path.dirname(path) else first
    return f"duplicate of {printable(shown)} (same bytes)"


def list_image_files(folder):
    """Sorted image-like entries of `folder` (by extension, not descending into subfolders).

    FileNotFoundError / NotADirectoryError / PermissionError if it cannot be listed."""
    if not os.path.exists(folder):
        raise FileNotFoundError(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(folder)
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


def warn_skipped(skipped, where, limit=20, full_list=None):
    """One warning naming every skipped file and why: the first `limit` (None: all) when `full_list` says where the
    others are listed (a file the run writes), else all of them."""
    if not skipped:
        return
    if full_list is None:
        limit = None
    lines = [f"  {printable(os.path.basename(p))}: {why}" for p, why in skipped[:limit]]
    if limit is not None and len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more, all listed in {full_list}")
    logging.warning("Skipped %d file(s) in %s:\n%s", len(skipped), printable(where), "\n".join(lines))


@dataclasses.dataclass
class LabelledFaces:
    """Faces with their labels: either file paths or in-memory uint8 images (the synthetic set)."""
    ages: np.ndarray                      # years, int32 [N]
    genders: np.ndarray                   # 0 male / 1 female, int32 [N]
    paths: list = None                    # for a folder
    images: np.ndarray = None             # for in-memory faces, uint8 [N, S, S, 3]
    person_ids: np.ndarray = None         # where identities are known
    skipped: list = dataclasses.field(default_factory=list)   # (printable path, reason)
    source: str = ""

    def __len__(self):
        return len(self.ages)

    def subset(self, mask):
        """The faces where `mask` is True (the skipped list and source stay)."""
        index = np.flatnonzero(mask)
        pick = (lambda a: None if a is None else a[index])
        return dataclasses.replace(
            self, ages=self.ages[index], genders=self.genders[index], images=pick(self.images),
            person_ids=pick(self.person_ids), paths=None if self.paths is None else [self.paths[i] for i in index])


def scan_labelled_folder(folder, min_side=None, decode_cache=None):
    """Every usable UTKFace-named face in `folder`; malformed names, unreadable files, files whose picture data does
    not decode (as `decode_rgb(contents, min_side)`; cached in the JSON file `decode_cache`) and duplicates (same
    bytes as a face earlier in sorted order) are skipped and listed. Skipped paths are `printable`."""
    try:
        candidates = list_image_files(folder)
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(f"Dataset folder {printable(folder)!r} does not exist or is not a folder. "
                           f"{UTKFACE_HELP}") from None
    except OSError as error:
        raise DatasetError(f"Dataset folder {printable(folder)!r} cannot be listed ({error.strerror or error})."
                           ) from None
    reasons, labelled = {}, {}
    for path in candidates:
        if os.path.isdir(path):
            reasons[path] = "is a directory"
            continue
        try:
            labelled[path] = L.parse_utkface_name(os.path.basename(path))[:2]
        except L.LabelError as error:
            reasons[path] = f"malformed name: {error}"
            continue
        reasons[path] = check_image(path)
    # Decoded before duplicates are looked for: of two copies, the first is then never one that cannot be used.
    reasons.update(undecodable([p for p in labelled if not reasons[p]], min_side, decode_cache))
    paths, ages, genders, skipped = [], [], [], []
    duplicates = DuplicateIndex()
    for path in candidates:
        reason = reasons[path]
        if not reason:
            first = duplicates.first_copy(path)
            reason = first and duplicate_reason(path, first)
        if reason:
            skipped.append((printable(path), reason))
            continue
        paths.append(path)
        ages.append(labelled[path][0])
        genders.append(labelled[path][1])
    warn_skipped(skipped, folder, full_list="skipped_files.txt in the run directory (--savedir)")
    if not paths:
        found = (f"{len(candidates)} image file(s), none usable (each is named above with the reason)" if candidates
                 else "no .jpg/.jpeg/.png files")
        raise DatasetError(f"Dataset folder {printable(folder)!r} holds {found}; nothing is left to train on. "
                           f"{UTKFACE_HELP}")
    return LabelledFaces(ages=np.array(ages, np.int32), genders=np.array(genders, np.int32), paths=paths,
                         skipped=skipped, source=printable(os.path.abspath(folder)))


def resolve_dataset(dataset, data_root="data"):
    """The original's `--dataset NAME` means ./data/NAME; a path to a folder works too."""
    if os.path.isdir(dataset):
        return dataset
    under_root = os.path.join(data_root, dataset)
    if os.path.isdir(under_root):
        return under_root
    raise DatasetError(f"--dataset {dataset}: neither {under_root!r} nor {dataset!r} is a folder. {UTKFACE_HELP}")


def load_faces(dataset, image_size, seed=2017, num_synthetic=6000, data_root="data", decode_cache=None):
    """LabelledFaces for a `--dataset` value: 'synthetic', a folder name under ./data, or a folder path.
    `decode_cache`: where to remember which files decode (decode_check.undecodable)."""
    if dataset == "synthetic":
        from face_aging.data import synthetic
        data = synthetic.make_dataset(num_synthetic, image_size, seed=seed)
        return LabelledFaces(ages=data["ages"], genders=data["genders"], images=data["images"],
                             person_ids=data["person_ids"], source=f"synthetic(n={num_synthetic}, seed={seed})")
    return scan_labelled_folder(resolve_dataset(dataset, data_root), image_size, decode_cache)


def decode_and_resize(contents, image_size):
    """Encoded JPEG/PNG bytes -> float32 [S, S, 3] in [-1, 1].

    Grey, RGBA, palette, 16-bit and CMYK images come out as RGB (see decode_rgb). Non-square images are
    centre-cropped rather than squashed, so faces keep their proportions.
    """
    return square_and_resize(decode_rgb(contents, image_size), image_size)


def square_and_resize(image, image_size):
    """uint8 [H, W, 3] -> its centre square resized to float32 [S, S, 3] in [-1, 1]."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)
    return scale_to_unit(tf.image.resize(image, [image_size, image_size], antialias=True))


def read_face(path, image_size, upright=False):
    """(image [S, S, 3] in [-1, 1], None) for a usable image file, else (None, the reason it is not usable).
    `upright`: turned as the file's EXIF orientation says first (test mode: photos as phones store them)."""
    reason = check_image(path)
    if reason is not None:
        return None, reason
    try:
        with open(path, "rb") as f:
            contents = tf.constant(f.read())
        with libjpeg_warnings() as captured:
            if not upright:
                face = decode_and_resize(contents, image_size).numpy()
            else:
                image = exif.upright(decode_rgb(contents, image_size).numpy(), exif.orientation(path))
                face = square_and_resize(image, image_size).numpy()
    except (tf.errors.OpError, OSError) as error:
        return None, unusable_reason(error)
    warn_damaged(path, captured.warnings)
    return face, None


_warned_damaged = set()


def warn_damaged(path, warnings):
    """Test mode's word on a JPEG libjpeg decoded past damage: the file, what libjpeg said; it is used anyway.
    Once per file (test mode may read a file at two sizes)."""
    if warnings and path not in _warned_damaged:
        _warned_damaged.add(path)
        logging.warning("%s: damaged JPEG data, decoded past it (libjpeg: %s); the picture may be partly grey or "
                        "shifted", printable(path), "; ".join(w.strip() for w in warnings[:3]))


def scale_to_unit(image):
    """[0, 255] -> [-1, 1], the original's x * 2 / 255 - 1."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


class FaceDataset:
    """Shuffled, batched training epochs and the fixed visualisation set of a LabelledFaces."""

    def __init__(self, faces, image_size, batch_size, seed=2017, num_vis=100, flip=False):
        self.faces = faces
        self.flip = flip
        self.image_size = image_size
        self.batch_size = batch_size
        self.seed = seed
        order = np.random.RandomState(seed).permutation(len(faces))
        # The original holds out a full batch for visualisation; a small set gives up at most a fifth of its faces.
        num_vis = max(1, min(num_vis, len(faces) // 5))
        self.vis_index, self.train_index = order[:num_vis], order[num_vis:]
        if len(self.train_index) < batch_size:
            raise DatasetError(f"{faces.source}: {len(self.train_index)} training faces (after holding out "
                               f"{num_vis} for visualisation) is less than one batch of --batch_size={batch_size}; "
                               f"add faces or lower --batch_size")
        self.age_labels = L.plus_minus_one_hot(L.age_to_group(faces.ages), L.NUM_AGE_GROUPS)
        self.gender_labels = L.plus_minus_one_hot(faces.genders, 2)
        self._load = self._make_loader()

    @property
    def steps_per_epoch(self):
        return len(self.train_index) // self.batch_size

    def _make_loader(self):
        size = self.image_size
        age_labels = tf.constant(self.age_labels)
        gender_labels = tf.constant(self.gender_labels)
        if self.faces.paths is not None:
            # Bytes, not str: a file name that is not UTF-8 (a surrogate-escaped str) cannot become a tf.string.
            paths = tf.constant([os.fsencode(p) for p in self.faces.paths])

            def image_at(i):
                return decode_and_resize(tf.io.read_file(tf.gather(paths, i)), size)
        else:
            images = tf.convert_to_tensor(self.faces.images)
            if images.shape[1] != size:
                raise ValueError(f"in-memory faces are {images.shape[1]}px, the model is {size}px")

            def image_at(i):
                return scale_to_unit(tf.gather(images, i))

        def load(i):
            return image_at(i), tf.gather(age_labels, i), tf.gather(gender_labels, i)
        return load

    def epoch(self, epoch, skip_batches=0):
        """Batches of (images, age labels, gender labels) for epoch `epoch`, from batch `skip_batches` on."""
        order = np.random.RandomState([self.seed, epoch]).permutation(self.train_index)
        order = order[skip_batches * self.batch_size:self.steps_per_epoch * self.batch_size]
        load = self._load
        if self.flip:
            # Mirrored with probability 1/2, decided by (seed, epoch, face): a resumed epoch flips as the first did.
            def load(i, seed=self.seed, epoch=epoch):
                image, age, gender = self._load(i)
                key = tf.stack([tf.constant(seed * 1000 + epoch, tf.int64), i])
                return tf.image.stateless_random_flip_left_right(image, key), age, gender
        return (tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
                .map(load, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(self.batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))

    def visualisation_set(self):
        """The fixed faces shown in samples/ and test/: (images, age labels, gender labels) as numpy arrays."""
        images, ages, genders = zip(*(self._load(i) for i in self.vis_index))
        return np.stack(images), np.stack(ages), np.stack(genders)
