"""Search analytics' plots: pure functions of its dict (``SearchAnalytics.to_dict``), drawn
on bare matplotlib figures as the experiment report's (``experiment.plots``).

- ``positions``: click-through by position, on the search surface and on all surfaces.
- ``daily``: searches per day with the zero-result and engaged ones.
- ``via``: searches per way of starting one (typed, autocomplete, chip, ...) and their CTR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from moodboard.experiment.plots import _RC, BAD, CONTROL, EFFECT, SEQUENTIAL, _empty, _figure, _svg

#: The plots by name, in page order.
PLOTS = ("positions", "daily", "via")


def _rows(analysis: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [r for r in analysis.get(key) or [] if isinstance(r, Mapping)]


def _axes(rows: list[Any], empty: str, height: float = 2.8) -> tuple[Figure, Axes | None]:
    """A one-panel figure; its axes, or None when there are no ``rows`` (it says ``empty``)."""
    fig = _figure(6.0, height)
    ax = fig.add_subplot()
    if not rows:
        _empty(ax, empty)
        return fig, None
    return fig, ax


def positions_figure(analysis: Mapping[str, Any]) -> Figure:
    """Click-through by position: the position bias the ranker must undo."""
    rows = _rows(analysis, "positions")
    fig, ax = _axes(rows, "no impressions with positions yet")
    if ax is None:
        return fig
    lines = (("ctr_all", "all surfaces", CONTROL, "--"), ("ctr", "search", EFFECT, "-"))
    for key, label, colour, style in lines:
        pts = [(r["position"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, style, marker="o", ms=3, color=colour, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("position")
    ax.set_ylabel("clicks / impressions")
    ax.set_ylim(bottom=0)
    ax.grid(color="#dddddd", lw=0.6)
    ax.legend(frameon=False, fontsize=8)
    return fig


def daily_figure(analysis: Mapping[str, Any]) -> Figure:
    """Searches per day, with the zero-result and the engaged ones."""
    rows = _rows(analysis, "daily")
    fig, ax = _axes(rows, "no searches yet")
    if ax is None:
        return fig
    xs = list(range(len(rows)))
    ax.bar(xs, [r["searches"] for r in rows], color="#c9d9ee", label="searches")
    ax.plot(xs, [r["engaged"] for r in rows], "-o", ms=3, color=EFFECT, label="engaged")
    ax.plot(xs, [r["zero_result"] for r in rows], "-o", ms=3, color=BAD, label="zero results")
    step = max(1, len(rows) // 8)
    ax.set_xticks(xs[::step], [str(r["day"])[5:] for r in rows[::step]])
    ax.set_ylabel("searches")
    ax.legend(frameon=False, fontsize=8, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return fig


def via_figure(analysis: Mapping[str, Any]) -> Figure:
    """Searches per way of starting one, labelled with their CTR."""
    rows = _rows(analysis, "via")
    used = [r for r in rows if r.get("searches")]
    fig, ax = _axes(used, "no searches yet", 0.8 + 0.35 * max(len(rows), 1))
    if ax is None:
        return fig
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, [r["searches"] for r in rows], color=SEQUENTIAL)
    for y, r in zip(ys, rows, strict=True):
        ctr = r.get("ctr")
        text = f" CTR {ctr:.1%}" if ctr is not None else ""
        ax.text(r["searches"], y, text, va="center", fontsize=8)
    ax.set_yticks(ys, [str(r["via"]) for r in rows])
    ax.set_xlabel("searches")
    return fig


_FIGURES: dict[str, Callable[[Mapping[str, Any]], Figure]] = {
    "positions": positions_figure,
    "daily": daily_figure,
    "via": via_figure,
}


def search_svgs(analysis: Mapping[str, Any]) -> dict[str, str]:
    """Every plot as an inline ``<svg>`` element, by name."""
    out = {}
    for name in PLOTS:
        with matplotlib.rc_context(_RC):
            out[name] = _svg(_FIGURES[name](analysis), f"search-{name}")
    return out


def write_search_plots(analysis: Mapping[str, Any], folder: Path) -> list[Path]:
    """Write every plot as ``search-<name>.svg`` and ``.png`` into ``folder`` (made if
    missing); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PLOTS:
        with matplotlib.rc_context({**_RC, "svg.hashsalt": f"search-{name}"}):
            fig = _FIGURES[name](analysis)
            for ext in ("svg", "png"):
                path = folder / f"search-{name}.{ext}"
                fig.savefig(path, format=ext, bbox_inches="tight", dpi=120, metadata=_META[ext])
                written.append(path)
    return written


_META = {"svg": {"Date": None}, "png": {"Software": None}}
