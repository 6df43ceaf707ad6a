"""A read-only reader in a process that already writes the workspace shares the connection."""

from __future__ import annotations

import threading

from moodboard.ingest import Workspace


def test_read_only_connection_next_to_a_writer_in_the_same_process(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws").init()
    with ws.connect() as writer:
        writer.execute("INSERT INTO users VALUES ('u1', NULL)")
        with ws.connect(read_only=True) as reader:
            assert reader.execute("SELECT count(*) FROM users").fetchone() == (1,)
        assert ws.status()["users"] == 1


def test_a_write_waits_for_this_process_readers_instead_of_failing(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws").init()
    reading, wrote = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        reading.wait()
        try:
            with ws.connect() as con:  # DuckDB refuses read-write next to read-only
                con.execute("INSERT INTO users VALUES ('u2', NULL)")
            wrote.set()
        except BaseException as e:
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    with ws.connect(read_only=True) as reader:
        reading.set()
        assert not wrote.wait(0.2)  # it waits for the reader
        assert reader.execute("SELECT count(*) FROM users").fetchone() == (0,)
    writer.join(10)
    assert errors == [] and wrote.is_set()
    assert ws.status()["users"] == 1
