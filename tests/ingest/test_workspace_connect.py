"""A read-only reader in a process that already writes the workspace shares the connection."""

from __future__ import annotations

from moodboard.ingest import Workspace


def test_read_only_connection_next_to_a_writer_in_the_same_process(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws").init()
    with ws.connect() as writer:
        writer.execute("INSERT INTO users VALUES ('u1', NULL)")
        with ws.connect(read_only=True) as reader:
            assert reader.execute("SELECT count(*) FROM users").fetchone() == (1,)
        assert ws.status()["users"] == 1
