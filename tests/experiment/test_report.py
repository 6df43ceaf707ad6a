"""The experiment report: one self-contained, escaped HTML page of an analysis, with its plots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis_sample import METRICS, sample_analysis
from moodboard.experiment.plots import all_plots, cumulative_svg, exposures_svg, forest_svg
from moodboard.experiment.report import opposite_effects, render_report, write_report

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(sample_analysis(description=HOSTILE))


def test_report_shows_the_verdict_every_metric_and_three_plots(page: str) -> None:
    assert 'data-decision="ship"' in page
    assert 'id="verdict"' in page and "Ship" in page
    assert "saves_per_user rose 24%" in page
    for metric in METRICS:
        assert f'data-metric="{metric}"' in page
    assert page.count("<svg") == 3
    assert "+23.8%" in page  # lift of saves_per_user
    assert "SRM check passed" in page
    assert "as of 2026-01-08T00:00:00+00:00" in page


def test_report_escapes_user_text(page: str) -> None:
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()


def test_report_references_no_external_asset(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    # only references inside the page (``#id``: the plots' clip paths and markers)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)|url\((?!#)|@import""", page)
    assert "href=" in page  # the check above does look at something


def test_report_flags_segments_helped_and_hurt_and_crossed_guardrails(page: str) -> None:
    assert "clicks_per_user (arm saves): helps new, hurts returning" in page
    crossed = re.search(r'<tr class="crossed">.*?</tr>', page, re.S)
    assert crossed is not None and "bounce_rate" in crossed.group(0)
    assert "CROSSED" in crossed.group(0)


def test_failed_srm_is_shown_as_blocking() -> None:
    page = render_report(sample_analysis(decision="blocked_srm", srm_passed=False))
    assert 'data-decision="blocked_srm"' in page
    assert "SRM check failed" in page and "blocking" in page
    assert "SRM check FAILED" in exposures_svg(sample_analysis(srm_passed=False))


def test_plots_are_small_inline_svg_and_survive_an_empty_analysis() -> None:
    plots = all_plots(sample_analysis())
    for svg in plots.values():
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "<?xml" not in svg and "<metadata" not in svg
        assert len(svg) < 60_000
    empty = {"experiment": {"name": "x"}}
    for draw in (forest_svg, cumulative_svg, exposures_svg):
        assert draw(empty).startswith("<svg")
    assert 'data-decision="no_data"' in render_report(empty)


def test_opposite_effects_needs_significance_on_both_sides() -> None:
    rows = [
        {"segment": "new", "metric": "m", "arm": "b", "effect": 0.2, "p_adjusted": 0.01},
        {"segment": "returning", "metric": "m", "arm": "b", "effect": -0.1, "p_adjusted": 0.2},
    ]
    assert opposite_effects(rows, 0.05) == []
    rows[1]["p_adjusted"] = 0.04
    assert opposite_effects(rows, 0.05) == ["m (arm b): helps new, hurts returning"]


def test_write_report_writes_the_page(tmp_path: Path) -> None:
    path = write_report(sample_analysis(), tmp_path / "reports" / "feed-saves.html")
    assert path.read_text().startswith("<!doctype html>")
    with pytest.raises(ValueError, match="experiment"):
        render_report({"verdict": {"decision": "ship"}})
