"""A hand-made search log with a known truth, shared by the search analytics tests: three
queries with planted volumes, one that never finds anything, one nobody clicks, clicks that
fall with the position, searches started from an autocomplete pick or a chip, and quick
reformulations, and a page logged by the server without a search event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from experiment_log import write_log
from moodboard.data import columns as C
from moodboard.ingest import Workspace, ingest_catalog

START = datetime(2026, 3, 2, tzinfo=UTC)
#: query -> (searches in the first week, in the second week); "zzz" finds nothing and
#: "blue dress" is shown but never clicked.
VOLUMES = {"red shoes": (10, 30), "Blue  Dress": (6, 6), "zzz": (1, 3)}
#: Clicks per position (1..5) over the "red shoes" searches: decreasing.
CLICKS_AT = (20, 12, 6, 3, 1)
#: Searches picked from autocomplete and from a chip (the rest carry no ``via``).
VIA = {"autocomplete": 8, "chip": 4}
PAGE = 5


def search_workspace(root: Path) -> Workspace:
    """A workspace with 10 products and the search log above."""
    ws = Workspace(root)
    products = pa.table(
        {C.ID: [f"p{i}" for i in range(10)], C.TITLE: [f"p {i}" for i in range(10)]}
    )
    assert ingest_catalog(ws, [products]).quarantined == 0
    rows: list[dict] = []
    n = 0
    clicks = list(CLICKS_AT)
    vias = [v for v, k in VIA.items() for _ in range(k)]
    for query, (early, late) in VOLUMES.items():
        for j in range(early + late):
            week = 0 if j < early else 1
            t = START + timedelta(days=7 * week + j % 7, hours=j % 5, minutes=10 * n)
            user, req = f"u{n % 17}", f"r{n}"
            props = json.dumps({"via": vias.pop()}) if vias and query == "red shoes" else None
            rows.append({C.TYPE: "search", C.TS: t, C.USER_ID: user, C.QUERY: query,
                         C.REQUEST_ID: req, C.SURFACE: "search", C.PROPS: props})  # fmt: skip
            n += 1
            if query == "zzz":
                continue  # an empty page logs no impression
            for pos in range(1, PAGE + 1):
                rows.append({C.TYPE: "impression", C.TS: t + timedelta(seconds=1),
                             C.USER_ID: user, C.ITEM_ID: f"p{pos}", C.QUERY: query,
                             C.SURFACE: "search", C.POSITION: pos, C.REQUEST_ID: req})  # fmt: skip
                if query == "red shoes" and clicks[pos - 1] > 0:
                    clicks[pos - 1] -= 1
                    rows.append({C.TYPE: "click", C.TS: t + timedelta(seconds=9 + pos),
                                 C.USER_ID: user, C.ITEM_ID: f"p{pos}", C.SURFACE: "search",
                                 C.POSITION: pos, C.REQUEST_ID: req})  # fmt: skip
    # a reformulation: the same shopper searches again 20 s later
    t = START + timedelta(days=13, hours=20)
    for k, q in enumerate(("zzz", "zzz")):
        rows.append({C.TYPE: "search", C.TS: t + timedelta(seconds=20 * k), C.USER_ID: "ur",
                     C.QUERY: q, C.REQUEST_ID: f"rr{k}", C.SURFACE: "search"})  # fmt: skip
    # a page the server logged without a search event (the web app's log): one more search
    t = START + timedelta(days=12, hours=18)
    for pos in range(1, PAGE + 1):
        rows.append({C.TYPE: "impression", C.TS: t, C.USER_ID: "web", C.ITEM_ID: f"p{pos}",
                     C.QUERY: "Green Bag", C.SURFACE: "search", C.POSITION: pos,
                     C.REQUEST_ID: "web-1"})  # fmt: skip
    write_log(ws, rows)
    return ws
