"""The evaluation report: the papers' age/identity table as Markdown and plain text, every figure as JSON, and two
plots drawn with Pillow (the project has no plotting dependency and should not gain one for two charts).

The evaluator hands over one `results` dict; this module only formats it. Its schema (figures as produced by
`face_aging.eval.metrics`; "—" in the table wherever a figure is None or NaN):

    {
      "model": "caae" | "pagan",
      "checkpoint": str,                  # optional: where the generator came from
      "residual": {"strength": float, "input_age": str | int | None} | None,   # CAAE: residual aging
                                          #   (strength 0: G's own faces; caae/residual.py); --input_age
      "data": str,                        # what the input faces were, e.g. "UTKFace test split"
      "num_faces": int,                   # input faces evaluated
      "targets": [str, ...],              # target group/cluster names, one table column each
      "target_bounds": [[low, high], ...],  # inclusive ages of each target (metrics.group_bounds)
      "judges": {
        "age":      {"name", "kind", "source", "version"} | {"missing": why},
        "identity": {"name", "kind", "source", "version",
                     "score": "cosine similarity" | "distance" | ...,
                     "higher_means_same": bool} | {"missing": why},
      },
      "face_box": str,                    # how judges were told where the face is, e.g. "the whole crop"
      "impostors": {"description": str, "n_pairs": int},   # metrics.impostor_pairs' description
      "thresholds": [metrics.threshold_at_far(...), ...],  # one per FAR, table rows in this order
      "per_target": [                     # one per target, in `targets` order
        {
          "gen_age": metrics.age_figures(...) | None,    # estimated age of the generated faces
          "gen_ages": [float | None, ...],               # optional: the estimates themselves (plot points)
          "real_age": metrics.age_figures(...) | None,   # real faces of that group, None when there are none
          "real_ages": [float | None, ...],              # optional
          "identity": metrics.identity_figures(...) | None,   # genuine (input, output) scores
          "verification": [metrics.verification_figures(...), ...],  # same FARs as "thresholds"
        }, ...
      ],
      "rank_correlation": metrics.per_face_rank_correlation(...) + {"pooled": rho | None} | None,  # CAAE only
      "reconstruction_error": float | None,                                                     # CAAE only
    }

`write_report` adds "plots": {name: {"path": file name | None, "skipped": why | None}} to the JSON it writes.
"""

import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from face_aging.fileio import atomic_write

DASH = "—"
# The FARs the papers report: verification rows always exist for these, filled or saying why not.
REPORT_FARS = (1e-5, 1e-3)
# One mark per unresolved FAR, in the order the thresholds are listed.
MARKS = ("*", "†", "‡", "§")
PLOT_SIZE = (900, 500)
GEN_COLOUR = (31, 119, 180)
REAL_COLOUR = (230, 120, 20)
BAND_COLOUR = (222, 236, 222)
THRESHOLD_COLOURS = ((200, 30, 30), (120, 120, 120), (150, 80, 160))


# ------------------------------------------------------------------------------------------------- formatting

def _missing(value):
    return value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value))


def format_far(far):
    """1e-05 -> "1e-5", 0.001 -> "1e-3": the papers' spelling."""
    mantissa, exponent = f"{far:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_mean_std(figures, digits):
    """"42.1 ± 5.3" from a dict with mean and std, "—" when there is none."""
    if not figures or _missing(figures.get("mean")):
        return DASH
    return f"{figures['mean']:.{digits}f} ± {figures['std']:.{digits}f}"


def format_share(share, mark=""):
    """0.978 -> "97.8%" (with an optional footnote mark), "—" when unknown."""
    return DASH if _missing(share) else f"{100.0 * share:.1f}%{mark}"


def format_count(figures):
    """"98 (+2 failed)": faces the judge scored, and those it failed on."""
    if not figures:
        return DASH
    failed = figures.get("failed") or 0
    return f"{figures['n']:,}" + (f" (+{failed:,} failed)" if failed else "")


def _judge(results, role):
    judge = (results.get("judges") or {}).get(role)
    return judge if judge else {"missing": "not recorded in the results"}


def describe_judge(judge):
    """"name (kind; source; version)" or "missing: why"."""
    if "missing" in judge:
        return f"missing: {judge['missing']}"
    details = "; ".join(str(judge[k]) for k in ("kind", "source", "version") if judge.get(k))
    return f"{judge.get('name', 'unnamed')}" + (f" ({details})" if details else "")


