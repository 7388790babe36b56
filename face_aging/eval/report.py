"""The evaluation report: the papers' age/identity table as Markdown and plain text, every figure as JSON, and two
plots drawn with matplotlib where it is installed (the `eval` extra; without it the plots are skipped, saying why).

The evaluator hands over one `results` dict; this module only formats it. Its schema (figures as produced by
`face_aging.eval.metrics`; "—" in the table wherever a figure is None or NaN):

    {
      "model": "caae" | "pagan" | "combined",
      "target_word": "group" | "cluster", # what the targets are called
      "ranks_targets": bool,              # the rank correlation of age with target applies (every face aged)
      "reconstructs": bool,               # G's reconstruction error applies (the CAAE)
      "checkpoint": str,                  # optional: where the generator came from
      "residual": {"strength": float, "input_age": str | int | None} | None,   # CAAE: residual aging
                                          #   (strength 0: G's own faces; caae/residual.py); --input_age
      "data": str,                        # what the input faces were, e.g. "UTKFace test split"
      "num_faces": int,                   # input faces evaluated
      "targets": [str, ...],              # target group/cluster names, one table column each
      "target_bounds": [[low, high], ...],  # inclusive ages of each target (models.ager.eval_targets)
      "judges": {
        "age":      {"name", "kind", "source", "version"} | {"missing": why},
        "identity": {"name", "kind", "source", "version",
                     "score": "cosine similarity" | "distance" | ...,
                     "higher_means_same": bool} | {"missing": why},
      },
      "faces": [{"file": name, "age": labelled age | None}, ...],   # optional: the aged faces, in the order of
                                          # every per-face list ("gen_ages", "identities", rank correlation's "rhos")
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
          "identities": [float, ...],                    # optional: those scores, face by face (`faces` order)
          "verification": [metrics.verification_figures(...), ...],  # same FARs as "thresholds"
        }, ...
      ],
      "rank_correlation": metrics.per_face_rank_correlation(...) + {"pooled": rho | None} | None,  # CAAE only
      "reconstruction_error": float | None,                                                     # CAAE only
    }

`write_report` adds "plots": {name: {"path": file name | None, "skipped": why | None}} to the JSON it writes.
"""

import json
import logging
import math
import os

import numpy as np

from face_aging.fileio import atomic_write

DASH = "—"
# The FARs the papers report: verification rows always exist for these, filled or saying why not.
REPORT_FARS = (1e-5, 1e-3)
# One mark per unresolved FAR, in the order the thresholds are listed.
MARKS = ("*", "†", "‡", "§")
PLOT_SIZE, PLOT_DPI = (900, 500), 100     # pixels of each PNG
NO_MATPLOTLIB = "matplotlib is not installed (pip install -r requirements-eval.txt)"
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
    return results.get("target_word", "group")


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
        row(f"age error to the {term}'s middle (mean |estimated - requested|, years)", "error",
            lambda t: _fmt(t.get("age_error"), 1), age_missing),
        row(f"real faces of the {term}: age error to its middle (the judge's own)", "real err",
            lambda t: _fmt(t.get("real_age_error"), 1), age_missing),
        row(f"generated faces estimated inside the {term}", "inside",
            lambda t: format_share((t.get("gen_age") or {}).get("inside")), age_missing),
        row("generated faces with an age estimate", "aged n",
            lambda t: format_count(t.get("gen_age")), age_missing),
        row(f"mean identity {score} of input and output (± std{direction})", "identity",
            lambda t: format_mean_std(t.get("identity"), 3), id_missing),
    ]
    for i, threshold in enumerate(_fixed_thresholds(results)):
        rows.append(row(f"verified as the input person ({score} below {threshold:g})", f"<{threshold:g}",
                        lambda t, i=i: format_share(((t.get("verified_below") or [{}] * (i + 1))[i]).get("rate")),
                        id_missing))
    rows.append(row("sharpness: high-frequency energy of the output over the input's (median)", "sharp",
                    lambda t: _fmt((t.get("sharpness") or {}).get("median"), 2), None))
    rows.append(row("ghost features: % of the face with a strong new edge where the input has none (mean)", "ghost",
                    lambda t: _fmt((t.get("new_edges") or {}).get("mean"), 2), None))
    rows.append(row("blotches: spread of the blurred luminance change over the face, grey levels (mean)", "blotch",
                    lambda t: _fmt((t.get("blotch") or {}).get("mean"), 1), None))
    marks = _unresolved_marks(results)
    # Without thresholds (no identity judge) the papers' FARs still get their rows, saying why they are empty.
    fars = [t["far_target"] for t in results.get("thresholds") or []] or list(REPORT_FARS)
    for far in fars:
        mark = marks.get(far, "")
        rows.append(row(f"verification rate @FAR {format_far(far)}", f"VR@{format_far(far)}",
                        lambda t, far=far, mark=mark: format_share((_verification(t, far) or {}).get("rate"), mark),
                        id_missing))
    return rows


