"""The training input: a folder of labelled faces (or the synthetic set) as a tf.data pipeline.

As in the original: a fixed-seed shuffle of the file list, the first `num_vis` faces held out as the fixed
visualisation set, the last partial batch dropped, images resized to the model size and scaled to [-1, 1], labels
as -1/+1 one-hot. Unlike the original, each epoch's order is a pure function of (seed, epoch), so a run restarted
mid-epoch skips exactly the batches it already trained on.
"""

import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from face_aging.data import labels as L
from face_aging.errors import FaceAgingError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
UTKFACE_HELP = ("Get the aligned & cropped UTKFace faces (UTKFace.tar.gz, https://susanqq.github.io/UTKFace/) and "
                "unpack them into ./data/UTKFace, pass a folder of AGE_GENDER_RACE_*.jpg faces with --dataset PATH, "
                "or train on the built-in faces with --dataset synthetic.")


class DatasetError(FaceAgingError, ValueError):
    """No usable training data: the message says where we looked and how to get data."""


def check_image(path):
    """None if `path` looks like a complete JPEG or PNG, else the reason it will be skipped.

    Reads the header with Pillow and the file's tail, which catches empty, non-image, unreadable and truncated
    files without decoding every image before training starts.
    """
    try:
        with Image.open(path) as image:
            fmt = image.format
            width, height = image.size
    except UnidentifiedImageError:
        return "not an image Pillow can identify"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if fmt == "MPO":  # multi-picture JPEGs from phones: TensorFlow decodes the first picture
        fmt = "JPEG"
    if fmt not in ("JPEG", "PNG"):
        return f"{fmt} image; only JPEG and PNG are read"
    if width < 1 or height < 1:
        return f"empty image ({width}x{height})"
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


def list_image_files(folder):
    """Sorted image-like entries of `folder` (by extension, not descending into subfolders)."""
    if not os.path.exists(folder):
        raise FileNotFoundError(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(folder)
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


def warn_skipped(skipped, where, limit=20):
    """One warning naming every skipped file (the first `limit` in the log) and why."""
    if not skipped:
        return
    lines = [f"  {os.path.basename(p)}: {why}" for p, why in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    logging.warning("Skipped %d file(s) in %s:\n%s", len(skipped), where, "\n".join(lines))


@dataclasses.dataclass
class LabelledFaces:
    """Faces with their labels: either file paths or in-memory uint8 images (the synthetic set)."""
    ages: np.ndarray                      # years, int32 [N]
    genders: np.ndarray                   # 0 male / 1 female, int32 [N]
    paths: list = None                    # for a folder
    images: np.ndarray = None             # for in-memory faces, uint8 [N, S, S, 3]
    person_ids: np.ndarray = None         # where identities are known
    skipped: list = dataclasses.field(default_factory=list)   # (path, reason)
    source: str = ""

    def __len__(self):
        return len(self.ages)


def scan_labelled_folder(folder):
    """Every usable UTKFace-named face in `folder`; malformed names and unreadable files are skipped and listed."""
    try:
        candidates = list_image_files(folder)
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(f"Dataset folder {folder!r} does not exist or is not a folder. {UTKFACE_HELP}") from None
    paths, ages, genders, skipped = [], [], [], []
    for path in candidates:
        name = os.path.basename(path)
        if os.path.isdir(path):
            skipped.append((path, "is a directory"))
            continue
        try:
            age, gender, _ = L.parse_utkface_name(name)
        except L.LabelError as error:
            skipped.append((path, f"malformed name: {error}"))
            continue
        reason = check_image(path)
        if reason:
            skipped.append((path, reason))
            continue
        paths.append(path)
        ages.append(age)
        genders.append(gender)
    warn_skipped(skipped, folder)
    if not paths:
        found = f"{len(candidates)} image file(s), none usable" if candidates else "no .jpg/.jpeg/.png files"
        raise DatasetError(f"Dataset folder {folder!r} holds {found}. {UTKFACE_HELP}")
    return LabelledFaces(ages=np.array(ages, np.int32), genders=np.array(genders, np.int32), paths=paths,
                         skipped=skipped, source=os.path.abspath(folder))


def resolve_dataset(dataset, data_root="data"):
    """The original's `--dataset NAME` means ./data/NAME; a path to a folder works too."""
    if os.path.isdir(dataset):
        return dataset
    under_root = os.path.join(data_root, dataset)
    if os.path.isdir(under_root):
        return under_root
    raise DatasetError(f"--dataset {dataset}: neither {under_root!r} nor {dataset!r} is a folder. {UTKFACE_HELP}")


def load_faces(dataset, image_size, seed=2017, num_synthetic=6000, data_root="data"):
    """LabelledFaces for a `--dataset` value: 'synthetic', a folder name under ./data, or a folder path."""
    if dataset == "synthetic":
        from face_aging.data import synthetic
        data = synthetic.make_dataset(num_synthetic, image_size, seed=seed)
        return LabelledFaces(ages=data["ages"], genders=data["genders"], images=data["images"],
                             person_ids=data["person_ids"], source=f"synthetic(n={num_synthetic}, seed={seed})")
    return scan_labelled_folder(resolve_dataset(dataset, data_root))


def decode_and_resize(contents, image_size):
    """Encoded JPEG/PNG bytes -> float32 [S, S, 3] in [-1, 1].

    Grey, RGBA and palette images come out as RGB. Non-square images are centre-cropped rather than squashed, so
    faces keep their proportions.
    """
    image = tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8)
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)
    return scale_to_unit(tf.image.resize(image, [image_size, image_size], antialias=True))


def scale_to_unit(image):
    """[0, 255] -> [-1, 1], the original's x * 2 / 255 - 1."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


class FaceDataset:
    """Shuffled, batched training epochs and the fixed visualisation set of a LabelledFaces."""

    def __init__(self, faces, image_size, batch_size, seed=2017, num_vis=100):
        self.faces = faces
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
            paths = tf.constant(self.faces.paths)

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
        return (tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
                .map(self._load, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(self.batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))

    def visualisation_set(self):
        """The fixed faces shown in samples/ and test/: (images, age labels, gender labels) as numpy arrays."""
        images, ages, genders = zip(*(self._load(i) for i in self.vis_index))
        return np.stack(images), np.stack(ages), np.stack(genders)