def _term(results):
    return "cluster" if results.get("model") == "pagan" else "group"


def _thresholds(results):
    """The verification thresholds, none when there is no identity judge (they would be someone else's)."""
    return [] if _judge(results, "identity").get("missing") else list(results.get("thresholds") or [])


def _unresolved_marks(results):
    """{far: mark} for the thresholds whose FAR the impostor pairs could not resolve."""
    marks, unresolved = {}, [t for t in _thresholds(results) if t.get("threshold") is not None
                             and not t.get("enough")]
    for threshold, mark in zip(unresolved, MARKS):
        marks[threshold["far_target"]] = mark
    return marks


def _verification(target, far):
    for entry in target.get("verification") or []:
        if math.isclose(entry["far"], far):
            return entry
    return None


# ----------------------------------------------------------------------------------------------------- table

def table_rows(results):
    """The table's rows: dicts of label (Markdown), short (console header), cells (one per target) and missing
    (why the row's judge is missing, or None)."""
    targets = results["per_target"]
    term = _term(results)
    age_judge, id_judge = _judge(results, "age"), _judge(results, "identity")
    age_missing, id_missing = age_judge.get("missing"), id_judge.get("missing")

    def row(label, short, cell, missing):
        return dict(label=label, short=short, missing=missing,
                    cells=[DASH] * len(targets) if missing else [cell(t) for t in targets])

    score = id_judge.get("score", "similarity")
    direction = "; lower = same person" if id_judge.get("higher_means_same") is False else ""
    rows = [
        row("generated faces: mean estimated age (± std)", "gen age",
            lambda t: format_mean_std(t.get("gen_age"), 1), age_missing),
        row(f"real faces of the {term}: mean estimated age (± std)", "real age",
            lambda t: format_mean_std(t.get("real_age"), 1), age_missing),
        row(f"generated faces estimated inside the {term}", "inside",
            lambda t: format_share((t.get("gen_age") or {}).get("inside")), age_missing),
        row("generated faces with an age estimate", "aged n",
            lambda t: format_count(t.get("gen_age")), age_missing),
        row(f"mean identity {score} of input and output (± std{direction})", "identity",
            lambda t: format_mean_std(t.get("identity"), 3), id_missing),
    ]
    marks = _unresolved_marks(results)
    # Without thresholds (no identity judge) the papers' FARs still get their rows, saying why they are empty.
    fars = [t["far_target"] for t in results.get("thresholds") or []] or list(REPORT_FARS)
    for far in fars:
        mark = marks.get(far, "")
        rows.append(row(f"verification rate @FAR {format_far(far)}", f"VR@{format_far(far)}",
                        lambda t, far=far, mark=mark: format_share((_verification(t, far) or {}).get("rate"), mark),
                        id_missing))
    return rows


def footnotes(results):
    """(mark, text) for each unresolved FAR, and (None, text) for each FAR with no threshold at all."""
    notes = []
    marks = _unresolved_marks(results)
    for threshold in _thresholds(results):
        far = format_far(threshold["far_target"])
        if threshold.get("threshold") is None:
            notes.append((None, f"FAR {far}: no impostor scores, so no threshold and no verification rate."))
        elif threshold["far_target"] in marks:
            notes.append((marks[threshold["far_target"]],
                          f"fewer than {threshold['min_pairs_needed']:,} impostor pairs ({threshold['n_impostor']:,} "
                          f"available): FAR {far} cannot be resolved. The threshold is the most same-looking impostor "
                          f"score (no impostor accepted); a larger impostor sample would likely set a stricter one, "
                          f"so this rate is optimistic."))
    return notes


