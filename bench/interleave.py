"""Interleaving against A/B: the shoppers each needs to tell two feed rankers apart.

The workspace's simulated shoppers shop one surface only (``--surface``, default the feed:
``simulate.surface_mix = {feed = 1}``) for ``--days`` days, once on the team-draft interleaved
pages of the two arms and once as an A/B test of the same arms
(``moodboard.simulate.interleave.measure_interleaving``); the table gives both verdicts (the
interleaving one with per-page credit, the default, and with per-click credit) and the users
each would need at alpha 0.05 and power 0.8 (A/B: both arms of a 50/50 split together, on
clicks per shopper). The workspace is only read (the A/B arms run in copies in a temporary
folder).

Without ``--workspace`` the mini engine of the tests (``tests/mini.py``: 1,550 products of the
fashion catalog, 300 shoppers, one build) is built in a temporary folder first (about a
minute; needs ``MOODBOARD_DATASETS``) and run with the settings it was built with; a given
workspace runs with the configured settings (``load_settings``), as ``make demo`` builds it.

Usage: ``python bench/interleave.py [--workspace DIR] [--users 300] [--days 3]
[--sessions-per-day 0.6] [--activity-shape 0] [--surface feed]
[--arm fused=surfaces.feed.ranker=rank/noop --arm shuffled=surfaces.feed.ranker=rank/shuffle]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _common import report

from mini import build_mini, mini_settings
from moodboard.config import load_settings
from moodboard.experiment.interleave import ab_users_needed, interleaving_users_needed
from moodboard.ingest import Workspace
from moodboard.simulate.arms import parse_arm
from moodboard.simulate.interleave import InterleavingRun, measure_interleaving

ARMS = ["fused=surfaces.feed.ranker=rank/noop", "shuffled=surfaces.feed.ranker=rank/shuffle"]


def ratio_interval(run: InterleavingRun, draws: int = 2000) -> tuple[float, float]:
    """The bootstrap 95% interval of the ratio of users needed (A/B over interleaving with the
    run's credit): the shoppers of the interleaving run and of each A/B arm resampled
    independently, ``draws`` times, seed 0."""
    rng = np.random.default_rng(0)
    prefs, a, b = run.preferences, run.ab_a, run.ab_b
    ratios = np.empty(draws)
    for i in range(draws):
        p = prefs[rng.integers(len(prefs), size=len(prefs))]
        x, y = a[rng.integers(len(a), size=len(a))], b[rng.integers(len(b), size=len(b))]
        ratios[i] = ab_users_needed(x, y) / interleaving_users_needed(p)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path, help="a built workspace (default: the mini engine)")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--sessions-per-day", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--activity-shape",
        type=float,
        default=0.0,
        help="simulate.activity_shape: 0, shoppers alike; 0.82, as Online Retail's customers",
    )
    p.add_argument("--surface", default="feed", help="the one surface the shoppers visit")
    p.add_argument("--arm", action="append", help="NAME=OVERRIDES, twice (A then B)")
    args = p.parse_args()
    arms = [parse_arm(a) for a in (args.arm or ARMS)]
    if len(arms) != 2:
        p.error("give --arm twice (A then B), or none for the default pair")
    with tempfile.TemporaryDirectory(prefix="moodboard-interleave-") as tmp:
        ws = Workspace(args.workspace) if args.workspace else build_mini(Path(tmp) / "mini")
        s = load_settings() if args.workspace else mini_settings()
        update = {"users": args.users, "days": args.days, "seed": args.seed}
        update |= {"sessions_per_day": args.sessions_per_day, "surface_mix": {args.surface: 1.0}}
        update["activity_shape"] = args.activity_shape
        s.simulate = s.simulate.model_copy(update=update)
        t0 = time.perf_counter()
        run = measure_interleaving(ws, s, *arms)
        seconds = time.perf_counter() - t0
    low, high = ratio_interval(run)
    v, out = run.verdict, run.as_dict()
    other = out["interleaving_click"]
    row = {
        "A": arms[0].name,
        "B": arms[1].name,
        "users": run.users,
        "days": run.days,
        "activity_shape": args.activity_shape,
        "il_wins_a/b/ties": f"{v.wins_a}/{v.wins_b}/{v.ties}",
        "il_p": f"{v.p_value:.2g}",
        "il_delta": f"{v.delta:+.3f} [{v.ci[0]:+.3f}, {v.ci[1]:+.3f}]",
        "ab_clicks_a/b": f"{run.ab_a.mean():.3f}/{run.ab_b.mean():.3f}",
        "ab_ci": f"[{run.ab_ci[0]:+.3f}, {run.ab_ci[1]:+.3f}]",
        "ab_p": f"{run.ab_p:.2g}",
        "users_ab": round(run.users_ab),
        "users_il": round(run.users_interleaving),
        "ratio": f"{run.ratio:.2f} [{low:.1f}, {high:.1f}]",
        "agree": run.agree,
        "il_click_p": f"{other['p_value']:.2g}",
        "users_il_click": round(other["users_needed"]),
        "ratio_click": f"{other['ratio']:.2f}",
        "agree_click": other["agree"],
        "seconds": round(seconds, 1),
    }
    out["ratio_ci"] = [low, high]
    report("interleave", [row | {"result": out}], [c for c in row if c != "result"])


if __name__ == "__main__":
    main()
