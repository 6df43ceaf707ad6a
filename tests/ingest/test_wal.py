"""The event WAL: all-or-nothing accepts, durable acknowledgements, crash recovery, compaction."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import moodboard.ingest.segments as segments
from moodboard.errors import InputError, MoodboardError
from moodboard.ingest import (
    EventWAL,
    WALConfig,
    WALWriteError,
    Workspace,
    all_events,
    ingest_catalog,
    pending_on_disk,
)
from moodboard.ingest.segments import SegmentWriter, segment_paths
from moodboard.ingest.walrows import fast_reasons, normalized

ITEMS = [f"p{i}" for i in range(50)]
MANUAL = WALConfig(background=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with a 50-product catalog."""
    w = Workspace(tmp_path / "ws")
    ingest_catalog(w, [pa.table({"id": ITEMS, "title": [f"Item {i}" for i in ITEMS]})])
    return w


def _clicks(n: int, tag: str = "", ids: bool = True) -> list[dict[str, Any]]:
    return [
        {
            **({"event_id": f"{tag}e{i}"} if ids else {}),
            "ts": f"2026-01-05T10:{i % 60:02d}:00Z",
            "user_id": f"u{i % 7}",
            "type": "click",
            "item_id": ITEMS[i % len(ITEMS)],
            "position": i % 24 + 1,
            "request_id": f"r{i // 24}",
        }
        for i in range(n)
    ]


def _impressions(n: int = 24) -> list[dict[str, Any]]:
    return [
        {
            "user_id": "u1",
            "type": "impression",
            "item_id": ITEMS[i % len(ITEMS)],
            "surface": "search",
            "position": i + 1,
            "request_id": "req-1",
            "propensity": 1.0,
        }
        for i in range(n)
    ]


def _ids(table: pa.Table) -> list[str]:
    return table.column("event_id").to_pylist()


def test_accepted_events_are_stored_once_and_replaying_a_segment_adds_nothing(
    ws: Workspace, tmp_path: Path
) -> None:
    wal = EventWAL(ws, MANUAL).open()
    sent = _clicks(30)
    reports = [wal.accept(sent[i : i + 10]) for i in range(0, 30, 10)]
    assert all(r.ok and r.accepted == 10 for r in reports)
    assert [e for r in reports for e in r.event_ids] == [r["event_id"] for r in sent]
    assert sorted(_ids(wal.pending_events())) == sorted(r["event_id"] for r in sent)
    saved = tmp_path / "segment-copy.jsonl"
    shutil.copy(wal._seg.current, saved)  # the fsynced segment, as a crash would leave it
    shutil.copy(saved, wal.folder / "000000000900.jsonl")  # and a second copy of it
    assert wal.compact() == 30
    assert wal.pending_events().num_rows == 0
    wal.close()

    stored = all_events(ws)
    assert sorted(_ids(stored)) == sorted(r["event_id"] for r in sent)
    by_id = {r["event_id"]: r for r in stored.to_pylist()}
    for r in sent:
        s = by_id[r["event_id"]]
        assert (s["user_id"], s["type"], s["item_id"], s["position"], s["request_id"]) == (
            r["user_id"],
            r["type"],
            r["item_id"],
            r["position"],
            r["request_id"],
        )
    assert list(wal.folder.glob("*.jsonl")) == []

    shutil.copy(saved, wal.folder / "000000000001.jsonl")  # replayed by the next open
    with EventWAL(ws, MANUAL) as again:
        assert again.pending_events().num_rows == 0  # already in the log: not pending twice
    assert sorted(_ids(all_events(ws))) == sorted(r["event_id"] for r in sent)
    assert list(wal.folder.glob("*.jsonl")) == []


def test_missing_event_id_and_ts_are_filled_before_the_checks(ws: Workspace) -> None:
    with EventWAL(ws, MANUAL) as wal:
        before = time.time()
        report = wal.accept([{"user_id": "u1", "type": "save", "item_id": "p3", "board_id": "b"}])
        assert report.ok and len(report.event_ids) == 1 and len(report.event_ids[0]) == 32
    row = all_events(ws).to_pylist()[0]
    assert row["event_id"] == report.event_ids[0]
    assert abs(row["ts"].timestamp() - before) < 60  # naive UTC
    assert [(b.id, b.item_ids) for b in ws.boards()] == [("b", ("p3",))]


BREAKS = {
    "type_known": {"type": "teleport"},
    "position_at_least_1": {"position": -2},
    "user_id_required": {"user_id": None},
    "item_in_catalog": {"item_id": "not-a-product"},
    "ts_is_timestamp": {"ts": "yesterday-ish"},
    "arms_is_object": {"arms": "[1, 2]"},
}