def header_lines(results):
    """The facts a reader needs before the numbers: model, data, faces, judges, face box, impostor pairs."""
    from face_aging.caae.residual import describe_outputs
    model = results.get("model", "?")
    lines = [f"Model: {model.upper()}" + (f" ({results['checkpoint']})" if results.get("checkpoint") else ""),
             f"Data: {results.get('data', 'not recorded')}; {results.get('num_faces', 0):,} input faces",
             *([f"Outputs: {describe_outputs(**results['residual'])}"] if results.get("residual") else []),
             f"Age judge: {describe_judge(_judge(results, 'age'))}",
             f"Identity judge: {describe_judge(_judge(results, 'identity'))}",
             f"Face box given to the judges: {results.get('face_box', 'not recorded')}"]
    impostors = results.get("impostors")
    if impostors:
        lines.append(f"Impostor pairs: {impostors.get('description', '')}")
    for threshold in _thresholds(results):
        if threshold.get("threshold") is not None:
            lines.append(f"Threshold @FAR {format_far(threshold['far_target'])}: {threshold['threshold']:.4g} "
                         f"(impostors accepted: {100 * threshold['far_achieved']:.4g}% of "
                         f"{threshold['n_impostor']:,})")
    return lines


def extra_lines(results):
    """CAAE's figures that are not per target: rank correlation of age with target, reconstruction error."""
    lines = []
    rank = results.get("rank_correlation")
    age_missing = _judge(results, "age").get("missing")
    if results.get("model") == "caae" or rank is not None:
        if age_missing:
            lines.append(f"Rank correlation of estimated age with target group: {DASH} (judge missing: {age_missing})")
        elif rank:
            per_face = (f"per face mean {_fmt(rank.get('mean'), 3)}, median {_fmt(rank.get('median'), 3)} over "
                        f"{rank.get('n', 0):,} faces" + (f" ({rank['undefined']:,} undefined)"
                                                         if rank.get("undefined") else ""))
            lines.append(f"Rank correlation (Spearman) of estimated age with target group: {per_face}; "
                         f"all outputs pooled {_fmt(rank.get('pooled'), 3)}")
    near = results.get("near_age_verification")
    if near:
        aged = ("" if near.get("share_aged") is None else
                f" ({100 * near['share_aged']:.1f}% of the {near['n_aged']:,} at targets 1-{near['within']} groups away)")
        lines.append(f"Same person by the judge's usual rule (below {near['threshold']:g}) for targets within "
                     f"{near['within']} groups of the input's own: {100 * near['share']:.1f}% of {near['n']:,} "
                     f"outputs{aged}")
    if results.get("model") == "caae" or results.get("reconstruction_error") is not None:
        lines.append(f"Reconstruction error of G at the input's own group (mean absolute, [0, 1] pixel units): "
                     f"{_fmt(results.get('reconstruction_error'), 4)}")
    return lines


def _fmt(value, digits):
    return DASH if _missing(value) else f"{value:.{digits}f}"


def build_table(results):
    """The Markdown report: header, one column per target, footnotes, CAAE's extra figures."""
    rows = table_rows(results)
    lines = [f"# Age and identity evaluation: {results.get('model', '?').upper()}", ""]
    lines += [f"- {line}" for line in header_lines(results)]
    lines += ["", "| | " + " | ".join(results["targets"]) + " |", "|---" * (len(results["targets"]) + 1) + "|"]
    for row in rows:
        cells = list(row["cells"])
        if row["missing"]:
            cells[0] = f"{DASH} (judge missing: {row['missing']})"
        lines.append(f"| {row['label']} | " + " | ".join(_md_cell(c) for c in cells) + " |")
    notes = footnotes(results)
    for mark, text in notes:
        # One paragraph per note; a leading "*" would start a Markdown list, so it is escaped.
        lines += ["", (f"\\{mark} " if mark == "*" else f"{mark} " if mark else "") + text]
    extra = extra_lines(results)
    if extra:
        lines += [""] + [f"- {line}" for line in extra]
    return "\n".join(lines) + "\n"


def _md_cell(text):
    return str(text).replace("|", "\\|")


def format_console(results):
    """The table as plain text, one line per target: ten groups side by side would not fit a terminal."""
    rows = table_rows(results)
    header = ["target"] + [row["short"] for row in rows]
    body = [[name] + [row["cells"][k] for row in rows] for k, name in enumerate(results["targets"])]
    widths = [max(len(line[c]) for line in [header] + body) for c in range(len(header))]
    lines = header_lines(results) + [""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header] + body]
    by_reason = {}
    for row in rows:
        if row["missing"]:
            by_reason.setdefault(row["missing"], []).append(row["short"])
    notes = [f"{DASH} in {', '.join(shorts)}: judge missing ({why})" for why, shorts in by_reason.items()]
    notes += [(f"{mark} " if mark else "") + text for mark, text in footnotes(results)]
    extra = extra_lines(results)
    lines += ([""] + notes if notes else []) + ([""] + extra if extra else [])
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------- plots

