"""Catalog image paths are confined: a relative path stays inside the catalog file's folder,
an absolute one inside ``ingest.media_roots`` when set, and every local image decodes as a
JPEG, PNG or WebP; refused rows are quarantined with a reason that never quotes the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from PIL import Image

from moodboard.ingest import Workspace, ingest_catalog
from moodboard.ingest.media import image_roots


def _image(path: Path, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), "red").save(path, fmt)
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    _image(folder / "img" / "good.png")
    _image(folder / "img" / "anim.gif", "GIF")
    _image(folder / "img" / "photo.tif", "TIFF")
    jpg = _image(folder / "img" / "whole.jpg", "JPEG").read_bytes()
    (folder / "img" / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])  # truncated
    (folder / "img" / "text.jpg").write_text("TOP-SECRET-CONTENT\n")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT\n")
    os.symlink(tmp_path / "secret.txt", folder / "img" / "out.jpg")
    os.symlink(folder / "img" / "good.png", folder / "img" / "in.png")
    _image(tmp_path / "elsewhere" / "abs.png")
    return folder


ROWS = {
    "good": "img/good.png",
    "inside-link": "img/in.png",
    "url": "https://example.com/a.jpg",
    "none": None,
    "passwd": "../../../../../../../../etc/passwd",
    "up": "../secret.txt",
    "outside-link": "img/out.jpg",
    "gif": "img/anim.gif",
    "tiff": "img/photo.tif",
    "truncated": "img/cut.jpg",
    "text": "img/text.jpg",
    "missing": "img/nope.jpg",
}


def _ingest(folder: Path, rows: dict[str, str | None], **kw: object) -> tuple[Workspace, dict]:
    table = pa.table(
        {"id": list(rows), "title": [f"item {i}" for i in rows], "image": list(rows.values())}
    )
    pcsv.write_csv(table, folder / "catalog.csv")
    ws = Workspace(folder.parent / "ws")
    report = ingest_catalog(ws, folder / "catalog.csv", **kw)
    reasons = {}
    if report.quarantine_file:
        for line in Path(report.quarantine_file).read_text().splitlines():
            row = json.loads(line)
            reasons[row["id"]] = row["_reason"]
    return ws, reasons


def test_only_confined_decodable_images_are_stored(catalog: Path) -> None:
    ws, reasons = _ingest(catalog, ROWS)
    bad = {"passwd", "up", "outside-link", "gif", "tiff", "truncated", "text", "missing"}
    assert set(reasons) == bad, reasons
    for key in ("passwd", "up", "outside-link"):
        assert "outside the catalog file's folder" in reasons[key], reasons[key]
    for key in ("gif", "tiff", "text"):
        assert "JPEG, PNG or WebP" in reasons[key], reasons[key]
    assert "truncated or corrupt" in reasons["truncated"]
    text = json.dumps(reasons)
    assert "TOP-SECRET" not in text and "root:" not in text
    with ws.connect() as con:
        stored = dict(con.execute("SELECT id, image FROM products").fetchall())
    assert set(stored) == {"good", "inside-link", "url", "none"}
    real = str((catalog / "img" / "good.png").resolve())
    assert stored["good"] == stored["inside-link"] == real  # symlinks resolved
    assert stored["url"] == ROWS["url"] and stored["none"] is None
    assert image_roots(ws.root) == [(catalog / "img").resolve()]


def test_absolute_paths_must_lie_under_the_media_roots_when_set(
    catalog: Path, tmp_path: Path
) -> None:
    outside = str(tmp_path / "elsewhere" / "abs.png")
    _, reasons = _ingest(catalog, {"abs": outside})
    assert reasons == {}  # no media_roots: any absolute path that decodes
    _, reasons = _ingest(catalog, {"abs2": outside}, media_roots=[catalog])
    assert "outside ingest.media_roots" in reasons["abs2"]
    _, reasons = _ingest(catalog, {"abs3": outside}, media_roots=[tmp_path / "elsewhere"])
    assert reasons == {}


def test_a_workspace_from_before_the_record_keeps_its_images(catalog: Path, tmp_path: Path) -> None:
    ws, _ = _ingest(catalog, {"good": "img/good.png"})
    (ws.root / "image_roots.json").unlink()  # as an older version left it
    other = tmp_path / "other"
    _image(other / "pics" / "b.png")
    table = pa.table({"id": ["b"], "title": ["item b"], "image": ["pics/b.png"]})
    pcsv.write_csv(table, other / "catalog.csv")
    assert ingest_catalog(ws, other / "catalog.csv").quarantined == 0
    roots = image_roots(ws.root)
    assert roots is not None
    assert set(roots) == {(catalog / "img").resolve(), (other / "pics").resolve()}
