"""The server's keys: configured in ``serve.*`` or generated once into the workspace (mode
0600), compared in constant time, never printed; the shopper cookie's signature; the public
key's rate limiter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from moodboard.config import ServeSettings
from moodboard.errors import ConfigError

_log = logging.getLogger(__name__)

#: Where generated keys are kept, in the workspace folder.
KEYS_FILE = "serve-keys.json"
#: Most client addresses the rate limiter remembers (least recently seen are forgotten).
MAX_TRACKED_CLIENTS = 10_000

_NAMES = ("admin_key", "write_key", "public_key", "session_secret")
_SESSION_CONTEXT = b"moodboard-session\0"

Role = Literal["admin", "write", "public"]


@dataclass(frozen=True, repr=False)
class Keys:
    """The server's keys and the secret that signs shopper cookies.

    Parameters
    ----------
    admin, write, public
        The bearer keys.
    session
        The secret signing the shopper cookie.
    file
        The file the generated ones are kept in (None when all are configured).
    """

    admin: SecretStr
    write: SecretStr
    public: SecretStr
    session: SecretStr
    file: Path | None = None

    def __repr__(self) -> str:
        return f"Keys(file={self.file})"

    def role_of(self, presented: str) -> Role | None:
        """The role of a presented key, compared in constant time (None: not a key of ours)."""
        given = presented.encode()
        found: Role | None = None
        roles: tuple[tuple[Role, SecretStr], ...] = (
            ("admin", self.admin), ("write", self.write), ("public", self.public),
        )  # fmt: skip
        for role, key in roles:
            if hmac.compare_digest(given, key.get_secret_value().encode()) and found is None:
                found = role
        return found

    def sign_session(self, user_id: str) -> str:
        """A cookie value naming ``user_id``, signed with the session secret."""
        raw = user_id.encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def session_user(self, value: str | None) -> str | None:
        """The user a cookie value names, or None when it is missing, malformed or forged."""
        if not value or len(value) > 1024:
            return None
        part, _, mac = value.partition(".")
        try:
            raw, sig = _unb64(part), _unb64(mac)
        except ValueError:
            return None
        if not raw or not hmac.compare_digest(sig, self._mac(raw)):
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return None

    def _mac(self, raw: bytes) -> bytes:
        secret = self.session.get_secret_value().encode()
        return hmac.new(secret, _SESSION_CONTEXT + raw, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise ValueError("not base64") from e


def load_keys(workspace: Path | str, serve: ServeSettings) -> Keys:
    """The configured keys, the others (unset or empty) from the workspace's keys file, generated
    when absent.

    Parameters
    ----------
    workspace
        The workspace folder; generated keys go to ``<workspace>/serve-keys.json`` (mode 0600).
    serve
        The server settings (``admin_key``, ``write_key``, ``public_key``, ``session_secret``).

    Raises
    ------
    ConfigError
        If the keys file exists but is not a JSON object of strings.
    """
    values: dict[str, SecretStr | None] = {n: getattr(serve, n) for n in _NAMES}
    missing = [n for n, v in values.items() if v is None or not v.get_secret_value()]
    path: Path | None = None
    if missing:
        path = Path(workspace) / KEYS_FILE
        stored = _read_keys_file(path)
        new = {n: secrets.token_urlsafe(32) for n in missing if n not in stored}
        if new:
            stored |= new
            _write_keys_file(path, stored)
            _log.info("generated the server's %s into %s", ", ".join(sorted(new)), path)
        values |= {n: SecretStr(stored[n]) for n in missing}
    return Keys(
        admin=values["admin_key"],  # type: ignore[arg-type]
        write=values["write_key"],  # type: ignore[arg-type]
        public=values["public_key"],  # type: ignore[arg-type]
        session=values["session_secret"],  # type: ignore[arg-type]
        file=path,
    )


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("%s was readable by others: its mode is now 0600", path)
        path.chmod(0o600)
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"{path} is not a JSON keys file ({type(e).__name__}): fix it, or delete it to "
            "generate new keys at the next start."
        ) from e
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
    ):
        raise ConfigError(
            f"{path} must be a JSON object of non-empty strings: fix it, or delete it to "
            "generate new keys at the next start."
        )
    return {k: v for k, v in data.items() if k in _NAMES}


def _write_keys_file(path: Path, keys: dict[str, str]) -> None:
    """Write the keys readable by their owner only, atomically (readers see old or new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class RateLimiter:
    """A token bucket per client address: ``per_min`` requests a minute, bursts of ``per_min``.

    Parameters
    ----------
    per_min
        Requests a minute each client may make.
    max_clients
        Most clients remembered; the least recently seen are forgotten (they start full).
    """

    def __init__(self, per_min: int, max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.per_min = per_min
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> float:
        """Take one request for ``client``: 0 when allowed, else the seconds until it would be."""
        rate = self.per_min / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, seen = self._buckets.pop(client, (float(self.per_min), now))
            tokens = min(float(self.per_min), tokens + (now - seen) * rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
            self._buckets[client] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait
