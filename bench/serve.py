"""HTTP load bench on the fashion catalog: a bounded loopback client against a real server.

Starts ``moodboard serve`` on 127.0.0.1 (never another host), then measures p50/p99 latency and
requests/s of ``/search`` (a mix of real query strings: WANDS queries and catalog phrases;
and 80 broad queries, whose pages start with rows of sub-searches),
``/related/{id}`` and ``/visual-search`` at concurrency 1 and 8. In the same run it times the
bare components (a tantivy query, a FAISS query, one text encode, one image encode) so the
table shows what the full chain costs over its parts.

Usage: ``python bench/serve.py [--workspace PATH] [--requests 300]``. Without a workspace it
uses ``moodboard-workspace`` when ``make demo`` built it, else builds one in a temp folder.
Needs ``MOODBOARD_DATASETS``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, scratch_copy
from search import _queries

from moodboard.data import Request
from moodboard.ingest import Workspace
from moodboard.retrieve import SourceQuery
from moodboard.serve.registry import Engine
from moodboard.surfaces.recent import RecentActions
from moodboard.understand.threads import in_own_thread, model_thread

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _workspace(arg: str | None, tmp: str) -> Workspace:
    if arg:
        return Workspace(arg)
    demo = Workspace("moodboard-workspace")
    if demo.exists() and demo.current_artifact():
        return demo
    from moodboard.build import build
    from moodboard.datasets import ingest_dataset

    ws = Workspace(Path(tmp) / "ws")
    ingest_dataset(ws, "fashion")
    in_own_thread(build, ws)
    return ws


def _serve(ws: Workspace, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``moodboard serve`` on a scratch copy of ``ws`` (``_common.scratch_copy``), once it
    answers ``/healthz``."""
    exe = Path(sys.executable).with_name("moodboard")
    root = scratch_copy(ws.root)
    proc = subprocess.Popen(
        [str(exe), "serve", "--workspace", str(root), "--host", HOST, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not come up: {proc.stderr.read().decode()[-2000:]}")


def _load(
    call: Callable[[httpx.Client, int], httpx.Response], n: int, concurrency: int
) -> tuple[list[float], float, int]:
    """Send ``n`` requests from ``concurrency`` clients; latencies (ms), wall seconds, errors."""
    clients = [httpx.Client(base_url=f"http://{HOST}", timeout=30) for _ in range(concurrency)]
    lat: list[float] = []
    errors = 0

    def worker(w: int) -> None:
        nonlocal errors
        c = clients[w]
        for i in range(w, n, concurrency):
            t0 = time.perf_counter()
            r = call(c, i)
            lat.append((time.perf_counter() - t0) * 1e3)
            errors += r.status_code != 200

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    wall = time.perf_counter() - t0
    for c in clients:
        c.close()
    return lat, wall, errors


def _broad_queries() -> list[str]:
    """80 broad queries (no product type named: season or style, a word, a gender), shuffled:
    a run of 300 requests asks each about 4 times, as head queries come back."""
    words = [
        f"{a} {b}"
        for a in ("summer", "winter", "casual", "party")
        for b in ("outfit", "wear", "look", "style")
    ]
    out = [
        f"{w} {g}".strip()
        for w in words
        for g in ("", "for men", "for women", "for girls", "for boys")
    ]
    return list(np.random.default_rng(0).permutation(out))


def _row(what: str, conc: int, lat: list[float], wall: float | None, errors: int = 0) -> dict:
    return {
        "what": what,
        "concurrency": conc,
        "requests": len(lat),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "rps": len(lat) / wall if wall else float("nan"),
        "errors": errors,
    }


def _time(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


#: The ``/feed`` servers: the fused order, the multi-head ranker over its first candidates,
#: and that ranker with the composed page (utility, diversity, slot rules, explore slots).
FEED_RANKERS = {
    "rank/noop": {},
    "rank/multihead": {"MOODBOARD_SURFACES__FEED__RANKER": "rank/multihead"},
    "rank/multihead + blend/compose": {
        "MOODBOARD_SURFACES__FEED__RANKER": "rank/multihead",
        "MOODBOARD_SURFACES__FEED__BLEND": "blend/compose",
    },
}


def _blend_ms(url: str, users: list[str], n: int) -> float:
    """The median time of the blend stage over ``n`` pages asked with ``explain=1``."""
    ms = []
    with httpx.Client(timeout=30) as c:
        for i in range(n):
            page = c.get(f"{url}/{users[i % len(users)]}", params={"explain": 1}).json()
            ms += [st["ms"] for st in page["explain"]["stages"] if st["name"] == "blend"]
    return float(np.median(ms)) if ms else float("nan")


def _feed_rows(ws: Workspace, engine: Engine, n: int) -> list[dict]:
    """``GET /feed/{user}`` of known shoppers at concurrency 1, served without and with
    ``rank/multihead`` (skipped when the version trained none)."""
    users = [u for u in engine.histories.users() if len(engine.history(u))][:n] or ["nobody"]
    rows = []
    for what, env in FEED_RANKERS.items():
        ranker = env.get("MOODBOARD_SURFACES__FEED__RANKER", "rank/noop")
        if ranker != "rank/noop" and not engine.manifest["components"].get(ranker, {}).get("path"):
            print(f"/feed with {what}: {ranker} not trained in this version, skipped")
            continue
        port = _free_port()
        proc = _serve(ws, port, env)
        try:
            url = f"http://{HOST}:{port}/feed"
            call = lambda c, i, url=url: c.get(f"{url}/{users[i % len(users)]}")  # noqa: E731
            _load(call, 20, 1)
            lat, wall, errors = _load(call, n, 1)
            row = _row(f"GET /feed ({what})", 1, lat, wall, errors)
            rows.append(row | {"blend_ms": _blend_ms(url, users, min(n, 50))})
        finally:
            proc.terminate()
            proc.wait(30)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace")
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(args.workspace, tmp)
        engine = in_own_thread(Engine.load, ws)  # as the server loads it (no torch team left)
        queries = _queries(engine.catalog, n)
        broad = _broad_queries()
        rng = np.random.default_rng(0)
        with_image = np.flatnonzero(engine.has_images())
        items = engine.catalog.ids.external(rng.choice(with_image, n))
        photos = [Path(engine.catalog.image[i]).read_bytes() for i in rng.choice(with_image, 50)]
        port = _free_port()
        proc = _serve(ws, port)
        base = f"http://{HOST}:{port}"
        calls: dict[str, Callable[[httpx.Client, int], httpx.Response]] = {
            "/search": lambda c, i: c.get(f"{base}/search", params={"q": queries[i % n]}),
            "/search (broad queries)": lambda c, i: c.get(
                f"{base}/search", params={"q": broad[i % len(broad)]}
            ),
            "/related": lambda c, i: c.get(f"{base}/related/{items[i % n]}"),
            "/visual-search": lambda c, i: c.post(
                f"{base}/visual-search",
                files={"image": ("q.jpg", photos[i % len(photos)], "image/jpeg")},
            ),
        }
        rows = []
        try:
            for name, call in calls.items():
                _load(call, 20, 1)  # warm up
                for conc in (1, 8):
                    m = n if name != "/visual-search" else n // 3
                    lat, wall, errors = _load(call, m, conc)
                    rows.append(_row(f"GET {name}" if name != "/visual-search" else "POST "
                                     f"{name}", conc, lat, wall, errors))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
        rows += _feed_rows(ws, engine, n)
        bm25, dense = engine.sources["lexical/bm25"], engine.sources["dense/text"]
        enc = engine.text_encoder.encode
        vecs = model_thread().run(enc, queries[:n])
        recent = RecentActions()  # a server's real-time buffer, 1,000 shoppers x 50 actions
        recent.add(
            {"type": "click", "user_id": f"u{u}", "item_id": items[(u + j) % n]}
            for u in range(1_000)
            for j in range(60)
        )
        parts = {
            "tantivy bm25 top-200": lambda i: bm25(SourceQuery(text=queries[i]), 200),
            "faiss dense top-200": lambda i: dense(SourceQuery(vector=vecs[i]), 200),
            "text encode (1 query)": lambda i: enc([queries[i] + " x"]),
            "query understanding": lambda i: engine.understand(queries[i]),
            "search chain in-process": lambda i: engine.search(
                Request(surface="search", query=queries[i])
            ),
            "recent actions read (50 held)": lambda i: recent(f"u{i % 1_000}"),
            "related chain in-process": lambda i: engine.related(
                Request(surface="related", item_id=items[i], k=25)
            ),
        }
        for what, fn in parts.items():  # on the model thread, as the server runs them
            model_thread().run(_time, fn, 10)
            rows.append(_row(what, 1, model_thread().run(_time, fn, n), None))
        srch = next(r for r in rows if r["what"] == "GET /search" and r["concurrency"] == 1)
        chain = next(r for r in rows if r["what"] == "search chain in-process")
        for r in rows:
            r["x_of_chain"] = r["p50_ms"] / chain["p50_ms"]
            r.setdefault("blend_ms", float("nan"))  # the /feed rows' blend stage (explain)
        rows.append(
            {
                "what": "HTTP /search over in-process chain (p50)",
                "concurrency": 1,
                "requests": 0,
                "p50_ms": srch["p50_ms"] - chain["p50_ms"],
                "p99_ms": float("nan"),
                "rps": float("nan"),
                "errors": 0,
                "x_of_chain": srch["p50_ms"] / chain["p50_ms"],
                "blend_ms": float("nan"),
            }
        )
        report(
            "serve",
            rows,
            [
                "what",
                "concurrency",
                "requests",
                "p50_ms",
                "p99_ms",
                "rps",
                "errors",
                "x_of_chain",
                "blend_ms",
            ],
        )
        print(f"catalog: {len(engine.catalog):,} products; workspace {ws.root}; pid {os.getpid()}")


if __name__ == "__main__":
    main()