@pytest.mark.parametrize("check", sorted(BREAKS))
def test_a_batch_with_one_bad_row_stores_nothing_and_names_the_row_and_check(
    ws: Workspace, check: str
) -> None:
    batch = _clicks(6, tag=check)
    batch[3] = {**batch[3], **BREAKS[check]}
    with EventWAL(ws, MANUAL) as wal:
        report = wal.accept(batch)
        assert not report.ok and report.accepted == 0 and report.event_ids == ()
        assert [e["row"] for e in report.errors] == [3]
        assert [r.split(":")[0] for r in report.errors[0]["reasons"]] == [check]
        assert "row 3" in report.message() and check in report.message()
        assert wal.pending_events().num_rows == 0
        quarantined = [json.loads(x) for x in Path(report.quarantine_file).read_text().splitlines()]
        assert len(quarantined) == 1
        q = quarantined[0]
        assert q["_reason"].startswith(f"{check}: ") and q["_row"] == 3
        assert q["event_id"] == batch[3]["event_id"]
        assert wal.accept([batch[0]]).ok  # the WAL keeps working
    assert _ids(all_events(ws)) == [batch[0]["event_id"]]


def test_rows_that_are_not_objects_are_reported_as_parse_errors(ws: Workspace) -> None:
    with EventWAL(ws, MANUAL) as wal:
        report = wal.accept([*_clicks(2), "click p1"])
        assert report.errors == [
            {"row": 2, "reasons": ["parses: the event is not a JSON object: send {...} each"]}
        ]
    assert all_events(ws).num_rows == 0