def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(low, high, count=6):
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high] with about `count` ticks."""
    span = max(high - low, 1e-9)
    raw = span / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + k * step, 10) for k in range(int(math.floor((high - first) / step + 1e-9)) + 1)]


class _Chart:
    """A category chart on a white canvas: x = targets, y = values; maps data to pixels and draws the frame.

    The legend is a row (or two) between the title and the plot, never inside it, where it could hide data.
    """

    def __init__(self, title, categories, y_range, y_label, x_label, legend):
        self.image = Image.new("RGB", PLOT_SIZE, "white")
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        self.font, self.small, self.big = _font(13), _font(12), _font(16)
        self.left, self.right, self.bottom = 78, PLOT_SIZE[0] - 22, PLOT_SIZE[1] - 62
        legend_rows = self._layout_legend(legend)
        self.top = 44 + 20 * len(legend_rows)
        self.categories, (self.y_low, self.y_high) = categories, y_range
        self.slot = (self.right - self.left) / len(categories)
        self._frame(title, y_label, x_label)
        self._legend(legend_rows)

    def x(self, category, offset=0.0):
        """Pixel x of a category's centre, shifted by `offset` slots."""
        return self.left + (category + 0.5 + offset) * self.slot

    def y(self, value):
        return self.bottom - (value - self.y_low) / (self.y_high - self.y_low) * (self.bottom - self.top)

    def text(self, xy, text, font=None, fill=(40, 40, 40), anchor="la"):
        font = font or self.font
        try:
            self.draw.text(xy, text, font=font, fill=fill, anchor=anchor)
        except ValueError:  # the bitmap fallback font takes no anchor
            self.draw.text(xy, text, font=font, fill=fill)

    def _frame(self, title, y_label, x_label):
        d = self.draw
        self.text((PLOT_SIZE[0] / 2, 12), title, self.big, anchor="mt")
        for value in nice_ticks(self.y_low, self.y_high, 7):
            y = self.y(value)
            d.line([(self.left, y), (self.right, y)], fill=(232, 232, 232))
            d.line([(self.left - 5, y), (self.left, y)], fill=(60, 60, 60))
            self.text((self.left - 8, y), f"{value:g}", anchor="rm")
        for k, name in enumerate(self.categories):
            d.line([(self.x(k), self.bottom), (self.x(k), self.bottom + 5)], fill=(60, 60, 60))
            self.text((self.x(k), self.bottom + 8), name, anchor="mt")
        d.rectangle([self.left, self.top, self.right, self.bottom], outline=(60, 60, 60))
        self.text(((self.left + self.right) / 2, PLOT_SIZE[1] - 10), x_label, anchor="md")
        # Pillow cannot draw rotated text: draw it flat, turn it, paste it.
        box = self.font.getbbox(y_label)
        label = Image.new("RGBA", (box[2] + 4, box[3] + 4), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((2, 0), y_label, font=self.font, fill=(40, 40, 40))
        label = label.rotate(90, expand=True)
        top = int((self.top + self.bottom - label.height) / 2)
        self.image.paste(label, (8, top), label)

    def _layout_legend(self, entries):
        """Entries (kind, colour, text) packed into rows of (x offset, entry) that fit the plot's width."""
        rows, x = [[]], 0.0
        for entry in entries:
            width = 30 + self.draw.textlength(entry[2], font=self.small) + 24
            if rows[-1] and x + width > self.right - self.left:
                rows.append([])
                x = 0.0
            rows[-1].append((x, entry))
            x += width
        return rows if rows[0] else []

    def _legend(self, rows):
        for r, row in enumerate(rows):
            cy = 40 + 20 * r
            for dx, (kind, colour, text) in row:
                x0 = self.left + dx
                if kind == "band":
                    self.draw.rectangle([x0 + 4, cy - 6, x0 + 22, cy + 6], fill=colour, outline=(170, 170, 170))
                elif kind == "line":
                    self.draw.line([(x0 + 2, cy), (x0 + 24, cy)], fill=colour, width=2)
                else:
                    self.draw.ellipse([x0 + 8, cy - 5, x0 + 18, cy + 5], fill=colour, outline=(20, 20, 20))
                self.text((x0 + 30, cy), text, self.small, anchor="lm")

    def error_bar(self, x, mean, std, colour, radius=5):
        """Mean marker with a ±1 std bar (capped); a NaN std draws the marker alone."""
        if not _missing(std):
            # A bar running off the axes is cut at the frame, without a cap, so it reads as "goes on".
            ends = [self.y(mean - std), self.y(mean + std)]
            clipped = [min(max(y, self.top), self.bottom) for y in ends]
            self.draw.line([(x, clipped[0]), (x, clipped[1])], fill=colour, width=2)
            for y, cut in zip(ends, clipped):
                if y == cut:
                    self.draw.line([(x - 6, y), (x + 6, y)], fill=colour, width=2)
        y = self.y(mean)
        self.draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(20, 20, 20))

    def points(self, x, values, colour, spread, seed):
        """Faint jittered dots, one per face; the jitter is seeded so a report redrawn is the same picture."""
        values = np.asarray([v for v in values if not _missing(v)], dtype=np.float64)
        jitter = np.random.default_rng(seed).uniform(-spread, spread, values.size)
        for dx, value in zip(jitter, values):
            if self.y_low <= value <= self.y_high:
                px, py = x + dx, self.y(value)
                self.draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour + (70,))

    def hline(self, value, colour):
        """A dashed horizontal line across the plot (its meaning goes in the legend: labels would collide)."""
        y, x = self.y(value), float(self.left)
        while x < self.right:
            self.draw.line([(x, y), (min(x + 8, self.right), y)], fill=colour, width=2)
            x += 14


