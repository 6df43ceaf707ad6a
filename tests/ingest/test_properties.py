"""Property-based: random mixes of good and broken rows lose nothing and change nothing."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodboard.ingest import Workspace, ingest_catalog, ingest_events

ITEMS = [f"p{i}" for i in range(8)]
TYPES = ["impression", "click", "save", "add_to_cart", "purchase", "hide"]
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s != "")
stamp = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)


@st.composite
def good_event(draw: st.DrawFn) -> dict:
    typ = draw(st.sampled_from(TYPES))
    return {
        "ts": draw(stamp).isoformat(),
        "user_id": draw(text),
        "type": typ,
        "item_id": draw(st.sampled_from(ITEMS)),
        "query": draw(st.none() | text),
        "position": draw(st.none() | st.integers(1, 500)),
        "request_id": draw(text) if typ == "impression" else draw(st.none() | text),
    }


BREAKS = {
    "no_event_id": lambda r: {**r, "event_id": None},
    "bad_ts": lambda r: {**r, "ts": "not a time"},
    "no_user": lambda r: {**r, "user_id": ""},
    "unknown_type": lambda r: {**r, "type": "teleport"},
    "unknown_item": lambda r: {**r, "item_id": "zz-not-in-catalog"},
    "position_zero": lambda r: {**r, "position": 0},
    "no_item": lambda r: {**r, "item_id": None},
    "unparsable": None,
}


def _write(rows: list[dict | str], fmt: str, folder: Path) -> Path:
    cols = ["event_id", "ts", "user_id", "type", "item_id", "query", "position", "request_id"]
    path = folder / f"events.{fmt}"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for r in rows:
                fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        else:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows:
                if isinstance(r, str):
                    fh.write(r + "\n")
                else:
                    w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return path


def _catalog(ws: Workspace) -> None:
    ingest_catalog(ws, [pa.table({"id": ITEMS, "title": [f"Item {i}" for i in ITEMS]})])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    goods=st.lists(good_event(), min_size=0, max_size=25),
    breaks=st.lists(st.tuples(good_event(), st.sampled_from(sorted(BREAKS))), max_size=15),
    fmt=st.sampled_from(["jsonl", "csv"]),
    seed=st.randoms(use_true_random=False),
)
def test_events_every_row_stored_unchanged_or_quarantined_with_reason(goods, breaks, fmt, seed):
    rows: list[dict | str] = []
    good_by_id = {}
    for n, g in enumerate(goods):
        r = {"event_id": f"good-{n}", **g}
        good_by_id[r["event_id"]] = r
        rows.append(r)
    for n, (base, kind) in enumerate(breaks):
        marker = f"bad-{n}"
        if kind == "unparsable":
            rows.append(
                f"{marker},too,many,fields,,,,,,,,,,," if fmt == "csv" else f"{{{marker}: not json"
            )
        else:
            rows.append(BREAKS[kind]({"event_id": marker, **base}))
    seed.shuffle(rows)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws").init()
        _catalog(ws)
        report = ingest_events(ws, _write(rows, fmt, Path(tmp)))
        assert report.read == len(rows)
        assert report.read == report.stored + report.quarantined
        assert report.stored == len(goods)
        assert report.quarantined == len(breaks)
        if breaks:
            lines = [json.loads(x) for x in Path(report.quarantine_file).read_text().splitlines()]
            assert len(lines) == len(breaks)
            assert all(q["_reason"] for q in lines)
            found = {q.get("event_id") or q.get("_raw", "") for q in lines}
            for n in range(len(breaks)):
                assert any(f"bad-{n}" in (f or "") for f in found) or any(
                    q.get("event_id") is None for q in lines
                )
        stored = {}
        if goods:
            with duckdb.connect() as con:
                con.execute("SET TimeZone='UTC'")
                for r in (
                    con.execute(f"SELECT * FROM read_parquet('{ws.events.glob()}')")
                    .to_arrow_table()
                    .to_pylist()
                ):
                    stored[r["event_id"]] = r
        assert set(stored) == set(good_by_id)
        for eid, g in good_by_id.items():
            s = stored[eid]
            assert s["ts"] == datetime.fromisoformat(g["ts"])
            for c in ("user_id", "type", "item_id", "query", "request_id", "position"):
                assert s[c] == g[c], (c, s[c], g[c])


@st.composite
def good_product(draw: st.DrawFn) -> dict:
    return {
        "title": draw(text),
        "brand": draw(st.none() | text),
        "price": draw(st.none() | st.floats(0, 1e6, allow_nan=False).map(lambda x: round(x, 2))),
        "colour": draw(st.none() | text),
    }


@settings(max_examples=40, deadline=None)
@given(
    goods=st.lists(good_product(), max_size=20),
    bads=st.lists(
        st.sampled_from(["no_title", "neg_price", "text_price", "bad_date"]), max_size=10
    ),
)
def test_catalog_rows_stored_unchanged_or_quarantined(goods, bads):
    rows = [{"id": f"g{n}", **g} for n, g in enumerate(goods)]
    broken = {
        "no_title": {"title": None},
        "neg_price": {"price": -5},
        "text_price": {"price": "cheap"},
        "bad_date": {"created_at": "yesterday-ish"},
    }
    rows += [{"id": f"b{n}", "title": "x", **broken[k]} for n, k in enumerate(bads)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        ws = Workspace(Path(tmp) / "ws")
        report = ingest_catalog(ws, path)
        assert (report.read, report.stored, report.quarantined) == (
            len(rows),
            len(goods),
            len(bads),
        )
        got = {p.id: p for p in ws.products()}
        assert set(got) == {f"g{n}" for n in range(len(goods))}
        for n, g in enumerate(goods):
            p = got[f"g{n}"]
            assert (p.title, p.brand, p.price) == (g["title"], g["brand"], g["price"])
            assert p.attributes == ({"colour": g["colour"]} if g["colour"] else {})


def test_epoch_and_offset_timestamps_are_stored_in_utc(ws: Workspace, tmp_path: Path) -> None:
    _catalog(ws)
    path = tmp_path / "e.jsonl"
    base = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    rows = [
        {
            "event_id": "a",
            "ts": int(base.timestamp()),
            "user_id": "u",
            "type": "click",
            "item_id": "p1",
        },
        {
            "event_id": "b",
            "ts": int(base.timestamp() * 1000),
            "user_id": "u",
            "type": "click",
            "item_id": "p1",
        },
        {
            "event_id": "c",
            "ts": "2026-01-05T12:00:00+02:00",
            "user_id": "u",
            "type": "click",
            "item_id": "p1",
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ingest_events(ws, path).stored == 3
    with duckdb.connect() as con:
        ts = con.execute(f"SELECT DISTINCT ts FROM read_parquet('{ws.events.glob()}')").fetchall()
    assert ts == [(base.replace(tzinfo=None) + timedelta(0),)]