def _fixed_thresholds(results):
    for target in results.get("per_target") or []:
        if target.get("verified_below"):
            return [v["threshold"] for v in target["verified_below"]]
    return []


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
    from face_aging.models.caae.residual import describe_outputs
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
    if results.get("ranks_targets") or rank is not None:
        if age_missing:
            lines.append(f"Rank correlation of estimated age with target group: {DASH} (judge missing: {age_missing})")
        elif rank:
            per_face = (f"per face mean {_fmt(rank.get('mean'), 3)}, median {_fmt(rank.get('median'), 3)} over "
                        f"{rank.get('n', 0):,} faces" + (f" ({rank['undefined']:,} undefined)"
                                                         if rank.get("undefined") else ""))
            lines.append(f"Rank correlation (Spearman) of estimated age with target group: {per_face}; "
                         f"all outputs pooled {_fmt(rank.get('pooled'), 3)}")
    if results.get("age_error_21_70") is not None:
        lines.append(f"Age error to target (mean |estimated - requested| in years, requested = each target's middle) "
                     f"over the targets of 21-70: {results['age_error_21_70']:.1f}"
                     + ("" if results.get("real_age_error_21_70") is None else
                        f" (real faces of those targets, by the same judge: {results['real_age_error_21_70']:.1f})"))
    if results.get("input_age"):
        lines.append(f"The input faces themselves: mean estimated age "
                     f"{format_mean_std(results['input_age'], 1)} ({results['input_age']['n']:,} faces)")
    near = results.get("near_age_verification")
    if near:
        aged = ("" if near.get("share_aged") is None else
                f" ({100 * near['share_aged']:.1f}% of the {near['n_aged']:,} at targets 1-{near['within']} groups away)")
        lines.append(f"Same person by the judge's usual rule (below {near['threshold']:g}) for targets within "
                     f"{near['within']} groups of the input's own: {100 * near['share']:.1f}% of {near['n']:,} "
                     f"outputs{aged}")
        strict = near.get("strict")
        if strict:
            aged = ("" if strict.get("share_aged") is None else
                    f" ({100 * strict['share_aged']:.1f}% of those at targets 1-{strict['within']} groups away)")
            lines.append(f"... and by the stricter threshold {strict['threshold']:g}: {100 * strict['share']:.1f}%"
                         f"{aged}")
    if results.get("reconstructs") or results.get("reconstruction_error") is not None:
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
    side = comparison_results(results)
    if side:
        groups = [t.get("group", "?") for t in side["per_target"]]
        lines += ["", f"## The same faces through {results['comparison']['model']}", "",
                  f"Residual aging at strength {results['comparison']['residual']:g}, to the CAAE group matching "
                  f"each cluster ({', '.join(f'{c}: {g}' for c, g in zip(results['targets'], groups))}); the same "
                  f"judges and thresholds.", "",
                  "| | " + " | ".join(results["targets"]) + " |", "|---" * (len(results["targets"]) + 1) + "|"]
        for row in table_rows(side):
            if row["short"] != "real age":
                lines.append(f"| {row['label']} | " + " | ".join(_md_cell(c) for c in row["cells"]) + " |")
    return "\n".join(lines) + "\n"


def comparison_results(results):
    """PAGAN's report: the bundled CAAE's figures on the same faces as a results dict of their own, or None."""
    comparison = results.get("comparison")
    if not comparison:
        return None
    return {**results, "per_target": comparison["per_target"]}


