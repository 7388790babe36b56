"""Figures of the papers' age/identity table, computed offline from judges' outputs (pure numpy/scipy).

The papers asked the online Face++ API for two things: an age estimate of every face, and a verification score
between an input and its aged output. Here any pair of offline judges (an age estimator, a face descriptor or a
face-distance model) supplies the same numbers, and this module turns them into the table's figures. Nothing here
knows a model or a judge: inputs are arrays of estimates and scores.

Conventions shared by every function:
- A judge that failed on a face (no face found, a crash) reports NaN. NaN is excluded from a figure and counted
  in its `failed` field, so a judge that fails on the oddest outputs cannot hide it in the mean.
- A figure with no data is NaN (or None where noted): `report.py` prints both as "—" and writes both as null.
- Verification accepts a pair when its score is strictly beyond the threshold: `score > threshold` for
  similarity-like scores (cosine, Face++ confidence), `score < threshold` for distance-like ones (dlib: same
  person below 0.6), chosen by `higher_means_same`.
"""

import math

import numpy as np
from scipy import stats


# Above this many different-person pairs, impostor pairs are drawn by rejection instead of listed: listing
# 5 million pairs costs 80 MB, and a data set that large has so many persons that almost every draw is accepted.
ENUMERATE_LIMIT = 5_000_000


# ---------------------------------------------------------------------------------------------------------- ages

def whole_years(ages):
    """Ages rounded to whole years, halves up (30.5 -> 31).

    The groups are ranges of whole years, as the data sets' labels are; a continuous estimate (DEX's expected
    age, say 30.4) is read the way a label would be written. Halves go up rather than to even so that the same
    estimate always lands in the same group, whatever its integer part.
    """
    return np.floor(np.asarray(ages, dtype=np.float64) + 0.5)


def _valid(values):
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = np.isfinite(values)
    return values[keep], int(values.size - keep.sum())


def age_figures(estimated, low, high):
    """Mean, std and in-range share of a judge's age estimates for faces aimed at the range [low, high].

    Returns dict(mean, std, n, failed, inside, low, high):
    - mean, std: of the raw (unrounded) estimates; std is the population std (ddof=0), defined for n = 1.
    - inside: share of estimates whose whole-year rounding (`whole_years`) lies in [low, high], inclusive.
    - n: estimates used; failed: NaN estimates (judge failed on the face), excluded from everything else.
    Mean, std and inside are NaN when n == 0.
    """
    ages, failed = _valid(estimated)
    if ages.size == 0:
        return dict(mean=math.nan, std=math.nan, n=0, failed=failed, inside=math.nan, low=low, high=high)
    rounded = whole_years(ages)
    inside = float(np.mean((rounded >= low) & (rounded <= high)))
    return dict(mean=float(ages.mean()), std=float(ages.std()), n=int(ages.size), failed=failed,
                inside=inside, low=low, high=high)


def rank_correlation(targets, estimates):
    """Spearman's rho between target ages (or group indices) and estimated ages, or None when undefined.

    Pairs with a NaN on either side are dropped. None when fewer than 3 pairs remain (two points are always
    perfectly ranked) or when either side is constant (rho is 0/0).
    """
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    estimates = np.asarray(estimates, dtype=np.float64).reshape(-1)
    if targets.shape != estimates.shape:
        raise ValueError(f"{targets.size} targets but {estimates.size} estimates")
    keep = np.isfinite(targets) & np.isfinite(estimates)
    targets, estimates = targets[keep], estimates[keep]
    if targets.size < 3 or np.ptp(targets) == 0 or np.ptp(estimates) == 0:
        return None
    return float(stats.spearmanr(targets, estimates)[0])


def _nan_if_none(value):
    return math.nan if value is None else value


