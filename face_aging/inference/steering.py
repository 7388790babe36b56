"""Age steering (docs/photos.md#age-steering): each face made to look the age asked for, as the package's own
estimator reads it, instead of each model's average rise.

A model asked for 65 years gives every face the same push; how old the result looks varies by tens of years from
face to face (a child barely ages under the ghost guard, a young adult's PAGAN face stops near 50, an old face is
hardly made younger). So each face is made at a grid of ages, the estimator (face_aging/models/estimator, trained
here; not one of --eval's judges) reads every one, and for each age asked the face takes the grid age whose reading
is nearest, readings (made non-decreasing) and faces linearly interpolated between grid ages. Where the model cannot
get there, that is the face that comes nearest.

Measured on the held-out faces with the combined model (docs/photos.md#age-steering): the age error to target over
21-70 down by 1-2 years, the rank correlation up, the faces as the model makes them.
"""

import numpy as np


# The ages each face is made and read at; years between are interpolated.
GRID = (1.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0)


def monotone(readings):
    """The non-decreasing sequence nearest `readings` in least squares (pool adjacent violators): the older a face
    is made, the older it is taken to read, so that a GIF through the years never jumps back to a younger face where
    the estimator wavers."""
    blocks = []                                           # [mean, count]
    for value in np.asarray(readings, np.float64):
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return np.concatenate([np.full(n, m) for m, n in blocks]) if blocks else np.zeros(0)


def invert(grid, readings, age):
    """(pseudo-age, |reading - age|): the age on the grid (1-year steps, the readings made non-decreasing and
    linearly interpolated) whose reading is nearest `age`; of equally near ones, the one closest to `age` itself.
    NaN readings are skipped; with none left, (nan, inf)."""
    grid = np.asarray(grid, np.float64)
    readings = np.asarray(readings, np.float64)
    known = np.isfinite(readings)
    if not known.any():
        return np.nan, np.inf
    fine = np.arange(grid[known][0], grid[known][-1] + 0.5, 1.0)
    read = np.interp(fine, grid[known], monotone(readings[known]))
    miss = np.abs(read - age)
    k = int(np.argmin(miss + 1e-3 * np.abs(fine - age)))
    return float(fine[k]), float(miss[k])


def at_pseudo_age(grid, faces, pseudo):
    """A face at `pseudo` years from its faces at the grid ages ([G, S, S, 3]): its two neighbours blended."""
    k = int(np.clip(np.searchsorted(grid, pseudo, side="right") - 1, 0, len(grid) - 2))
    w = float(np.clip((pseudo - grid[k]) / (grid[k + 1] - grid[k]), 0.0, 1.0))
    return (1.0 - w) * faces[k] + w * faces[k + 1]


def steer(make, read, ages, grid=GRID):
    """float32 [A, N, S, S, 3]: each face at each of `ages` (years), steered. `make(grid)` -> float32 [G, N, S, S, 3]
    (the faces at each grid age), `read(images [M, S, S, 3])` -> ages [M] (the estimator)."""
    grid = np.asarray(grid, np.float64)
    made = np.asarray(make(list(grid)), np.float32)
    n = made.shape[1]
    readings = np.asarray(read(made.reshape((-1,) + made.shape[2:])), np.float64).reshape(made.shape[:2])
    out = np.empty((len(ages), n) + made.shape[2:], np.float32)
    for i in range(n):
        for a, age in enumerate(ages):
            pseudo = invert(grid, readings[:, i], age)[0]
            # A face the estimator could not read at all is made at the age asked, as without steering.
            out[a, i] = at_pseudo_age(grid, made[:, i], pseudo if np.isfinite(pseudo) else age)
    return out
