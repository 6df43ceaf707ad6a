"""A hand-made experiment log with a known truth: shoppers hashed into two arms, exposed on the
feed over five days, with a planted effect on clicks and on hides, and a pre-period that
predicts their clicks (what CUPED uses). Shared by the analysis tests and the engines test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.experiment.assign import arm_of
from moodboard.experiment.spec import ExperimentSpec
from moodboard.experiment.store import ExperimentStore
from moodboard.ingest import EVENT_SCHEMA, Workspace, ingest_catalog

START = datetime(2026, 1, 10, tzinfo=UTC)
DAYS = 5
END = START + timedelta(days=DAYS + 2)
EXP = "exp"
CATEGORIES = ("Shoes", "Bags", "Tops")


@dataclass
class Truth:
    """Per shopper, in user-id order: their arm, exposure day, clicks and hides after exposure,
    impressions on the feed, and clicks in the pre-period."""

    users: list[str]
    arms: np.ndarray
    day: np.ndarray
    clicks: np.ndarray
    hides: np.ndarray
    impressions: np.ndarray
    pre_clicks: np.ndarray


def spec(**kw) -> ExperimentSpec:
    arms = [
        {"name": "control", "weight": 0.5},
        {"name": "treat", "weight": 0.5, "overrides": {"surfaces.feed.explore_share": 0.5}},
    ]
    data = {"name": EXP, "arms": arms, "start": START, "buckets": (0, 10_000), "layer": "feed"}
    return ExperimentSpec.model_validate(data | kw)


def experiment_workspace(
    root: Path,
    users: int = 600,
    seed: int = 0,
    click_lift: float = 0.4,
    hide_lift: float = 0.6,
    drop_treated: float = 0.0,
) -> tuple[Workspace, Truth]:
    """A workspace with 30 products, the experiment saved, and its log (``drop_treated``: the
    share of treated shoppers whose exposures are lost, a planted SRM)."""
    ws = Workspace(root)
    n_items = 30
    products = pa.table({
        C.ID: [f"p{i}" for i in range(n_items)],
        C.TITLE: [f"product {i}" for i in range(n_items)],
        C.PRICE: [10.0 + i for i in range(n_items)],
        C.CATEGORY: [CATEGORIES[i % 3] for i in range(n_items)],
    })  # fmt: skip
    assert ingest_catalog(ws, [products]).quarantined == 0
    s = spec()
    ExperimentStore(ws.root).save(s)
    rng = np.random.default_rng(seed)
    ids = [f"user-{u:04d}" for u in range(users)]
    arms = np.array([arm_of(s, u, 10_000) for u in ids])
    keep = ~((arms == "treat") & (rng.random(users) < drop_treated))
    ids = [u for u, k in zip(ids, keep, strict=True) if k]
    arms, n = arms[keep], int(keep.sum())
    activity = rng.gamma(2.0, 1.0, n)
    day = np.arange(n) % DAYS
    treated = arms == "treat"
    pre = rng.poisson(activity * 2)
    clicks = rng.poisson(activity * 2 + click_lift * treated)
    hides = rng.poisson(0.2 + hide_lift * treated)
    imps = np.full(n, 10)
    rows: list[dict] = []
    for j, u in enumerate(ids):
        seen = START + timedelta(days=int(day[j]), hours=1)
        before = START - timedelta(days=3, hours=-j % 20)
        req = f"r-{u}"
        arm_json = json.dumps({EXP: str(arms[j])})
        device = "phone" if j % 2 else "desktop"
        props = json.dumps({"latency_ms": 20.0 + 5 * treated[j], "device": device})
        for pos in range(imps[j]):
            rows.append({C.TYPE: "impression", C.TS: seen + timedelta(seconds=pos), C.USER_ID: u,
                         C.ITEM_ID: f"p{pos}", C.SURFACE: "feed", C.POSITION: pos + 1,
                         C.REQUEST_ID: req, C.ARMS: arm_json, C.PROPS: props})  # fmt: skip
        for c in range(pre[j]):
            rows.append({C.TYPE: "click", C.TS: before + timedelta(minutes=c), C.USER_ID: u,
                         C.ITEM_ID: f"p{(j + c) % n_items}", C.SURFACE: "search"})  # fmt: skip
        for c in range(clicks[j]):
            t = seen + timedelta(minutes=5 + c)
            rows.append({C.TYPE: "click", C.TS: t, C.USER_ID: u, C.ITEM_ID: f"p{c % 10}",
                         C.SURFACE: "feed", C.REQUEST_ID: req})  # fmt: skip
        for c in range(hides[j]):
            rows.append({C.TYPE: "hide", C.TS: seen + timedelta(minutes=3, seconds=c),
                         C.USER_ID: u, C.ITEM_ID: f"p{c % 10}", C.SURFACE: "feed"})  # fmt: skip
    write_log(ws, rows)
    return ws, Truth(ids, arms, day, clicks, hides, imps, pre)


def write_log(ws: Workspace, rows: list[dict]) -> None:
    """Append hand-made event rows (UTC ``ts``; ids ``e0, e1, ...``) to the workspace's log."""
    cols = {f.name: [r.get(f.name) for r in rows] for f in EVENT_SCHEMA}
    cols[C.EVENT_ID] = [f"e{i}" for i in range(len(rows))]
    cols[C.TS] = [r[C.TS].replace(tzinfo=None) for r in rows]
    ws.events.root.mkdir(parents=True, exist_ok=True)
    ws.events.append(pa.table(cols, schema=EVENT_SCHEMA))
