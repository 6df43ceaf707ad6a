"""How well each score of a served page orders a shopper's candidates by their true tastes.

For the workspace's first ``--shoppers`` simulated shoppers (their tastes drawn with the
workspace's population seed, ``simulate.run.population_seed``), asks the engine (in-process,
with ``--overrides`` applied to the configured settings) for the first ``--k`` candidates of
``--surface`` at the simulated clock of a run on the workspace (noon of the day after its newest
event, so the history's ages are those a simulated page sees) and gives, per score column, the
median over shoppers of the within-page Spearman correlation between the score and the shopper's
true affinity (``simulate.world.World.affinity``, what the click model reads). Rows whose score
is missing (NaN: beyond a ranker's depth) are left out of that column's correlation.

Without ``--workspace`` it reads ``moodboard-workspace`` when ``make demo`` built it, else
builds the mini engine of the tests (``tests/mini.py``) in a temporary folder (about a minute;
needs ``MOODBOARD_DATASETS``). A ranker the workspace's build did not train is reported and
skipped.

Usage: ``python bench/page_affinity.py [--workspace WS] [--shoppers 200] [--k 100]
[--surface feed] [--overrides 'surfaces.feed.ranker=rank/multihead']``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _common import report

from mini import build_mini, mini_settings
from moodboard.config import Settings, load_settings
from moodboard.config.overrides import apply_overrides
from moodboard.data import Request
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.simulate import Simulator
from moodboard.simulate.arms import parse_arm
from moodboard.simulate.engine import first_day
from moodboard.understand.threads import in_own_thread

SCORES = ("retrieval", "p_click", "p_purchase", "utility")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path, help="a built workspace (default: see above)")
    p.add_argument("--shoppers", type=int, default=200)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--surface", default="feed", choices=("feed",))
    p.add_argument("--overrides", default="surfaces.feed.ranker=rank/multihead")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="moodboard-affinity-") as tmp:
        demo = Workspace("moodboard-workspace")
        if args.workspace:
            ws, settings = Workspace(args.workspace), load_settings()
        elif demo.exists() and demo.current_artifact():
            ws, settings = demo, load_settings()
        else:
            ws, settings = build_mini(Path(tmp) / "mini"), mini_settings()
        measure(ws, settings, args)


def measure(ws: Workspace, settings: Settings, args: argparse.Namespace) -> None:
    """The table of ``main`` for one workspace."""
    arm = parse_arm(f"arm={args.overrides}")
    applied = apply_overrides(settings, arm.overrides)
    ranker = getattr(applied.surfaces, args.surface).ranker
    manifest = json.loads((ws.version_path(ws.current_artifact()) / "manifest.json").read_text())
    if ranker != "rank/noop" and not manifest["components"].get(ranker, {}).get("path"):
        print(f"{ranker} was not trained in {ws.root}: nothing to measure")
        return
    engine = in_own_thread(Engine.load, ws, settings=applied)
    sim = Simulator.on(ws, settings.simulate)
    world = sim.world
    index = {str(x): i for i, x in enumerate(world.item_ids)}
    # the simulated clock of a run on the workspace: noon of the day after its newest event
    day = first_day(ws, settings.simulate.start)
    when = datetime.fromisoformat(settings.simulate.start).replace(tzinfo=UTC)
    when += timedelta(days=day, hours=12)
    rho: dict[str, list[float]] = {s: [] for s in SCORES}
    for n in range(args.shoppers):
        req = Request(surface=args.surface, user_id=sim.user_id(n), k=args.k, ts=when)
        cand = engine.surfaces[args.surface].run(req).candidates
        items = np.array([index[str(e)] for e in engine.catalog.ids.external(cand.items)])
        affinity = world.affinity(sim.shopper(n), items)
        for name in SCORES:
            if name not in cand.scores:
                continue
            v = np.asarray(cand.scores[name], dtype=np.float64)
            ok = np.isfinite(v)
            if ok.sum() > 5 and v[ok].std() > 0 and affinity[ok].std() > 0:
                rho[name].append(float(stats.spearmanr(v[ok], affinity[ok]).statistic))
    rows = [
        {
            "score": name,
            "shoppers": len(r),
            "median_spearman": float(np.median(r)) if r else float("nan"),
            "mean_spearman": float(np.mean(r)) if r else float("nan"),
        }
        for name, r in rho.items()
    ]
    shown = [r | {k: f"{r[k]:+.3f}" for k in ("median_spearman", "mean_spearman")} for r in rows]
    print_path = report(
        "page_affinity", shown, ["score", "shoppers", "median_spearman", "mean_spearman"]
    )
    print(f"written to {print_path}")
    print(f"overrides: {args.overrides}; workspace {ws.root}")


if __name__ == "__main__":
    main()
