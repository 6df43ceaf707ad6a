"""Autocomplete latency: in-process ``Autocomplete.complete`` p50/p99, and ``GET /autocomplete``
over HTTP at concurrency 1 (p50/p99) against ``moodboard serve``.

In-process, two indexes: the Home Depot one (``evaluate autocomplete``'s: the training queries
of the seed-0 80/20 split and every title, ~79k candidates), typed with the test queries'
prefixes of 1..8 characters; and, with ``--workspace``, the one its live build holds. Over HTTP
(``--workspace`` only), the same prefixes against a server started on the workspace.

Usage: ``python bench/autocomplete.py [--workspace DIR] [--prefixes 2000] [--no-home-depot]``;
needs
``MOODBOARD_DATASETS``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, scratch_copy

from moodboard.build.autocomplete import AutocompleteStep
from moodboard.config import load_settings
from moodboard.datasets import load_home_depot
from moodboard.evaluate.autocomplete import judged_catalog, judgment_log
from moodboard.evaluate.judgments import split_queries
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.surfaces.autocomplete import Autocomplete


def _prefixes(queries: list[str], n: int) -> list[str]:
    rng = np.random.default_rng(0)
    all_ = [q[:k] for q in queries for k in range(1, min(8, len(q)) + 1)]
    return [all_[i] for i in rng.choice(len(all_), min(n, len(all_)), replace=False)]


def _timed(fn, items: list) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _row(what: str, n: int, ms: list[float]) -> dict[str, object]:
    return {
        "what": what,
        "requests": len(ms),
        "candidates": n,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def _in_process(ac: Autocomplete, what: str, prefixes: list[str]) -> dict[str, object]:
    for p in prefixes[:50]:
        ac.complete(p)  # warm
    return _row(what, int(ac.info.get("candidates", 0)), _timed(ac.complete, prefixes))


def _http(ws: Path, prefixes: list[str], n: int) -> dict[str, object]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("moodboard")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [str(exe), "serve", "--workspace", str(scratch_copy(ws)), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as c:
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    try:
                        if c.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if proc.poll() is not None:
                        log.seek(0)
                        raise SystemExit(f"moodboard serve exited:\n{log.read().decode()}")
                    time.sleep(0.5)
                for p in prefixes[:100]:
                    c.get("/autocomplete", params={"q": p})  # warm

                def ask(p: str) -> None:
                    r = c.get("/autocomplete", params={"q": p})
                    assert r.status_code == 200, r.text

                return _row("HTTP GET /autocomplete, concurrency 1", n, _timed(ask, prefixes))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--prefixes", type=int, default=2000)
    ap.add_argument("--no-home-depot", action="store_true", help="skip the Home Depot index")
    args = ap.parse_args()
    tr, te = split_queries(load_home_depot(), 0.2, 0)
    prefixes = _prefixes(sorted(set(te["search_term"].astype(str))), args.prefixes)
    rows = []
    if not args.no_home_depot:
        step = AutocompleteStep(load_settings().autocomplete)
        t0 = time.perf_counter()
        hd = step.fit(judgment_log(tr), judged_catalog(tr, te))
        fit_s = time.perf_counter() - t0
        rows.append(_in_process(hd, "in-process, Home Depot index", prefixes))
        rows[0]["fit_s"] = round(fit_s, 1)
    if args.workspace is not None:
        engine = Engine.load(Workspace(args.workspace))
        assert engine.autocomplete is not None, "rebuild the workspace with this moodboard"
        rows.append(_in_process(engine.autocomplete, "in-process, workspace index", prefixes))
        rows.append(_http(args.workspace, prefixes, int(engine.autocomplete.info["candidates"])))
    for r in rows:
        r.setdefault("fit_s", "")
    report("autocomplete", rows, ["what", "requests", "candidates", "p50_ms", "p99_ms", "fit_s"])


if __name__ == "__main__":
    main()
