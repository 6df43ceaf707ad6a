"""An experiment's report: one self-contained HTML page rendered from its analysis dict.

``render_report(analysis)`` turns the dict ``experiment.analysis`` writes (to
``<workspace>/experiments/reports/<name>.json``) into a page an operator reads to decide: the
verdict first, then the checks that could void it (SRM, guardrails), the metrics table, the
plots (``experiment.plots``), the segments (with effects that help some shoppers and hurt
others called out) and the experiment's definition. The page is inline CSS and inline SVG
only: no script, no external asset, so it can be mailed or archived as is. Every text from the
analysis (names, descriptions, reasons are user input) is escaped by the template engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from moodboard.experiment.plots import all_plots
from moodboard.ingest.eventlog import atomic_write_bytes

#: What each decision is called on the page, and its box's colour class.
DECISIONS = {
    "ship": ("Ship", "good"),
    "no_ship": ("Do not ship", "bad"),
    "inconclusive": ("Inconclusive", "neutral"),
    "blocked_srm": ("Blocked: sample ratio mismatch", "bad"),
    "stopped_guardrail": ("Stopped: a guardrail was crossed", "bad"),
    "no_data": ("No data yet", "neutral"),
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
margin:0 auto;max-width:1100px;padding:16px 24px;background:#fff}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#e3e6ea;padding-bottom:4px}.muted{color:#6b7280}.tag{display:inline-block;padding:1px 8px;
border-radius:10px;background:#eef1f5;font-size:12px;margin-right:4px}
.verdict{border:2px solid;border-radius:8px;padding:12px 16px;margin:16px 0}
.verdict .decision{font-size:20px;font-weight:700}.good{border-color:#1e8449;background:#eafaf1}
.bad{border-color:#c0392b;background:#fdedec}.neutral{border-color:#7f8c8d;background:#f4f6f7}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 6px;text-align:right;vertical-align:top}
th{background:#f7f8fa;font-weight:600}td.l,th.l{text-align:left}tr.sig td{font-weight:600}
tr.crossed td,.fail{color:#c0392b}.pass{color:#1e8449}.plot svg{max-width:100%;height:auto}
.flag{color:#b9770e;font-weight:600}code{font-size:12px;background:#f4f6f7;padding:0 3px}
"""

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Experiment {{ x.name }}: {{ label }}</title><style>{{ css }}</style></head>
<body><main id="report" data-experiment="{{ x.name }}" data-decision="{{ decision }}">
<h1>Experiment {{ x.name }}</h1>
<p><span class="tag">status: {{ x.status }}</span><span class="tag">layer: {{ x.layer }}</span>
<span class="tag">{{ x.start or "no start" }} &rarr; {{ x.stop or "open" }}</span>
<span class="muted">results as of {{ as_of }}</span></p>
{% if x.description %}<p class="description">{{ x.description }}</p>{% endif %}
{% if x.stopped_reason %}<p>Stopped: {{ x.stopped_reason }}</p>{% endif %}
<section class="verdict {{ tone }}" id="verdict"><div class="decision">{{ label }}</div>
<div>{{ why }}</div></section>
{% if il %}<h2>Interleaving</h2><table id="interleaving"><tr><th class="l">arms (A, B)</th>
<th>shoppers</th><th>pages</th><th>clicks A / B</th><th>prefer A / B / tie</th>
<th>sign test p</th><th>mean preference for A</th><th>95% CI</th><th class="l">winner</th></tr>
<tr><td class="l">{{ il.arms[0] }}, {{ il.arms[1] }}</td><td>{{ il.users }}</td>
<td>{{ il.pages }}</td><td>{{ il.clicks[0] }} / {{ il.clicks[1] }}</td>
<td>{{ il.wins_a }} / {{ il.wins_b }} / {{ il.ties }}</td><td>{{ fmt_p(il.p_value) }}</td>
<td>{{ fmt(il.delta) }}</td><td>{{ ci(il.ci) }}</td><td class="l">{{ il.winner or "none" }}</td>
</tr></table>{% endif %}
<h2>Sample ratio check</h2>
{% if srm.passed is sameas false %}<p class="fail" id="srm"><b>SRM check failed
(p = {{ fmt_p(srm.p_value) }}): blocking.</b> The arms' exposures do not match the planned
split, so assignment or logging is broken and no metric below can be trusted.</p>
{% elif srm.passed %}<p class="pass" id="srm">SRM check passed (p = {{ fmt_p(srm.p_value) }}):
the exposures match the planned split.</p>
{% else %}<p class="muted" id="srm">SRM check not run.</p>{% endif %}
<h2>Arms</h2><table id="arms"><tr><th class="l">arm</th><th>weight</th><th>exposed</th>
<th class="l">overrides</th></tr>
{% for arm in x.arms %}<tr><td class="l">{{ arm.name }}{% if arm.name == control %}
<span class="tag">control</span>{% endif %}</td><td>{{ fmt(arm.weight) }}</td>
<td>{{ fmt(exposures.get(arm.name)) }}</td><td class="l">{% for k, v in arm.overrides.items() %}
<code>{{ k }} = {{ dumps(v) }}</code><br>{% else %}<span class="muted">none</span>{% endfor %}
</td></tr>{% endfor %}</table>
<h2>Metrics</h2><table id="metrics"><tr><th class="l">metric</th><th class="l">role</th>
<th class="l">arm</th><th>control</th><th>arm</th><th>effect</th><th>lift</th><th>CI</th>
<th>p</th><th>adj. p</th><th>sequential CI</th><th>CUPED effect</th><th>var. reduction</th>
<th>chance to win</th><th>expected loss</th></tr>
{% for m in metrics %}<tr class="{{ 'sig' if m.significant else '' }}"
data-metric="{{ m.metric }}"><td class="l">{{ m.metric }}{% if m.significant %} *{% endif %}
</td><td class="l">{{ m.role }}</td><td class="l">{{ m.arm }}</td><td>{{ fmt(m.control_mean) }}</td>
<td>{{ fmt(m.arm_mean) }}</td><td>{{ fmt(m.effect) }}</td><td>{{ pct(m.lift) }}</td>
<td>{{ ci(m.ci) }}</td><td>{{ fmt_p(m.p_value) }}</td><td>{{ fmt_p(m.p_adjusted) }}</td>
<td>{{ ci(m.sequential_ci) }}</td><td>{{ fmt(m.cuped.effect) if m.cuped else "–" }}</td>
<td>{{ pct(m.cuped.variance_reduction, False) if m.cuped else "–" }}</td>
<td>{{ pct(m.bayes.chance_to_win, False) if m.bayes else "–" }}</td>
<td>{{ fmt(m.bayes.expected_loss) if m.bayes else "–" }}</td></tr>
{% else %}<tr><td class="l" colspan="15">No metrics yet.</td></tr>{% endfor %}</table>
<p class="muted">* adjusted p below alpha = {{ alpha }}. The sequential interval stays valid
however often the results are looked at.</p>
<h2>Effects</h2><div class="plot" id="plot-forest">{{ plots.forest }}</div>
<h2>Over time</h2><div class="plot" id="plot-cumulative">{{ plots.cumulative }}</div>
<h2>Exposures</h2><div class="plot" id="plot-exposures">{{ plots.exposures }}</div>
<h2>Guardrails</h2><table id="guardrails"><tr><th class="l">metric</th><th class="l">arm</th>
<th class="l">bad direction</th><th>sequential CI</th><th class="l">status</th></tr>
{% for g in guardrails %}<tr class="{{ 'crossed' if g.crossed else '' }}"><td class="l">
{{ g.metric }}</td><td class="l">{{ g.arm }}</td><td class="l">{{ g.direction }}</td>
<td>{{ ci(g.sequential_ci) }}</td><td class="l">{{ g.status }}</td></tr>
{% else %}<tr><td class="l" colspan="5">No guardrails.</td></tr>{% endfor %}</table>
<h2>Segments</h2>
{% for f in flags %}<p class="flag">{{ f }}</p>{% endfor %}
<table id="segments"><tr><th class="l">segment</th><th class="l">metric</th><th class="l">arm</th>
<th>users</th><th>effect</th><th>CI</th><th>p</th><th>adj. p</th></tr>
{% for s in segments %}<tr><td class="l">{{ s.segment }}</td><td class="l">{{ s.metric }}</td>
<td class="l">{{ s.arm }}</td><td>{{ fmt(s.users) }}</td><td>{{ fmt(s.effect) }}</td>
<td>{{ ci(s.ci) }}</td><td>{{ fmt_p(s.p_value) }}</td><td>{{ fmt_p(s.p_adjusted) }}</td></tr>
{% else %}<tr><td class="l" colspan="8">No segments.</td></tr>{% endfor %}</table>
<p class="muted">Report of experiment {{ x.name }} as of {{ as_of }}, made by moodboard.</p>
</main></body></html>
"""

_ENV = Environment(autoescape=True, trim_blocks=True)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x: Any) -> str:
    """A number for a table cell: counts with thousands separators, others to 3 digits."""
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if _finite(x):
        return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return "–" if x is None else str(x)


def fmt_p(p: Any) -> str:
    """A p-value (``<0.001`` below that)."""
    if not _finite(p):
        return "–"
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def pct(x: Any, signed: bool = True) -> str:
    """A share as a percentage (``+8.3%``)."""
    if not _finite(x):
        return "–"
    return f"{x * 100:+.1f}%" if signed else f"{x * 100:.1f}%"


def ci(value: Any) -> str:
    """An interval as ``[lo, hi]``."""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return f"[{fmt(value[0])}, {fmt(value[1])}]"
    return "–"


def _dicts(rows: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in rows or [] if isinstance(r, Mapping)]


def opposite_effects(segments: Sequence[Mapping[str, Any]], alpha: float) -> list[str]:
    """Metric x arm pairs that significantly help some segments and hurt others.

    Parameters
    ----------
    segments
        The analysis' segment rows.
    alpha
        The significance level the adjusted p-values are compared with.

    Returns
    -------
    list of str
        One sentence per pair, e.g. ``"clicks_per_user (arm saves): helps new, hurts
        returning"``.
    """
    by: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for s in segments:
        p, effect = s.get("p_adjusted"), s.get("effect")
        if not (_finite(p) and _finite(effect)) or p >= alpha or effect == 0:
            continue
        helps, hurts = by.setdefault((str(s.get("metric")), str(s.get("arm"))), ([], []))
        (helps if effect > 0 else hurts).append(str(s.get("segment")))
    return [
        f"{metric} (arm {arm}): helps {', '.join(helps)}, hurts {', '.join(hurts)}"
        for (metric, arm), (helps, hurts) in by.items()
        if helps and hurts
    ]


def _guardrail_status(g: Mapping[str, Any]) -> str:
    if not g.get("crossed"):
        return "within bounds"
    bad = "increase" if "increase" in str(g.get("direction", "")) else "decrease"
    return (
        f"CROSSED: its sequential interval {ci(g.get('sequential_ci'))} shows a significant "
        f"{bad}, the bad direction for this metric"
    )


def render_report(analysis: Mapping[str, Any]) -> str:
    """The experiment's report as one self-contained HTML page.

    Parameters
    ----------
    analysis
        The analysis dict ``experiment.analysis`` computes (experiment, exposures, srm,
        metrics, daily, segments, guardrails, verdict, as_of, alpha).

    Returns
    -------
    str
        The HTML page (inline CSS and SVG; no script, no external asset).

    Raises
    ------
    ValueError
        If ``analysis`` has no ``experiment`` with a ``name``.
    """
    x = analysis.get("experiment")
    if not isinstance(x, Mapping) or not x.get("name"):
        raise ValueError("The analysis must hold its 'experiment' with a 'name'.")
    x = {
        "status": "",
        "layer": "",
        "start": None,
        "stop": None,
        "description": "",
        "stopped_reason": None,
        **x,
        "arms": _dicts(x.get("arms")),
    }
    for arm in x["arms"]:
        arm.setdefault("weight", None)
        arm["overrides"] = dict(arm.get("overrides") or {})
    verdict = analysis.get("verdict") or {}
    decision = str(verdict.get("decision") or "no_data")
    label, tone = DECISIONS.get(decision, (decision, "neutral"))
    alpha = analysis.get("alpha", 0.05)
    alpha = alpha if _finite(alpha) else 0.05
    metrics = _dicts(analysis.get("metrics"))
    for m in metrics:
        for key in (
            "metric",
            "role",
            "arm",
            "control_mean",
            "arm_mean",
            "effect",
            "lift",
            "ci",
            "p_value",
            "p_adjusted",
            "significant",
            "sequential_ci",
            "cuped",
            "bayes",
        ):
            m.setdefault(key, None)
    guardrails = _dicts(analysis.get("guardrails"))
    for g in guardrails:
        g.update({k: g.get(k) for k in ("metric", "arm", "direction", "sequential_ci")})
        g["crossed"], g["status"] = bool(g.get("crossed")), _guardrail_status(g)
    segments = _dicts(analysis.get("segments"))
    for s in segments:
        for key in ("segment", "metric", "arm", "users", "effect", "ci", "p_value", "p_adjusted"):
            s.setdefault(key, None)
    plots = {k: Markup(v) for k, v in all_plots(analysis).items()}  # our own SVG: not escaped
    return _ENV.from_string(_TEMPLATE).render(
        x=x,
        as_of=analysis.get("as_of") or "unknown",
        control=analysis.get("control") or x.get("control"),
        decision=decision,
        label=label,
        tone=tone,
        why=verdict.get("why") or "",
        srm=dict(analysis.get("srm") or {}),
        il=analysis.get("interleaving"),
        exposures=dict(analysis.get("exposures") or {}),
        metrics=metrics,
        guardrails=guardrails,
        segments=segments,
        flags=opposite_effects(segments, alpha),
        alpha=alpha,
        plots=plots,
        css=Markup(_CSS),
        fmt=fmt,
        fmt_p=fmt_p,
        pct=pct,
        ci=ci,
        dumps=lambda v: json.dumps(v, sort_keys=True, default=str),
    )


def write_report(analysis: Mapping[str, Any], path: Path | str) -> Path:
    """Render the report and write it to ``path`` atomically.

    Parameters
    ----------
    analysis
        The analysis dict.
    path
        Where the HTML goes (its folder is made if missing).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        If ``analysis`` has no ``experiment`` with a ``name``.
    OSError
        If the file cannot be written.
    """
    path = Path(path)
    html = render_report(analysis)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, html.encode())
    return path