def _age_values(target, which):
    values = target.get(f"{which}_ages")
    return [] if values is None else list(values)


def age_plot_skip_reason(results):
    """Why the age plot cannot be drawn, or None when it can."""
    missing = _judge(results, "age").get("missing")
    if missing:
        return f"no age judge: {missing}"
    if not any((t.get("gen_age") or {}).get("n") for t in results["per_target"]):
        return "no generated face has an age estimate"
    return None


def draw_age_plot(results):
    """Estimated age against target: per target, generated faces (mean, ±1 std, faint points) and beside them
    the real faces of that target where available, over the target's age range as a shaded band."""
    targets, bounds = results["per_target"], results.get("target_bounds") or [None] * len(results["targets"])
    values = [v for t in targets for which in ("gen", "real") for v in _age_values(t, which) if not _missing(v)]
    values += [f["mean"] + f["std"] for t in targets for f in (t.get("gen_age"), t.get("real_age"))
               if f and not _missing(f.get("mean"))]
    high = min(120.0, max(80.0, math.ceil((max(values, default=0) + 5) / 10) * 10))
    any_real = any(t.get("real_age") and t["real_age"].get("n") for t in targets)
    legend = [("marker", GEN_COLOUR, "generated faces: mean ± 1 std, dots = faces")]
    if any_real:
        legend.append(("marker", REAL_COLOUR, f"real faces of the {_term(results)}"))
    legend.append(("band", BAND_COLOUR, f"target {_term(results)}'s age range"))
    judge = _judge(results, "age").get("name", "age judge")
    chart = _Chart(f"{results.get('model', '?').upper()}: estimated age by target {_term(results)} (judge: {judge})",
                   results["targets"], (0.0, high), "estimated age (years)", f"target age {_term(results)}", legend)
    for k, band in enumerate(bounds):
        if band:
            # Estimates are read rounded to whole years, so the band covers low-0.5 .. high+0.5.
            top, bottom = chart.y(min(band[1] + 0.5, high)), chart.y(max(band[0] - 0.5, 0.0))
            chart.draw.rectangle([chart.x(k, -0.46), top, chart.x(k, 0.46), bottom], fill=BAND_COLOUR)
    for k, target in enumerate(targets):
        series = [("gen", GEN_COLOUR, -0.17 if any_real else 0.0), ("real", REAL_COLOUR, 0.17)]
        for which, colour, offset in series:
            figures = target.get(f"{which}_age")
            if not figures or not figures.get("n"):
                continue
            chart.points(chart.x(k, offset), _age_values(target, which), colour, 0.09 * chart.slot, seed=k)
            chart.error_bar(chart.x(k, offset), figures["mean"], figures["std"], colour)
    return chart.image


