"""An experiment's plots as SVG text: pure functions of its analysis dict.

The analysis is the JSON-able dict ``experiment.analysis`` writes to
``<workspace>/experiments/reports/<name>.json``. Each plot is drawn on a bare
``matplotlib.figure.Figure`` (no pyplot: no global state, safe in a server's threads) and
returned as an ``<svg>`` element to inline in a page: no XML prologue, no metadata, text as
text (no embedded glyphs), and element ids salted by the plot's name so several plots can
share one page.

- ``forest_svg``: each metric x arm's effect with its confidence interval and its sequential
  (always-valid) interval, around a zero line; significant rows marked.
- ``cumulative_svg``: the effect as the days accumulate, inside its sequential bounds; one
  panel per primary metric.
- ``exposures_svg``: shoppers exposed per arm against the expected split, the SRM check's
  result in the title.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colours: the arm (or effect), its sequential bounds, a failed check, the control.
EFFECT, SEQUENTIAL, BAD, CONTROL = "#1f5fa8", "#e08a1e", "#c0392b", "#7f8c8d"
#: Most rows a forest plot draws (the table lists every row).
MAX_FOREST_ROWS = 40
#: Most panels of the cumulative plot.
MAX_PANELS = 6

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
#: Namespace declarations an inline ``<svg>`` in HTML does without.
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_RC = {"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10}


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _interval(value: Any) -> tuple[float, float] | None:
    """``[lo, hi]`` when both ends are finite numbers, else None."""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        lo, hi = value
        if _finite(lo) and _finite(hi):
            return float(lo), float(hi)
    return None


def _text(value: Any) -> str:
    """A label drawn as given (a ``$`` would start mathtext)."""
    return str(value).replace("$", r"\$")


def _svg(fig: Figure, salt: str) -> str:
    """The figure as an inline ``<svg>`` element (no prologue, no metadata)."""
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = _METADATA.sub("", _PROLOGUE.sub("", buf.getvalue(), count=1), count=1)
    head, sep, body = text.partition(">")
    return (_XMLNS.sub("", head) + sep + body).strip()


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=CONTROL)
    ax.set_axis_off()


def _relative(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every row's effect can be shown relative to its control mean."""
    means = [r.get("control_mean") for r in rows]
    return bool(means) and all(_finite(m) and m != 0 for m in means)


def forest_svg(analysis: Mapping[str, Any]) -> str:
    """Each metric x arm's effect, its interval and its sequential interval (a forest plot).

    Effects are drawn relative to the control's mean (in %) when every row has a non-zero
    control mean (metrics of different units then share the axis), else as absolute effects.
    Significant rows (adjusted p below alpha) are drawn filled and marked ``*``.

    Parameters
    ----------
    analysis
        The experiment's analysis dict.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    rows = [r for r in analysis.get("metrics") or [] if isinstance(r, Mapping)]
    rows = rows[:MAX_FOREST_ROWS]
    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 1.2 + 0.38 * max(len(rows), 1))
        ax = fig.add_subplot()
        if not rows:
            _empty(ax, "no metrics yet")
            return _svg(fig, "forest")
        relative = _relative(rows)
        labels = []
        for y, row in enumerate(reversed(rows)):
            scale = 100.0 / abs(row["control_mean"]) if relative else 1.0
            seq, ci = _interval(row.get("sequential_ci")), _interval(row.get("ci"))
            if seq is not None:
                ax.plot(
                    [seq[0] * scale, seq[1] * scale],
                    [y, y],
                    color=SEQUENTIAL,
                    lw=1.2,
                    solid_capstyle="butt",
                    label="sequential interval" if y == 0 else None,
                )
            if ci is not None:
                ax.plot(
                    [ci[0] * scale, ci[1] * scale],
                    [y, y],
                    color=EFFECT,
                    lw=4,
                    alpha=0.55,
                    solid_capstyle="butt",
                    label="confidence interval" if y == 0 else None,
                )
            sig = bool(row.get("significant"))
            if _finite(row.get("effect")):
                face = EFFECT if sig else "white"
                ax.plot([row["effect"] * scale], [y], "o", ms=6, mfc=face, mec=EFFECT, mew=1.5)
            mark = " *" if sig else ""
            labels.append(_text(f"{row.get('metric', '?')} ({row.get('arm', '?')}){mark}"))
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(range(len(rows)), labels)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        unit = "effect, % of control mean" if relative else "effect (arm - control)"
        ax.set_xlabel(f"{unit}; * significant at alpha = {analysis.get('alpha', 0.05)}")
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
        return _svg(fig, "forest")


def _primary_metrics(analysis: Mapping[str, Any]) -> list[str]:
    rows = [r for r in analysis.get("metrics") or [] if isinstance(r, Mapping)]
    names = [str(r.get("metric")) for r in rows if r.get("role") == "primary"]
    if not names:
        names = [str(r.get("metric")) for r in rows[:1]]
    return list(dict.fromkeys(names))[:MAX_PANELS]


def cumulative_svg(analysis: Mapping[str, Any]) -> str:
    """The cumulative effect day by day inside its sequential bounds, a panel per primary
    metric (the first metric when none is primary), a line per non-control arm.

    Parameters
    ----------
    analysis
        The experiment's analysis dict (its ``daily`` rows: cumulative up to each day).

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    metrics = _primary_metrics(analysis)
    daily = [d for d in analysis.get("daily") or [] if isinstance(d, Mapping)]
    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 2.4 * max(len(metrics), 1))
        if not metrics or not daily:
            _empty(fig.add_subplot(), "no daily results yet")
            return _svg(fig, "cumulative")
        axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
        days = sorted({str(d.get("day")) for d in daily})
        where = {day: i for i, day in enumerate(days)}
        colours = [EFFECT, "#8e44ad", "#16a085", "#d35400", "#2c3e50"]
        for ax, metric in zip(axes, metrics, strict=True):
            rows = [d for d in daily if d.get("metric") == metric]
            arms = list(dict.fromkeys(str(d.get("arm")) for d in rows))
            for i, arm in enumerate(arms):
                colour = colours[i % len(colours)]
                pts = sorted(
                    (where[str(d.get("day"))], d) for d in rows if str(d.get("arm")) == arm
                )
                xs = [x for x, d in pts if _finite(d.get("effect"))]
                ys = [d["effect"] for _, d in pts if _finite(d.get("effect"))]
                ax.plot(xs, ys, "-o", ms=3, color=colour, label=_text(f"{arm} effect"))
                band = [(x, _interval(d.get("sequential_ci"))) for x, d in pts]
                band = [(x, b) for x, b in band if b is not None]
                if band:
                    ax.fill_between(
                        [x for x, _ in band],
                        [b[0] for _, b in band],
                        [b[1] for _, b in band],
                        color=colour,
                        alpha=0.15,
                        lw=0,
                        label=_text(f"{arm} sequential bounds"),
                    )
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_title(_text(f"{metric}: cumulative effect"), loc="left")
            ax.set_ylabel("effect")
            ax.grid(color="#eeeeee", lw=0.6)
            if arms:
                ax.legend(fontsize=8, frameon=False, loc="upper left")
        step = max(1, math.ceil(len(days) / 10))
        axes[-1].set_xticks(range(0, len(days), step), days[::step], rotation=30, ha="right")
        return _svg(fig, "cumulative")