def per_face_rank_correlation(matrix, target_values):
    """Per input face, does the estimated age rise with the target? CAAE ages every input to every group.

    `matrix` [faces, targets] holds the estimated ages of each face's outputs, `target_values` [targets] the
    targets' order (group indices or centre ages: Spearman only sees their ranks).
    Returns dict(rhos: float array [faces], NaN where undefined; mean, median: of the defined rhos, None when
    there are none; n: defined rhos; undefined: faces whose rho is undefined, e.g. a constant estimate).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    target_values = np.asarray(target_values, dtype=np.float64).reshape(-1)
    if matrix.ndim != 2 or matrix.shape[1] != target_values.size:
        raise ValueError(f"matrix must be [faces, {target_values.size}], got shape {matrix.shape}")
    rhos = np.array([_nan_if_none(rank_correlation(target_values, row)) for row in matrix], dtype=np.float64)
    defined = rhos[np.isfinite(rhos)]
    return dict(rhos=rhos,
                mean=float(defined.mean()) if defined.size else None,
                median=float(np.median(defined)) if defined.size else None,
                n=int(defined.size), undefined=int(rhos.size - defined.size))


# ------------------------------------------------------------------------------------------------------ identity

def cosine_similarity(a, b):
    """Row-wise cosine similarity of descriptors a, b [N, D] (or one [D] each) -> [N]. NaN for a zero row,
    which is what a judge that returned nothing looks like."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"descriptor shapes differ: {a.shape} vs {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, np.einsum("nd,nd->n", a, b) / norms, math.nan)


def identity_figures(scores):
    """Mean and population std of genuine (input, output) identity scores; dict(mean, std, n, failed)."""
    values, failed = _valid(scores)
    if values.size == 0:
        return dict(mean=math.nan, std=math.nan, n=0, failed=failed)
    return dict(mean=float(values.mean()), std=float(values.std()), n=int(values.size), failed=failed)


def near_age_verification(genuine, own_groups, threshold, higher_means_same, within=2):
    """CAAE: of the outputs whose target is within `within` groups of the input's own group, the share the judge's
    usual rule calls the same person as the input (dlib: distance below 0.6). Far targets are left out: a face aged
    by 60 years is not expected to pass a verifier that was never trained across such gaps.

    `genuine` [faces, groups] input-output scores, `own_groups` [faces] each input's group. Returns dict(share, n,
    threshold, within, share_aged, n_aged) or None when no score is defined; share_aged leaves out the own group's
    outputs (which residual aging makes the input itself) and counts only those 1 to `within` groups away."""
    genuine = np.asarray(genuine, dtype=np.float64)
    gaps = np.abs(np.arange(genuine.shape[1])[None, :] - np.asarray(own_groups).reshape(-1, 1))

    def share(chosen):
        values, _ = _valid(genuine[chosen])
        if values.size == 0:
            return None, 0
        accepted = values >= threshold if higher_means_same else values < threshold
        return float(accepted.mean()), int(values.size)

    near, n = share(gaps <= within)
    if near is None:
        return None
    aged, n_aged = share((gaps >= 1) & (gaps <= within))
    return dict(share=near, n=n, threshold=float(threshold), within=within, share_aged=aged, n_aged=n_aged)


def _unknown_person(person):
    return person is None or (isinstance(person, float) and math.isnan(person)) or str(person) == ""


def _person_keys(person_ids):
    """One integer code per face; each face without a person ("", None or NaN) gets a code of its own."""
    keys = [("unknown", index) if _unknown_person(person) else ("person", str(person))
            for index, person in enumerate(person_ids)]
    codes = {key: code for code, key in enumerate(dict.fromkeys(keys))}
    return np.array([codes[key] for key in keys], dtype=np.int64)


def _count_impostor_pairs(codes):
    n = codes.size
    sizes = np.bincount(codes)
    return n * (n - 1) // 2 - int(np.sum(sizes * (sizes - 1) // 2))


def _all_impostor_pairs(codes):
    rows = [np.zeros((0, 2), np.int64)]
    for i in range(codes.size - 1):
        others = i + 1 + np.flatnonzero(codes[i + 1:] != codes[i])
        rows.append(np.stack([np.full(others.size, i), others], axis=1))
    return np.concatenate(rows).astype(np.int64)


