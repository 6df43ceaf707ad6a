"""``evaluate recs --dataset online-retail --served``: the figure is the served feed's.

On a slice of a few hundred customers, the evaluation builds a workspace from their purchases
before the cutoff, serves it, and scores the pages ``GET /feed`` returned: the server logged
every page as impressions, and the recalls recomputed from those logged pages are the ones
reported. EASE is fitted in the same run on the same purchases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.evaluate.rec_protocol import RETAIL_CUTOFF
from moodboard.evaluate.served import ServedSplit, served_split
from moodboard.evaluate.served_metrics import recall_at
from moodboard.ingest import Workspace, all_events

CUSTOMERS = 250
#: The mini engine's fast recommenders, shorter still (this checks the mechanism), as the
#: ``MOODBOARD_*`` variables a user would set.
FAST = {
    "SURFACES__FEED__TWO_TOWER__EPOCHS": "2",
    "SURFACES__FEED__TWO_TOWER__DIM": "32",
    "SURFACES__FEED__TWO_TOWER__HIDDEN": "64",
    "SURFACES__FEED__SEQUENCE__EPOCHS": "2",
    "SURFACES__FEED__SEQUENCE__EVAL_EVERY": "2",
    "SURFACES__FEED__SEQUENCE__DIM": "32",
    "SURFACES__FEED__SEQUENCE__N_LAYERS": "1",
    "SURFACES__FEED__INTERESTS__DIM": "32",
    "SURFACES__FEED__REFIT": "[]",
}


@pytest.fixture(scope="module")
def run(
    datasets_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ServedSplit, dict[str, Any], Path]:
    """``moodboard evaluate recs --dataset online-retail --served`` on a slice, and its split."""
    root = tmp_path_factory.mktemp("served") / "ws"
    args = ["evaluate", "recs", "--dataset", "online-retail", "--served", "--json"]
    args += ["--max-users", str(CUSTOMERS), "--work-dir", str(root)]
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAST.items():
            mp.setenv(f"MOODBOARD_{name}", value)
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return served_split(datasets_root, max_users=CUSTOMERS, seed=0), json.loads(res.stdout), root


def test_the_split_keeps_the_purchases_before_the_cutoff(run: tuple) -> None:
    split, _, _ = run
    ts = split.events.column("ts")
    assert pc.all(pc.less(ts, RETAIL_CUTOFF)).as_py()
    assert 0 < len(split.users) < CUSTOMERS
    for h, bought, new in zip(split.histories, split.bought, split.new, strict=True):
        assert len(h) and len(bought)
        assert set(new) == set(bought) - set(h)


def test_the_reported_recall_is_the_one_of_the_pages_the_server_logged(run: tuple) -> None:
    split, report, root = run
    logged = all_events(Workspace(root)).to_pandas()
    logged = logged[(logged["type"] == "impression") & (logged["surface"] == "feed")]
    assert set(logged["user_id"]) == set(split.users)
    # two pages each, in this order: the feed as configured, then with engaged items allowed
    requests = logged.drop_duplicates("request_id").sort_values("ts").groupby("user_id")
    assert requests["request_id"].count().eq(2).all()
    index = {x: n for n, x in enumerate(split.item_ids)}
    has_new = [n for n, t in enumerate(split.new) if len(t)]
    for nth, name in enumerate(("served", "served_repeats")):
        chosen = set(requests.nth(nth)["request_id"])
        pages = {
            u: np.array([index[i] for i in g.sort_values("position")["item_id"]])
            for u, g in logged[logged["request_id"].isin(chosen)].groupby("user_id")
        }
        lists = [pages[u] for u in split.users]
        assert all(len(p) == report["k"] == 20 for p in lists)
        served = report[name]
        assert served["personalized"] == 1.0  # every page came from the recommenders
        assert served["users"] == len(split.users) and served["users_new"] == len(has_new)
        every = recall_at(lists, split.bought, 20).mean()
        new = recall_at([lists[n] for n in has_new], [split.new[n] for n in has_new], 20).mean()
        assert (served["recall@20"], served["recall@20_new"]) == pytest.approx(
            (every, new), abs=1e-4
        )
    # the configured feed leaves out what each customer bought; the other shows some again
    assert report["served_repeats"]["recall@20"] > report["served"]["recall@20"]


def test_ease_is_measured_beside_it_and_both_find_new_purchases(run: tuple) -> None:
    _, report, _ = run
    served, ease = report["served"], report["ease"]
    assert ease["l2"] == 500.0 and set(report["ease_grid"]) == {"50", "200", "500", "800"}
    assert ease["users"] == served["users"] and ease["users_new"] == served["users_new"]
    for m in ("recall@20", "recall@20_new"):  # paired per customer: the same customers
        diff = served["vs_ease"][m]
        assert diff["estimate"] == pytest.approx(served[m] - ease[m], abs=2e-4)
        assert diff["ci"][0] <= diff["estimate"] <= diff["ci"][1]
    # floors a little under what this slice measures (88 customers, 81 with new items: new
    # items served 0.0555, EASE 0.0541; all items, bought ones allowed: 0.1704, EASE 0.2114)
    assert served["recall@20_new"] >= 0.04
    assert report["served_repeats"]["recall@20"] >= 0.13
    assert ease["recall@20_new"] >= 0.04 and ease["recall@20"] >= 0.16
    assert report["build"]["histories"] >= len(run[0].users)  # no customer taken for a bot
    assert set(report["timings_s"]) == {"ingest_and_build", "serve", "ease"}


def test_cli_served_refuses_another_dataset() -> None:
    res = CliRunner().invoke(app, ["evaluate", "recs", "--dataset", "amazon-beauty", "--served"])
    assert res.exit_code == 2
    assert "online-retail" in res.output
