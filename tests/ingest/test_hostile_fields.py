"""Hostile event fields, timestamps and paths through file ingestion and the event WAL (issue 10).

Each test is a reproduction from the issue: extra field names that differ only in case, props
leaking between events, a client's ``props`` dropped, ``raw_ts`` overwritten, timestamps out of
range, whitespace-only required text, a workspace path with quotes, a poisoned WAL segment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from moodboard.config import IngestSettings
from moodboard.errors import InputError
from moodboard.ingest import (
    EventWAL,
    WALConfig,
    Workspace,
    all_events,
    ingest_catalog,
    ingest_events,
    validate,
)
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.segments import segment_paths
from moodboard.ingest.walread import pending_count
from moodboard.pipelines.popularity import popularity

ITEMS = ["15970", "p1", "p2"]
MANUAL = WALConfig(background=False)


def _workspace(root: Path) -> Workspace:
    ws = Workspace(root)
    ingest_catalog(ws, [pa.table({"id": ITEMS, "title": ["Mug", "Cup", "Bowl"]})])
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return _workspace(tmp_path / "ws")


def _click(eid: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "ts": "2026-01-05T10:00:00Z",
        "user_id": "u",
        "type": "click",
        "item_id": "15970",
        **extra,
    }


def _props(ws: Workspace) -> dict[str, Any]:
    t = all_events(ws)
    return {
        e: (json.loads(p) if p else {})
        for e, p in zip(t["event_id"].to_pylist(), t["props"].to_pylist(), strict=True)
    }


def _reasons(report: Any) -> str:
    return " | ".join(r for e in report.errors for r in e["reasons"])


def test_case_variant_field_names_in_two_events_compact_and_keep_their_own_props(
    ws: Workspace,
) -> None:
    with EventWAL(ws, MANUAL) as wal:
        assert wal.accept([_click("a", Color="red")]).ok
        assert wal.accept([_click("b", color="blue")]).ok
        assert wal.compact() == 2
        assert wal.accept([_click("c", COLOR="green", size=3)]).ok
    assert _props(ws) == {
        "a": {"Color": "red"},
        "b": {"color": "blue"},
        "c": {"COLOR": "green", "size": 3},
    }
    assert segment_paths(ws.root / "events" / "wal") == []


def test_props_are_built_per_event_and_a_client_props_object_is_kept(ws: Workspace) -> None:
    with EventWAL(ws, MANUAL) as wal:
        assert wal.accept(
            [
                _click("a", props={"size": "M", "n": 2}, campaign="x"),
                _click("b", raw_ts="kept", ts_note=None),
                _click("c"),
            ]
        ).ok
    assert _props(ws) == {
        "a": {"size": "M", "n": 2, "campaign": "x"},
        "b": {"raw_ts": "kept", "ts_note": None},
        "c": {},
    }


@pytest.mark.parametrize(
    ("event", "names"),
    [
        (_click("a", TYPE="x"), ["TYPE", "type"]),
        (_click("a", Color="red", color="blue"), ["Color", "color"]),
        (_click("a", props={"color": "red"}, color="blue"), ["color"]),
        (_click("a", _secret=1), ["_secret"]),
        (_click("a", props={"_x": 1}), ["_x"]),
        (_click("a", props=["not", "an", "object"]), ["props"]),
    ],
)
def test_colliding_or_reserved_names_are_refused_naming_them(
    ws: Workspace, event: dict[str, Any], names: list[str]
) -> None:
    with EventWAL(ws, MANUAL) as wal:
        report = wal.accept([event, _click("ok")])
        assert report.accepted == 0 and [e["row"] for e in report.errors] == [0]
        for n in names:
            assert repr(n) in _reasons(report) or n in _reasons(report)
        assert wal.compact() == 0
    assert all_events(ws).num_rows == 0


@pytest.mark.parametrize(
    ("event", "setting"),
    [
        (_click("a", note="x" * 5000), "ingest.max_value_chars"),
        (_click("a", query="q" * 5000), "ingest.max_value_chars"),
        (_click("a", props={"deep": ["x" * 3000, "y" * 3000]}), "ingest.max_value_chars"),
        (_click("a", **{f"k{i}": i for i in range(70)}), "ingest.max_keys_per_event"),
        (_click("a", **{"n" * 65: 1}), "ingest.max_name_chars"),
    ],
)
def test_each_size_cap_names_its_setting_and_the_value(
    ws: Workspace, event: dict[str, Any], setting: str
) -> None:
    with EventWAL(ws, MANUAL) as wal:
        report = wal.accept([event])
    assert report.accepted == 0
    assert "field_limits: " in _reasons(report) and setting in _reasons(report)


def test_distinct_extra_names_per_batch_are_capped_and_many_are_cheap(ws: Workspace) -> None:
    batch = [_click(f"e{i}", **{f"key_{i}": i}) for i in range(8_000)]
    with (
        EventWAL(ws, MANUAL) as wal,
        pytest.raises(InputError, match=r"8000 .*ingest\.max_extra_keys_per_batch"),
    ):
        wal.accept(batch)
    roomy = IngestSettings(max_extra_keys_per_batch=10_000)
    with EventWAL(ws, MANUAL, roomy) as wal:
        assert wal.accept(batch).accepted == 8_000
        assert wal.compact() == 8_000
    props = _props(ws)
    assert props["e0"] == {"key_0": 0} and props["e7999"] == {"key_7999": 7999}


def test_a_repeated_event_id_in_one_batch_counts_once(ws: Workspace) -> None:
    with EventWAL(ws, MANUAL) as wal:
        report = wal.accept([_click("a"), _click("b"), _click("a"), _click("a")])
    assert (report.accepted, report.event_ids, report.duplicates) == (2, ("a", "b"), ("a",))
    assert sorted(all_events(ws)["event_id"].to_pylist()) == ["a", "b"]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_file_ingestion_keeps_extras_per_row_and_quarantines_collisions(
    ws: Workspace, tmp_path: Path
) -> None:
    rows = [
        _click("a", Color="red"),
        _click("b", color="blue", props={"size": "M"}),
        _click("c", raw_ts="mine"),
        _click("d", type2="x", TYPE="click"),
        _click("e", props="not an object"),
    ]
    report = ingest_events(ws, _write_jsonl(tmp_path / "ev.jsonl", rows))
    assert (report.stored, report.quarantined) == (3, 2)
    assert _props(ws) == {
        "a": {"Color": "red"},
        "b": {"size": "M", "color": "blue"},
        "c": {"raw_ts": "mine"},
    }
    reasons = [
        json.loads(x)["_reason"] for x in Path(report.quarantine_file).read_text().splitlines()
    ]
    assert any("field_names_distinct" in r and "'TYPE'" in r for r in reasons)
    assert any("props_is_object" in r for r in reasons)


def test_csv_columns_that_differ_only_in_case_are_quarantined_not_a_crash(
    ws: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "ev.csv"
    path.write_text(
        "event_id,ts,user_id,type,item_id,Color,color\n"
        "a,2026-01-05T10:00:00Z,u,click,15970,red,blue\n",
        encoding="utf-8",
    )
    report = ingest_events(ws, path)
    assert (report.stored, report.quarantined) == (0, 1)
    _, results = validate(ws, "events", path)
    assert {r.name: r.failed for r in results}["field_names_distinct"] == 1


def test_out_of_range_timestamps_are_quarantined_and_old_real_logs_pass(
    ws: Workspace, tmp_path: Path
) -> None:
    rows = [
        _click("future", ts="99999-01-01"),
        _click("ancient", ts=-62135596801),
        _click("huge", ts=1e300),
        _click("retail", ts="2010-12-01T08:26:00"),
        _click("epoch", ts=1291191960),
        _click("soon", ts=datetime.now(UTC).isoformat()),
    ]
    report = ingest_events(ws, _write_jsonl(tmp_path / "ev.jsonl", rows))
    assert sorted(_props(ws)) == ["epoch", "retail", "soon"]
    text = Path(report.quarantine_file).read_text()
    assert "ts_not_in_future" in text and "ingest.max_clock_skew_s" in text
    assert "ts_not_before_min" in text and "ingest.min_event_ts" in text
    assert not [p for p in (ws.root / "events").iterdir() if p.name.startswith("day=-")]
    with EventWAL(ws, MANUAL) as wal:
        refused = wal.accept([_click("f2", ts="99999-01-01")])
    assert "ts_not_in_future" in _reasons(refused)


def test_popularity_decays_from_the_build_time_when_an_event_is_in_the_future() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    events = ibis.memtable(
        pa.table(
            {
                "ts": pa.array(
                    [datetime(2026, 1, 9), datetime(2026, 1, 9), datetime(9999, 1, 1)],
                    pa.timestamp("us"),
                ),
                "type": ["click", "click", "click"],
                "item_id": ["real", "real", "attacker"],
            }
        )
    )
    out = popularity(events, {"click": 1.0}, 7.0, now=now).to_pyarrow().to_pylist()
    scores = {r["item_id"]: r["score"] for r in out}
    assert scores["real"] > 1.5  # one day old: barely decayed, not aged by 8,000 years
    assert scores["attacker"] == pytest.approx(1.0)  # counted as of now, never boosted


def test_whitespace_only_required_text_is_quarantined(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    cat = ingest_catalog(ws, [pa.table({"id": ["a", "b", "\t"], "title": ["Mug", "\t  ", "X"]})])
    assert (cat.stored, cat.quarantined) == (1, 2)
    assert "title_required" in Path(cat.quarantine_file).read_text()
    rows = [_click("e1", user_id="\t "), _click("e2", user_id="\u00a0"), _click("e3", item_id="a")]
    rows[2]["type"] = "save"
    ev = ingest_events(ws, _write_jsonl(tmp_path / "ev.jsonl", rows))
    assert (ev.stored, ev.quarantined) == (1, 2)
    assert Path(ev.quarantine_file).read_text().count("user_id_required") == 2


def test_a_workspace_path_with_quotes_works_for_ingest_wal_and_status(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / 'it\'s a "quoted" ws')
    assert ingest_events(ws, _write_jsonl(tmp_path / "ev.jsonl", [_click("f")])).stored == 1
    with EventWAL(ws, MANUAL) as wal:
        assert wal.accept([_click("a"), _click("b")]).ok
        assert wal.compact() == 2
        assert wal.accept([_click("c")]).ok
    assert ws.status()["events_total"] == 4
    with EventWAL(ws, MANUAL) as wal:
        assert wal.accept([_click("d")]).ok
        assert pending_count(ws) == 1
    assert sorted(_props(ws)) == ["a", "b", "c", "d", "f"]
    read, results = validate(ws, "events", _write_jsonl(tmp_path / "v.jsonl", [_click("g")]))
    assert read == 1 and all(r.passed for r in results)


def _poison(ws: Workspace) -> Path:
    """Segments left by a killed server: good, poisoned (a lone surrogate, which no Arrow
    string holds), good."""
    folder = ws.root / "events" / "wal"
    folder.mkdir(parents=True, exist_ok=True)
    good1 = json.dumps(_click("g1")) + "\n"
    bad = json.dumps(_click("bad", note="\ud800")) + "\n" + json.dumps(_click("g2")) + "\n"
    good3 = json.dumps(_click("g3", props={"k": 1})) + "\n"
    for n, text in enumerate([good1, bad, good3], start=1):
        (folder / f"{n:012d}.jsonl").write_text(text, encoding="ascii")
    return folder / f"{2:012d}.jsonl"


def test_a_poisoned_segment_is_set_aside_with_its_error_and_the_rest_is_stored(
    ws: Workspace,
) -> None:
    _poison(ws)
    assert ws.status()["events_total"] == 0  # status does not crash on the poisoned WAL
    assert pending_count(ws) == 2
    with EventWAL(ws, MANUAL) as wal:  # opening stores what was left
        assert wal.accept([_click("after")]).ok
    assert sorted(_props(ws)) == ["after", "g1", "g3"]
    aside = sorted(ws.quarantine_dir.glob("wal-000000000002-*"))
    assert [p.suffix for p in aside] == [".json", ".jsonl"]
    info = json.loads(aside[0].read_text())
    assert "surrogate" in info["error"] and info["segment"].endswith("000000000002.jsonl")
    assert '"g2"' in aside[1].read_text()  # kept whole, to fix and ingest again
    assert segment_paths(ws.root / "events" / "wal") == []


def test_the_api_quarantine_file_rotates_by_size_and_keeps_a_bounded_number(
    ws: Workspace,
) -> None:
    limits = IngestSettings(api_quarantine_max_mb=0.002, api_quarantine_files=2)
    with EventWAL(ws, MANUAL, limits) as wal:
        for i in range(60):
            assert not wal.accept([_click(f"x{i}", type="teleport")]).ok
    files = sorted(p.name for p in ws.quarantine_dir.glob("events-api*.jsonl"))
    assert files == ["events-api.1.jsonl", "events-api.2.jsonl", "events-api.jsonl"]
    assert all(p.stat().st_size < 4_000 for p in ws.quarantine_dir.glob("events-api*"))
    newest = ws.quarantine_dir / "events-api.jsonl"
    assert not newest.read_text() or '"x59"' in newest.read_text()


def test_a_quarantine_without_rotation_keeps_one_file(tmp_path: Path) -> None:
    q = Quarantine(tmp_path, "events", "<api>", name="events-api", max_bytes=200, keep=0)
    for i in range(20):
        q.add({"event_id": f"e{i}"}, "type_known: no", i)
    q.close()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["events-api.jsonl"])
