"""How the serving tests make an in-process server: one place for settings and keys."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from moodboard.config import Settings, load_settings
from moodboard.serve.app import create_app

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
