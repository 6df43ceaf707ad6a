"""Visual search bench: object detection per photo and ``POST /visual-search`` over HTTP.

Photos: held-out composites of 2-4 products of the workspace's catalog (``evaluate.objects``),
as JPEG. In-process (on the model thread, as the server runs them): one image embedding
(``encode_upload``), object detection alone, and the whole look at a photo (decode once,
detect, embed the photo and each object's crop in one batch). Over HTTP against a real
``moodboard serve`` on 127.0.0.1, at concurrency 1: ``/visual-search`` with detection (no
crop) and with a crop (the first pasted product's box).

Usage: ``python bench/objects.py [--workspace PATH] [--requests 200]`` (a built workspace;
without one it uses ``moodboard-workspace`` or builds the fashion catalog in a temp folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.evaluate.objects import heldout_pool, photo_bytes
from moodboard.serve.registry import Engine
from moodboard.understand.composites import compose
from moodboard.understand.detect import ObjectDetector, look_at
from moodboard.understand.threads import in_own_thread, model_thread
from moodboard.understand.upload import decode_photo
from serve import HOST, _free_port, _load, _row, _serve, _time, _workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace")
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(args.workspace, tmp)
        engine = in_own_thread(Engine.load, ws)
        pool, _ = heldout_pool(engine.catalog, limit=200)
        rng = np.random.default_rng(0)
        comps = [compose(rng, pool) for _ in range(50)]
        photos = [photo_bytes(c) for c in comps]
        crops = [",".join(map(str, c.boxes[0])) for c in comps]
        detector = ObjectDetector(engine.settings.surfaces.visual.detect)
        images = [decode_photo(p)[0] for p in photos]
        embed = engine.images.embed_images
        parts = {
            "image embedding (encode_upload, 1 photo)": lambda i: engine.images.encode_upload(
                photos[i % 50]
            ),
            "object detection (decoded photo)": lambda i: detector(images[i % 50]),
            "look at a photo (decode, detect, embed all)": lambda i: look_at(
                photos[i % 50], detector, embed
            ),
        }
        rows = []
        for what, fn in parts.items():
            model_thread().run(_time, fn, 10)  # warm up
            lat = model_thread().run(_time, fn, n)
            rows.append(_row(what + " in-process", 1, lat, None))
        port = _free_port()
        proc = _serve(ws, port)
        base = f"http://{HOST}:{port}"
        calls = {
            "with detection": lambda c, i: c.post(
                f"{base}/visual-search", files={"image": ("q.jpg", photos[i % 50], "image/jpeg")}
            ),
            "with a crop": lambda c, i: c.post(
                f"{base}/visual-search",
                files={"image": ("q.jpg", photos[i % 50], "image/jpeg")},
                data={"crop": crops[i % 50]},
            ),
        }
        try:
            for name, call in calls.items():
                _load(call, 20, 1)  # warm up
                lat, wall, errors = _load(call, n, 1)
                rows.append(_row(f"POST /visual-search {name}", 1, lat, wall, errors))
        finally:
            proc.terminate()
            proc.wait(30)
    path = report(
        "objects", rows, ["what", "concurrency", "requests", "p50_ms", "p99_ms", "rps", "errors"]
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