def _md_cell(text):
    return str(text).replace("|", "\\|")


def _console_table(results, names, real_rows=True):
    rows = [row for row in table_rows(results) if real_rows or row["short"] != "real age"]
    header = ["target"] + [row["short"] for row in rows]
    body = [[name] + [row["cells"][k] for row in rows] for k, name in enumerate(names)]
    widths = [max(len(line[c]) for line in [header] + body) for c in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header] + body]


def format_console(results):
    """The table as plain text, one line per target: ten groups side by side would not fit a terminal."""
    rows = table_rows(results)
    lines = header_lines(results) + [""] + _console_table(results, results["targets"])
    side = comparison_results(results)
    if side:
        names = [f"{c} (CAAE {t.get('group', '?')})" for c, t in zip(results["targets"], side["per_target"])]
        lines += ["", f"The same faces through {results['comparison']['model']}, residual aging at "
                      f"{results['comparison']['residual']:g}:"] + _console_table(side, names, real_rows=False)
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

def _plotting():
    """(Figure, FigureCanvasAgg) from matplotlib, or None where the optional extra is not installed. Imported here,
    not with the module, so that face_aging.eval imports without it; no pyplot, so no global backend is set."""
    try:
        import matplotlib  # noqa: F401  (first: it is what a missing extra lacks)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure, FigureCanvasAgg


def _rgb(colour):
    return tuple(c / 255.0 for c in colour)