def identity_plot_skip_reason(results):
    """Why the identity plot cannot be drawn, or None when it can."""
    missing = _judge(results, "identity").get("missing")
    if missing:
        return f"no identity judge: {missing}"
    if not any((t.get("identity") or {}).get("n") for t in results["per_target"]):
        return "no (input, output) pair has an identity score"
    return None


def draw_identity_plot(results):
    """Mean identity score per target with ±1 std bars, and the verification thresholds as dashed lines."""
    judge = _judge(results, "identity")
    figures = [t.get("identity") if t.get("identity") and t["identity"].get("n") else None
               for t in results["per_target"]]
    thresholds = [t for t in _thresholds(results) if t.get("threshold") is not None]
    values = [f["mean"] + s * (0 if _missing(f["std"]) else f["std"]) for f in figures if f for s in (-1, 1)]
    values += [t["threshold"] for t in thresholds]
    low, high = min(values), max(values)
    pad = max(0.1 * (high - low), 0.02 * max(abs(low), abs(high), 1e-3))
    y_range = (low - pad, high + pad)
    score = judge.get("score", "similarity")
    marks = _unresolved_marks(results)
    legend = [("marker", GEN_COLOUR, "mean ± 1 std over input faces")]
    for threshold, colour in zip(thresholds, THRESHOLD_COLOURS):
        far = threshold["far_target"]
        note = (f"{marks[far]} (unresolved: {threshold['n_impostor']:,} impostor pairs)" if far in marks else "")
        legend.append(("line", colour, f"threshold @FAR {format_far(far)} = {threshold['threshold']:.3g}{note}"))
    chart = _Chart(f"{results.get('model', '?').upper()}: identity {score} of input and output by target "
                   f"(judge: {judge.get('name', 'identity judge')})", results["targets"], y_range,
                   f"{score}" + (" (lower = same)" if judge.get("higher_means_same") is False else ""),
                   f"target age {_term(results)}", legend)
    for threshold, colour in zip(thresholds, THRESHOLD_COLOURS):
        chart.hline(threshold["threshold"], colour)
    for k, f in enumerate(figures):
        if f:
            chart.error_bar(chart.x(k), f["mean"], f["std"], GEN_COLOUR)
    return chart.image


# ----------------------------------------------------------------------------------------------------- files

def to_json_safe(value):
    """A copy with numpy scalars/arrays as Python values and NaN/inf as None, so JSON stays strict."""
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _save_png(image, path):
    with atomic_write(path) as f:
        image.save(f, format="PNG")


def write_report(results, out_dir):
    """Write eval.json (every figure; NaN -> null), eval.md (the table) and the two plots into `out_dir`.

    A plot whose data is missing is skipped, its reason recorded under "plots" in the JSON and the Markdown, and
    any plot of that name left by an earlier run is removed so it cannot be taken for this run's.
    Returns {"json", "markdown", "age_by_target", "identity_by_target"}: paths, None for a skipped plot.
    """
    os.makedirs(out_dir, exist_ok=True)
    plots, paths = {}, {}
    for name, reason, draw in (("age_by_target", age_plot_skip_reason(results), draw_age_plot),
                               ("identity_by_target", identity_plot_skip_reason(results), draw_identity_plot)):
        path = os.path.join(out_dir, f"{name}.png")
        if reason:
            if os.path.exists(path):
                os.remove(path)
            plots[name], paths[name] = dict(path=None, skipped=reason), None
        else:
            _save_png(draw(results), path)
            plots[name], paths[name] = dict(path=os.path.basename(path), skipped=None), path
    markdown = build_table(results) + "\n## Plots\n\n" + "".join(
        f"![{name}]({p['path']})\n\n" if p["path"] else f"- {name}: skipped ({p['skipped']})\n"
        for name, p in plots.items())
    paths["markdown"] = os.path.join(out_dir, "eval.md")
    # Bytes, not text mode: "±" and "—" must be UTF-8 whatever the locale.
    with atomic_write(paths["markdown"]) as f:
        f.write(markdown.encode("utf-8"))
    paths["json"] = os.path.join(out_dir, "eval.json")
    text = json.dumps(to_json_safe({**results, "plots": plots}), indent=2, allow_nan=False, ensure_ascii=False)
    with atomic_write(paths["json"]) as f:
        f.write((text + "\n").encode("utf-8"))
    return paths