def exposures_svg(analysis: Mapping[str, Any]) -> str:
    """Shoppers exposed per arm, with the count the planned split expects; the title says
    whether the sample-ratio-mismatch (SRM) check passed.

    Parameters
    ----------
    analysis
        The experiment's analysis dict (``exposures``, ``srm``, ``control``).

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    exposures = {str(k): v for k, v in (analysis.get("exposures") or {}).items() if _finite(v)}
    srm = analysis.get("srm") or {}
    shares = srm.get("expected_share") or {}
    with matplotlib.rc_context(_RC):
        fig = _figure(5.5, 2.8)
        ax = fig.add_subplot()
        if not exposures:
            _empty(ax, "no exposures yet")
            return _svg(fig, "exposures")
        arms = list(exposures)
        control = analysis.get("control")
        total = sum(exposures.values())
        colours = [CONTROL if a == control else EFFECT for a in arms]
        bars = ax.bar(
            [_text(a) for a in arms], [exposures[a] for a in arms], color=colours, width=0.6
        )
        ax.bar_label(bars, [f"{int(exposures[a]):,}" for a in arms], fontsize=8)
        expected = [(i, shares[a] * total) for i, a in enumerate(arms) if _finite(shares.get(a))]
        if expected:
            ax.plot(
                [i for i, _ in expected],
                [e for _, e in expected],
                "_",
                ms=28,
                mew=2,
                color="black",
                label="expected by the split",
            )
            ax.legend(fontsize=8, frameon=False, loc="upper left")
        ax.set_ylabel("shoppers exposed")
        ax.margins(y=0.3)
        p = srm.get("p_value")
        shown = f"p = {p:.3g}" if _finite(p) else "p unknown"
        if srm.get("passed") is False:
            ax.set_title(f"SRM check FAILED ({shown}): results blocked", color=BAD)
        elif srm.get("passed") is True:
            ax.set_title(f"SRM check passed ({shown})")
        else:
            ax.set_title("SRM check not run")
        return _svg(fig, "exposures")


def all_plots(analysis: Mapping[str, Any]) -> dict[str, str]:
    """The three plots by name: ``forest``, ``cumulative``, ``exposures``.

    Parameters
    ----------
    analysis
        The experiment's analysis dict.

    Returns
    -------
    dict of str to str
        Each plot's ``<svg>`` element.
    """
    return {
        "forest": forest_svg(analysis),
        "cumulative": cumulative_svg(analysis),
        "exposures": exposures_svg(analysis),
    }
