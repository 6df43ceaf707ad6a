"""How the serving tests make an in-process server: one place for settings and keys."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from moodboard.config import Settings, load_settings
from moodboard.serve.app import create_app

#: Debian's chromium, which playwright drives (no `playwright install`).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium (playwright ``Browser``); skips the test without one, except in CI,
    where a missing browser fails it."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: run `make chromium` (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


#: The fixed keys every in-process test server is configured with, by ``auth`` name.
KEYS = {"admin": "test-admin-key", "write": "test-write-key", "public": "test-public-key"}


def serve_settings(**serve: object) -> Settings:
    """Settings for an in-process server: no artifact polling, the test keys (``KEYS``),
    ``serve.*`` overrides applied."""
    s = load_settings().model_copy(deep=True)
    s.serve.watch_interval_s = 0
    for role, key in KEYS.items():
        setattr(s.serve, f"{role}_key", SecretStr(key))
    s.serve.session_secret = SecretStr("test-session-secret")
    for name, value in serve.items():
        setattr(s.serve, name, value)
    return s


def auth_headers(auth: str) -> dict[str, str]:
    """The Authorization header of a test key (``"none"``: no header)."""
    if auth == "none":
        return {}
    return {"Authorization": f"Bearer {KEYS[auth]}"}


def api_client(
    ws_root: Path, settings: Settings | None = None, *, auth: str = "admin"
) -> TestClient:
    """A (not yet started) TestClient over a workspace; use it as ``with api_client(...) as c``.

    ``auth`` names the key the client sends on every request: ``"admin"``, ``"write"``,
    ``"public"`` or ``"none"``. Every serving test builds its client here, so the keys the
    server requires are configured in one place.
    """
    app = create_app(ws_root, settings or serve_settings())
    return TestClient(app, headers=auth_headers(auth))


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(proc: subprocess.Popen, base: str, log: Path, timeout_s: float) -> None:
    """Poll /healthz until 200; fail early with the server's output if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moodboard serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):  # wakes at once if it dies
            proc.wait(timeout=0.25)
    pytest.fail(f"moodboard serve was not ready after {timeout_s:.0f} s:\n{log.read_text()}")


@contextlib.contextmanager
def serve_process(
    ws_root: Path, log: Path, timeout_s: float = 90, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """``moodboard serve`` over a workspace as a subprocess, configured with the test keys
    (``KEYS``, send them with ``auth_headers``) and ``env`` (``MOODBOARD_*`` settings):
    yields (base URL, pid)."""
    extra = env or {}
    exe = Path(sys.executable).with_name("moodboard")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}
    env.update({f"MOODBOARD_SERVE__{role.upper()}_KEY": key for role, key in KEYS.items()})
    env.pop("MOODBOARD_WORKSPACE", None)
    cmd = [str(exe), "serve", "--workspace", str(ws_root), "--host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, base, log, timeout_s)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