def _chart(title, categories, y_range, y_label, x_label):
    """A figure of PLOT_SIZE pixels with one category axis (x = targets); returns (figure, axes)."""
    plotting = _plotting()
    if plotting is None:
        raise ImportError(NO_MATPLOTLIB)
    Figure, FigureCanvasAgg = plotting
    figure = Figure(figsize=(PLOT_SIZE[0] / PLOT_DPI, PLOT_SIZE[1] / PLOT_DPI), dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    figure.suptitle(title, fontsize=12)
    axes.set_xlim(-0.5, len(categories) - 0.5)
    axes.set_ylim(*y_range)
    axes.set_xticks(range(len(categories)), categories)
    axes.set_ylabel(y_label)
    axes.set_xlabel(x_label)
    axes.grid(axis="y", color=(0.91, 0.91, 0.91))
    axes.set_axisbelow(True)
    return figure, axes


def _legend(axes):
    """The legend in a row (or two) between the title and the plot, never inside it, where it could hide data:
    markers first, then lines, then shaded areas."""
    from matplotlib.container import ErrorbarContainer
    from matplotlib.patches import Patch
    entries = sorted(zip(*axes.get_legend_handles_labels()),
                     key=lambda e: 0 if isinstance(e[0], ErrorbarContainer) else 2 if isinstance(e[0], Patch) else 1)
    columns = len(entries) if sum(len(label) for _, label in entries) < 110 else 2
    axes.legend(*zip(*entries), loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=columns, fontsize="small",
                frameon=False)


def _error_bar(axes, x, mean, std, colour, label=None):
    """Mean marker with a ±1 std bar (capped); a NaN std draws the marker alone."""
    axes.errorbar([x], [mean], yerr=None if _missing(std) else [[std], [std]], fmt="o", color=_rgb(colour),
                  markeredgecolor=(0.08, 0.08, 0.08), markersize=8, elinewidth=2, capsize=6, capthick=2,
                  label=label, zorder=3)


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
    from matplotlib.patches import Rectangle
    targets, bounds = results["per_target"], results.get("target_bounds") or [None] * len(results["targets"])
    values = [v for t in targets for which in ("gen", "real") for v in _age_values(t, which) if not _missing(v)]
    values += [f["mean"] + f["std"] for t in targets for f in (t.get("gen_age"), t.get("real_age"))
               if f and not _missing(f.get("mean"))]
    high = min(120.0, max(80.0, math.ceil((max(values, default=0) + 5) / 10) * 10))
    any_real = any(t.get("real_age") and t["real_age"].get("n") for t in targets)
    term = _term(results)
    judge = _judge(results, "age").get("name", "age judge")
    figure, axes = _chart(f"{results.get('model', '?').upper()}: estimated age by target {term} (judge: {judge})",
                          results["targets"], (0.0, high), "estimated age (years)", f"target age {term}")
    labels = {"gen": "generated faces: mean ± 1 std, dots = faces", "real": f"real faces of the {term}"}
    band_label = f"target {term}'s age range"
    for k, band in enumerate(bounds):
        if band:
            # Estimates are read rounded to whole years, so the band covers low-0.5 .. high+0.5.
            low, top = max(band[0] - 0.5, 0.0), min(band[1] + 0.5, high)
            axes.add_patch(Rectangle((k - 0.46, low), 0.92, top - low, facecolor=_rgb(BAND_COLOUR), edgecolor="none",
                                     zorder=0, label=band_label))
            band_label = None
    for k, target in enumerate(targets):
        series = [("gen", GEN_COLOUR, -0.17 if any_real else 0.0), ("real", REAL_COLOUR, 0.17)]
        for which, colour, offset in series:
            figures = target.get(f"{which}_age")
            if not figures or not figures.get("n"):
                continue
            # Faint jittered dots, one per face; seeded, so a report redrawn is the same picture.
            points = np.asarray([v for v in _age_values(target, which) if not _missing(v)], dtype=np.float64)
            jitter = np.random.default_rng(k).uniform(-0.09, 0.09, points.size)
            axes.scatter(k + offset + jitter, points, s=10, color=_rgb(colour), alpha=0.3, linewidths=0, zorder=2)
            _error_bar(axes, k + offset, figures["mean"], figures["std"], colour, labels.pop(which, None))
    _legend(axes)
    return figure


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
    score = judge.get("score", "similarity")
    marks = _unresolved_marks(results)
    figure, axes = _chart(f"{results.get('model', '?').upper()}: identity {score} of input and output by target "
                          f"(judge: {judge.get('name', 'identity judge')})", results["targets"],
                          (low - pad, high + pad),
                          f"{score}" + (" (lower = same)" if judge.get("higher_means_same") is False else ""),
                          f"target age {_term(results)}")
    label = "mean ± 1 std over input faces"
    for k, f in enumerate(figures):
        if f:
            _error_bar(axes, k, f["mean"], f["std"], GEN_COLOUR, label)
            label = None
    for threshold, colour in zip(thresholds, THRESHOLD_COLOURS):
        far = threshold["far_target"]
        note = (f"{marks[far]} (unresolved: {threshold['n_impostor']:,} impostor pairs)" if far in marks else "")
        axes.axhline(threshold["threshold"], color=_rgb(colour), linestyle=(0, (4, 3)), linewidth=2, zorder=1,
                     label=f"threshold @FAR {format_far(far)} = {threshold['threshold']:.3g}{note}")
    _legend(axes)
    return figure


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


def _save_png(figure, path):
    with atomic_write(path) as f:
        figure.savefig(f, format="png", dpi=PLOT_DPI)


def write_report(results, out_dir):
    """Write eval.json (every figure; NaN -> null), eval.md (the table) and the two plots into `out_dir`.

    A plot whose data is missing, or every plot when matplotlib is not installed (said once, as a warning), is
    skipped, its reason recorded under "plots" in the JSON and the Markdown, and any plot of that name left by an
    earlier run is removed so it cannot be taken for this run's.
    Returns {"json", "markdown", "age_by_target", "identity_by_target"}: paths, None for a skipped plot.
    """
    os.makedirs(out_dir, exist_ok=True)
    plots, paths, undrawn = {}, {}, []
    for name, reason, draw in (("age_by_target", age_plot_skip_reason(results), draw_age_plot),
                               ("identity_by_target", identity_plot_skip_reason(results), draw_identity_plot)):
        path = os.path.join(out_dir, f"{name}.png")
        if not reason and _plotting() is None:
            reason = NO_MATPLOTLIB
            undrawn.append(name)
        if reason:
            if os.path.exists(path):
                os.remove(path)
            plots[name], paths[name] = dict(path=None, skipped=reason), None
        else:
            _save_png(draw(results), path)
            plots[name], paths[name] = dict(path=os.path.basename(path), skipped=None), path
    if undrawn:
        logging.warning("Plots not drawn (%s): %s", ", ".join(undrawn), NO_MATPLOTLIB)
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