_CHILD = """
import sys, threading, time
from moodboard.ingest import EventWAL, WALConfig, Workspace

wal = EventWAL(Workspace(sys.argv[1]), WALConfig(compact_interval_s=0.2)).open()
out = threading.Lock()

def work(t):
    for b in range(t, 50, 4):
        rows = [{"user_id": f"u{t}", "type": "click", "item_id": f"p{(b + i) % 50}",
                 "position": i % 24 + 1} for i in range(100)]
        report = wal.accept(rows)
        assert report.ok, report.errors
        with out:
            sys.stdout.write("".join(e + "\\n" for e in report.event_ids))
            sys.stdout.flush()

threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("DONE", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kill_after", [1_700, 5_000])
def test_sigkill_loses_no_acknowledged_event(ws: Workspace, tmp_path: Path, kill_after: int):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    with open(tmp_path / "child.err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(ws.root)], stdout=subprocess.PIPE, stderr=err
        )
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    printed: list[str] = []
    try:
        while len(printed) < kill_after:
            line = proc.stdout.readline()
            if not line or line == b"DONE\n":
                break
            if line.endswith(b"\n"):
                printed.append(line.decode().strip())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        watchdog.cancel()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "child.err").read_text()
    assert len(printed) >= min(kill_after, 5_000)

    with EventWAL(ws, MANUAL) as wal:  # replays what the killed process left
        assert wal.pending_events().num_rows == 0
    stored = _ids(all_events(ws))
    assert len(stored) == len(set(stored)) <= 5_000
    missing = set(printed) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events were lost"


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_rest_recovered(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    folder = ws.root / "events" / "wal"
    folder.mkdir(parents=True)
    good = _clicks(10)
    torn = json.dumps(_clicks(11)[10], separators=(",", ":"))[:37]
    (folder / "000000000007.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good) + torn)
    assert sorted(_ids(pending_on_disk(ws))) == sorted(r["event_id"] for r in good)
    with caplog.at_level(logging.WARNING, logger="moodboard.ingest.segments"), EventWAL(ws, MANUAL):
        pass
    assert "torn last line" in caplog.text and "000000000007.jsonl" in caplog.text
    assert sorted(_ids(all_events(ws))) == sorted(r["event_id"] for r in good)
    assert list(ws.quarantine_dir.glob("*.jsonl")) == []  # skipped, not a bad event
    assert segment_paths(folder) == []


def test_logged_rows_are_fsynced_by_the_flusher_within_the_interval(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[float] = []
    real = segments._sync_data

    def spy(fd: int) -> None:
        real(fd)
        synced.append(time.monotonic())

    monkeypatch.setattr(segments, "_sync_data", spy)
    config = WALConfig(flush_interval_ms=50, compact_interval_s=3600)
    with EventWAL(ws, config) as wal:
        t0 = time.monotonic()
        ids = wal.log(_impressions())
        assert len(ids) == 24 and len(set(ids)) == 24
        assert sorted(_ids(wal.pending_events())) == sorted(ids)  # visible at once
        segment = wal._seg.current
        deadline = t0 + 5
        while not synced and time.monotonic() < deadline:
            time.sleep(0.01)
        assert synced, "the flusher never fsynced the logged events"
        assert synced[0] - t0 < 1.0  # 50 ms interval, loosely (shared CI machines)
        lines = segment.read_bytes().splitlines()
        assert sorted(json.loads(x)["event_id"] for x in lines) == sorted(ids)
    assert sorted(_ids(all_events(ws))) == sorted(ids)


def test_log_is_cheap_and_rejects_bad_generated_rows(ws: Workspace) -> None:
    with EventWAL(ws, WALConfig(flush_interval_ms=50, compact_interval_s=3600)) as wal:
        page = _impressions()
        wal.log(page)
        t0 = time.perf_counter()
        for _ in range(200):
            wal.log(page)
        assert (time.perf_counter() - t0) / 200 < 0.005  # ~0.2 ms measured; loose bound
        with pytest.raises(InputError, match="impression_has_request_id"):
            wal.log([*page[:3], {**page[3], "request_id": None}])
        assert wal.pending_events().num_rows == 201 * 24
    assert all_events(ws).num_rows == 201 * 24


@pytest.mark.parametrize("check", sorted(set(BREAKS) - {"item_in_catalog"}))
def test_the_python_checks_of_log_agree_with_the_named_checks(ws: Workspace, check: str):
    row = {**_clicks(1)[0], **BREAKS[check]}
    with EventWAL(ws, MANUAL) as wal:
        named = [r.split(":")[0] for r in wal.accept([row]).errors[0]["reasons"]]
    fast = [r.split(":")[0] for r in fast_reasons(normalized(row, "2026-01-05T00:00:00Z"))]
    assert fast == named == [check]


def test_concurrent_syncs_share_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_sync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            entered.set()
            release.wait(10)

    monkeypatch.setattr(segments, "_sync_data", slow_sync)
    seg = SegmentWriter(tmp_path / "wal")
    seg.start()
    first = threading.Thread(target=lambda: seg.sync(seg.append([b'{"a":1}\n'])))
    first.start()
    assert entered.wait(10)  # the leader is inside its fsync
    followers = [
        threading.Thread(target=lambda i=i: seg.sync(seg.append([b'{"b":%d}\n' % i])))
        for i in range(5)
    ]
    for t in followers:
        t.start()
    time.sleep(0.1)
    release.set()
    for t in [first, *followers]:
        t.join(10)
    assert len(calls) == 2  # one for the leader, one shared by the five that waited
    assert len(seg.current.read_bytes().splitlines()) == 6
    seg.close()


def test_a_failed_fsync_fails_the_accept_and_the_wal_recovers(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = segments._sync_data
    fail = [True]

    def flaky(fd: int) -> None:
        if fail.pop() if fail else False:
            raise OSError(28, "No space left on device")
        real(fd)

    with EventWAL(ws, MANUAL) as wal:
        monkeypatch.setattr(segments, "_sync_data", flaky)
        with pytest.raises(WALWriteError, match="No space left"):
            wal.accept(_clicks(3, tag="lost"))
        report = wal.accept(_clicks(3, tag="kept"))
        assert report.ok
    stored = set(_ids(all_events(ws)))
    assert set(report.event_ids) <= stored


def test_one_process_at_a_time_and_use_when_closed_says_what_to_do(ws: Workspace) -> None:
    with EventWAL(ws, MANUAL), pytest.raises(MoodboardError, match="open in another process"):
        EventWAL(ws, MANUAL).open()
    wal = EventWAL(ws, MANUAL)
    with pytest.raises(MoodboardError, match="call open"):
        wal.accept(_clicks(1))
    wal.open().close()
    with pytest.raises(MoodboardError, match="call open"):
        wal.log(_impressions())


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="flush_every"):
        WALConfig(flush_every=3)
    assert WALConfig.model_validate_json(WALConfig().model_dump_json()) == WALConfig()


def test_flush_makes_logged_rows_durable_and_read_all_works_without_opening(
    ws: Workspace,
) -> None:
    with EventWAL(ws, MANUAL) as wal:
        ids = wal.log(_impressions(5))
        assert wal._seg.current.read_bytes() == b""  # buffered, not yet written
        wal.flush()
        assert len(wal._seg.current.read_bytes().splitlines()) == 5
        reader = EventWAL(ws)  # another reader, never opened: reads the segments on disk
        assert sorted(_ids(reader.read_all())) == sorted(ids)
        assert sorted(_ids(wal.read_all())) == sorted(ids)
    assert sorted(_ids(EventWAL(ws).read_all())) == sorted(ids)


def test_status_counts_the_events_still_in_the_wal(ws: Workspace) -> None:
    from typer.testing import CliRunner

    from moodboard.cli import app
    from moodboard.ingest.walread import pending_count

    def status() -> dict[str, Any]:
        res = CliRunner().invoke(app, ["status", "--workspace", str(ws.root), "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    with EventWAL(ws, MANUAL) as wal:
        wal.accept(_clicks(7, "a"))
        assert pending_count(ws) == 7
        st = status()
        assert st["events_pending"] == 7 and st["events_total"] == 0
        wal.compact()
        wal.accept(_clicks(3, "b") + _clicks(2, "a"))  # two replays of stored events
        st = status()
        assert st["events_total"] == 7 and st["events_pending"] == 3