def _pair_from_rank(rank, n):
    """(i, j), i < j, of the pairs of n items listed row by row: rank 0 -> (0, 1), rank n-2 -> (0, n-1) ..."""
    # Row i starts at rank i*n - i*(i+1)/2; invert that quadratic, then fix the float's off-by-one at the edges.
    i = np.floor((2 * n - 1 - np.sqrt((2 * n - 1) ** 2 - 8.0 * rank)) / 2).astype(np.int64)
    start = i * n - i * (i + 1) // 2
    i = np.where(start > rank, i - 1, i)
    i = np.where(rank >= (i + 1) * n - (i + 1) * (i + 2) // 2, i + 1, i)
    start = i * n - i * (i + 1) // 2
    return i, rank - start + i + 1


def _sample_impostor_pairs(codes, count, rng):
    """`count` distinct pairs drawn uniformly from the different-person pairs by rejection from all pairs."""
    n = codes.size
    total = n * (n - 1) // 2
    accept = _count_impostor_pairs(codes) / total
    chosen = np.zeros(0, np.int64)
    while chosen.size < count:
        draws = rng.integers(0, total, size=max(1024, int(1.2 * (count - chosen.size) / accept)))
        i, j = _pair_from_rank(draws, n)
        draws = draws[codes[i] != codes[j]]
        # Keep first occurrences in draw order: the first `count` distinct draws are a uniform sample.
        merged = np.concatenate([chosen, draws])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    i, j = _pair_from_rank(np.sort(chosen[:count]), n)
    return np.stack([i, j], axis=1)


def impostor_pairs(person_ids, max_pairs, seed=0):
    """Index pairs (i, j), i < j, of faces of different persons, to set verification thresholds on.

    All such pairs when there are at most `max_pairs`, else `max_pairs` of them drawn uniformly without repeats,
    deterministically from `seed`. A face whose person is unknown ("" or None) is counted as a person of its own:
    it may be paired with any other face. That can pair two photos of one unknown person as impostors, which
    raises the impostor scores and so makes the threshold stricter, never laxer.
    Returns (pairs int64 [K, 2] sorted row by row, description: how they were formed and how many).
    """
    person_ids = list(person_ids)
    codes = _person_keys(person_ids)
    n = codes.size
    unknown = sum(map(_unknown_person, person_ids))
    persons = len(np.unique(codes)) - unknown
    total = _count_impostor_pairs(codes) if n > 1 else 0
    max_pairs = int(max_pairs)
    if total <= max_pairs:
        pairs = _all_impostor_pairs(codes)
        how = f"all {total:,} pairs of faces of different persons"
    else:
        rng = np.random.default_rng(seed)
        if total <= ENUMERATE_LIMIT:
            every = _all_impostor_pairs(codes)
            pairs = every[np.sort(rng.choice(total, size=max_pairs, replace=False))]
        else:
            pairs = _sample_impostor_pairs(codes, max_pairs, rng)
        how = (f"{max_pairs:,} pairs drawn uniformly without repeats (seed {seed}) from the {total:,} pairs of "
               f"faces of different persons")
    where = f" among {n:,} faces of {persons:,} known persons"
    if unknown:
        where += (f" and {unknown:,} faces without a person id, each counted as a person of its own (two photos of "
                  f"one unknown person may be paired, which can only make the threshold stricter)")
    return pairs.reshape(-1, 2).astype(np.int64), how + where


def min_pairs_needed(far):
    """Impostor pairs needed before one accepted impostor is a share as small as `far`: ceil(1/far)."""
    # Rounded first: a FAR computed as 5 * 10**-6 gives 1/far = 200000.00000000003, which would ask one pair too many.
    return int(math.ceil(round(1.0 / far, 6)))


def threshold_at_far(impostor_scores, far, higher_means_same=True):
    """The verification threshold at which at most a share `far` of impostor pairs is accepted.

    With n impostor scores, floor(far * n) of them may be accepted: the threshold is the (floor(far*n) + 1)-th
    most same-looking impostor score, and a pair is accepted when strictly beyond it (ties with the threshold
    are rejected, so `far_achieved` can fall below `far_target`, never above).

    Fewer than ceil(1/far) impostors cannot resolve the FAR: not one impostor may be accepted, so the threshold
    is the strictest one the data can give, the most same-looking impostor score (accept nothing the impostors
    reach), and `enough` is False. Beware that this threshold is still LAXER than a true FAR threshold would
    probably be (a larger impostor sample would reach further), so rates measured at it are optimistic.
    NaN scores (judge failed) are ignored. With no impostor score at all the threshold is None.

    Returns dict(threshold, far_target, far_achieved, n_impostor, enough, min_pairs_needed, higher_means_same).
    """
    scores, _ = _valid(impostor_scores)
    needed = min_pairs_needed(far)
    info = dict(threshold=None, far_target=float(far), far_achieved=None, n_impostor=int(scores.size),
                enough=bool(scores.size >= needed), min_pairs_needed=needed, higher_means_same=bool(higher_means_same))
    if scores.size == 0:
        return info
    # Most same-looking first; the small epsilon keeps 0.7 * 90 (62.99999...) from flooring to 62.
    ordered = np.sort(scores)[::-1] if higher_means_same else np.sort(scores)
    allowed = int(math.floor(far * scores.size + 1e-9))
    threshold = float(ordered[min(allowed, scores.size - 1)])
    info["threshold"] = threshold
    info["far_achieved"] = float(np.mean(_accepted(scores, threshold, higher_means_same)))
    return info


def _accepted(scores, threshold, higher_means_same):
    return scores > threshold if higher_means_same else scores < threshold


def verification_rate(genuine_scores, threshold_info, higher_means_same=None):
    """Share of genuine (input, output) pairs accepted at `threshold_info`'s threshold (from threshold_at_far).

    The rate is returned even when the threshold could not resolve its FAR (`threshold_info["enough"]` False):
    it is then optimistic and the report marks it. None when there is no threshold or no valid genuine score;
    NaN genuine scores (judge failed) are left out. `higher_means_same` defaults to the threshold's own direction;
    a contradicting value is an error rather than a silently inverted rate.
    """
    own = threshold_info.get("higher_means_same")
    if higher_means_same is None:
        higher_means_same = True if own is None else own
    elif own is not None and bool(own) != bool(higher_means_same):
        raise ValueError("higher_means_same contradicts the direction the threshold was set with")
    scores, _ = _valid(genuine_scores)
    if threshold_info.get("threshold") is None or scores.size == 0:
        return None
    return float(np.mean(_accepted(scores, threshold_info["threshold"], higher_means_same)))


def verification_figures(genuine_scores, threshold_info):
    """One target's verification entry for the results dict: dict(far, rate, enough, n, failed)."""
    scores, failed = _valid(genuine_scores)
    return dict(far=threshold_info["far_target"], rate=verification_rate(genuine_scores, threshold_info),
                enough=bool(threshold_info["enough"]), n=int(scores.size), failed=failed)


# ---------------------------------------------------------------------------------------------------- pixels

def to_unit_range(images):
    """Images as float64 in [0, 1]: uint8 is divided by 255; any float array is taken to be in the models'
    [-1, 1] and mapped by (x + 1) / 2. Floats outside [-1, 1] (e.g. 0-255 floats) are refused, not misread."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float64) / 255.0
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [-1, 1], not {images.dtype}")
    images = images.astype(np.float64)
    if images.size and (np.nanmin(images) < -1.0 - 1e-3 or np.nanmax(images) > 1.0 + 1e-3):
        raise ValueError(f"float images must be in [-1, 1]; found values in "
                         f"[{np.nanmin(images):.3g}, {np.nanmax(images):.3g}]")
    return (images + 1.0) / 2.0


def reconstruction_error(inputs, outputs):
    """Mean absolute pixel error between inputs and their reconstructions, in [0, 1] pixel units (0.01 is
    2.55 grey levels). Each array may be uint8 or float in [-1, 1] (see `to_unit_range`)."""
    inputs, outputs = to_unit_range(inputs), to_unit_range(outputs)
    if inputs.shape != outputs.shape:
        raise ValueError(f"shapes differ: {inputs.shape} vs {outputs.shape}")
    return float(np.mean(np.abs(inputs - outputs)))


def age_error(estimated, requested):
    """Mean |estimated - requested| in years over the faces the judge could read (the field's "age error to target");
    NaN when there is none."""
    ages, _ = _valid(estimated)
    return float(np.mean(np.abs(ages - float(requested)))) if ages.size else math.nan


def verified_below(genuine_scores, threshold, higher_means_same):
    """Share of genuine (input, output) scores the judge accepts at a fixed `threshold` (dlib: distance below 0.6,
    its published rule; 0.5, stricter); None when no score is defined. dict(threshold, rate, n)."""
    scores, _ = _valid(genuine_scores)
    if scores.size == 0:
        return dict(threshold=float(threshold), rate=None, n=0)
    return dict(threshold=float(threshold), rate=float(np.mean(_accepted(scores, threshold, higher_means_same))),
                n=int(scores.size))


def _high_frequency_energy(gray):
    """Mean squared response of the 3x3 Laplacian over the interior of [N, H, W] images: the detail a blur removes."""
    lap = (gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2] + gray[:, 1:-1, 2:]
           - 4.0 * gray[:, 1:-1, 1:-1])
    return np.mean(lap ** 2, axis=(1, 2))


def sharpness_ratio(inputs, outputs):
    """Per face, the high-frequency energy of the output over the input's, both at the input's size (an output made
    at a smaller size is resized up first, so a scaled-up patch scores low). 1 = as sharp as the input; below it,
    blurred; far above it, noise. Returns dict(mean, median, n) over the faces whose input has any detail."""
    from PIL import Image
    inputs, outputs = to_unit_range(inputs), to_unit_range(outputs)
    size = inputs.shape[1:3]
    if outputs.shape[1:3] != size:
        outputs = np.stack([np.asarray(Image.fromarray(np.uint8(np.round(o * 255))).resize(
            (size[1], size[0]), Image.BICUBIC), np.float64) / 255.0 for o in outputs])
    weights = np.array([0.299, 0.587, 0.114])
    before = _high_frequency_energy(inputs @ weights)
    after = _high_frequency_energy(outputs @ weights)
    keep = before > 1e-8
    if not keep.any():
        return dict(mean=math.nan, median=math.nan, n=0)
    ratios = after[keep] / before[keep]
    return dict(mean=float(ratios.mean()), median=float(np.median(ratios)), n=int(keep.sum()))


# --- Ghost features and blotches (docs/photos.md) --------------------------------------------------------------------
# Both are measured at GHOST_SIZE pixels, whatever the faces' own size, where a ghost eye or mouth is a few pixels and
# skin texture no longer counts, inside the ellipse of the aligned crop the face fills (UTKFace's chip framing).
GHOST_SIZE = 64
GHOST_STRONG = 0.12      # a strong edge: Sobel gradient of luminance (in [0, 1] per pixel) above this
GHOST_NONE = 0.06        # no edge in the input: its gradient below this anywhere within 2 pixels
BLOTCH_SIGMA = 2.0       # pixels (at GHOST_SIZE): what is left of the change after this blur is its patchwork


def _face_ellipse(size=GHOST_SIZE):
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    return ((xx - 0.5) / 0.36) ** 2 + ((yy - 0.52) / 0.42) ** 2 <= 1.0


def _at_ghost_size(images):
    from PIL import Image
    images = to_unit_range(images)
    if images.shape[1:3] == (GHOST_SIZE, GHOST_SIZE):
        return images
    return np.stack([np.asarray(Image.fromarray(np.uint8(np.round(x * 255))).resize(
        (GHOST_SIZE, GHOST_SIZE), Image.BOX), np.float64) / 255.0 for x in images])


def ghost_figures(inputs, outputs):
    """Per face, what an aged face should not have, against its input (any equal sizes; uint8 or [-1, 1]):

    - new_edges: % of the face where the output has a strong edge (a ghost eye, mouth, glasses rim or hairline) and
      the input has none within 2 pixels; 0 for a change that only follows the input's own features.
    - blotch: the spread (standard deviation over the face) of the change's luminance after a light blur, in grey
      levels (0-255): patches darkening or lightening part of the face (a brown smear, dark patches around the eyes).
      Real aging changes shading too, so this is never 0: compare models on it.
    Returns {name: dict(mean, median, n)}."""
    from scipy import ndimage
    weights = np.array([0.299, 0.587, 0.114])
    before, after = _at_ghost_size(inputs) @ weights, _at_ghost_size(outputs) @ weights
    mask = _face_ellipse()
    new_edges, blotch = [], []
    for a, b in zip(before, after):
        grad_a = np.hypot(ndimage.sobel(a, 0), ndimage.sobel(a, 1)) / 4.0
        grad_b = np.hypot(ndimage.sobel(b, 0), ndimage.sobel(b, 1)) / 4.0
        new = (grad_b > GHOST_STRONG) & (ndimage.maximum_filter(grad_a, 5) < GHOST_NONE) & mask
        new_edges.append(100.0 * new.sum() / mask.sum())
        change = ndimage.gaussian_filter(b - a, BLOTCH_SIGMA)[mask]
        blotch.append(255.0 * change.std())

    def summary(values):
        values = np.asarray(values)
        return dict(mean=float(values.mean()), median=float(np.median(values)), n=int(values.size)) if values.size \
            else dict(mean=math.nan, median=math.nan, n=0)
    return {"new_edges": summary(new_edges), "blotch": summary(blotch)}
