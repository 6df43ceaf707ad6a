"""How the serving tests make an in-process server: one place for settings and keys."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from moodboard.config import Settings, load_settings
from moodboard.serve.app import create_app


def serve_settings(**serve: object) -> Settings:
    """Settings for an in-process server: no artifact polling, ``serve.*`` overrides applied."""
    s = load_settings().model_copy(deep=True)
    s.serve.watch_interval_s = 0
    for name, value in serve.items():
        setattr(s.serve, name, value)
    return s


def api_client(
    ws_root: Path, settings: Settings | None = None, *, auth: str = "admin"
) -> TestClient:
    """A (not yet started) TestClient over a workspace; use it as ``with api_client(...) as c``.

    ``auth`` names the key the client sends on every request: ``"admin"``, ``"write"``,
    ``"public"`` or ``"none"``. Every serving test builds its client here, so the keys the
    server requires are configured in one place.
    """
    return TestClient(create_app(ws_root, settings or serve_settings()))
