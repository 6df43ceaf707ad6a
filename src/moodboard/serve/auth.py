"""Who may call what: bearer keys, the web app's public key and its shopper's session cookie.

======================================================  ========================================
routes                                                  who
======================================================  ========================================
reads, ``/healthz``, web pages, static files            anyone
``POST /events``                                        write key, or the public key (limited)
``POST /boards``, ``POST /boards/{id}/items``           the board's owner (cookie) or write key
``/admin/*``, ``/metrics``                              admin key (``/metrics`` open when
                                                        ``serve.public_metrics``)
======================================================  ========================================

The admin key works wherever the write key does. Keys are sent as ``Authorization: Bearer
<key>`` and compared in constant time; a key not configured in ``serve.*`` is generated once
into ``<workspace>/serve-keys.json`` (mode 0600) and reused. No key is ever logged: the
settings hold them as ``SecretStr`` and only the file's path is printed.

Each right is a FastAPI dependency (``require_admin``, ``require_writer``,
``require_event_writer``, ``require_board_writer``, ``require_metrics_reader``,
``require_json``): 401 with ``WWW-Authenticate: Bearer`` when no or an unknown key is sent,
403 when a valid key lacks the right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import stat
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from moodboard.config import ServeSettings
from moodboard.errors import ConfigError

_log = logging.getLogger(__name__)

#: Where generated keys are kept, in the workspace folder.
KEYS_FILE = "serve-keys.json"
#: The web app's signed shopper cookie.
SESSION_COOKIE = "moodboard_session"
#: Event types the public key may post.
PUBLIC_EVENT_TYPES = frozenset({"click", "save", "add_to_cart", "purchase", "hide"})
#: Most client addresses the rate limiter remembers (least recently seen are forgotten).
MAX_TRACKED_CLIENTS = 10_000

_NAMES = ("admin_key", "write_key", "public_key", "session_secret")
_SESSION_CONTEXT = b"moodboard-session\0"
_WHERE = "serve.{name}, or the generated <workspace>/" + KEYS_FILE

Role = Literal["admin", "write", "public"]

_bearer = HTTPBearer(
    auto_error=False,
    description="The admin, write or public key (serve.admin_key, serve.write_key, "
    "serve.public_key).",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The web app's signed shopper session (set by its pages).",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Cookie = Annotated[str | None, Depends(_cookie)]


# ---- keys -------------------------------------------------------------------------------


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
    """The configured keys, the others from the workspace's keys file (generated when absent).

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
    missing = [n for n, v in values.items() if v is None]
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


# ---- rate limit ---------------------------------------------------------------------------


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


# ---- who is calling -----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who a protected route is serving: a key's role, or a shopper (by session cookie)."""

    role: Literal["admin", "write", "public", "shopper"]
    user_id: str | None = None

    def check_owner(self, owner: str, board_id: str) -> None:
        """A shopper may write only their own boards (keys may write any).

        Raises
        ------
        HTTPException
            403 if the caller is a shopper and the board is someone else's.
        """
        if self.role == "shopper" and owner != self.user_id:
            raise HTTPException(403, f"Board {board_id!r} belongs to another shopper.")

    def user_for(self, claimed: str | None) -> str | None:
        """The user a write is attributed to: a shopper's own id; a key may name anyone.

        Raises
        ------
        HTTPException
            403 if a shopper claims another user's id.
        """
        if self.role != "shopper":
            return claimed
        if claimed is not None and claimed != self.user_id:
            raise HTTPException(
                403, "The 'user_id' field must be your own shopper id (or left out)."
            )
        return self.user_id


class Guard:
    """The keys, the limits and the rate limiter of one app (``app.state.guard``).

    Parameters
    ----------
    keys
        The server's keys.
    serve
        The server settings (public key limits, ``public_metrics``).
    """

    def __init__(self, keys: Keys, serve: ServeSettings) -> None:
        self.keys = keys
        self.serve = serve
        self.limiter = RateLimiter(serve.public_rate_per_min)


def guard_of(request: Request) -> Guard:
    """The app's ``Guard``."""
    return request.app.state.guard


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _role(request: Request, creds: HTTPAuthorizationCredentials | None) -> Role | None:
    """The role of the bearer key sent (None when none is sent).

    Raises
    ------
    HTTPException
        401 if an Authorization header is sent that is not a key of this server.
    """
    if creds is None:
        if "authorization" in request.headers:
            raise _unauthorized("The Authorization header must be 'Bearer <key>'.")
        return None
    role = guard_of(request).keys.role_of(creds.credentials)
    if role is None:
        raise _unauthorized(f"The key sent is not a key of this server (see {_where('keys')}).")
    return role


def _where(name: str) -> str:
    return _WHERE.format(name=name)


async def require_admin(request: Request, creds: Bearer) -> Caller:
    """A FastAPI dependency: the admin key.

    Raises
    ------
    HTTPException
        401 without a key, 403 with a key that is not the admin key.
    """
    role = _role(request, creds)
    if role is None:
        raise _unauthorized(
            f"This route needs the admin key: send 'Authorization: Bearer <key>' "
            f"({_where('admin_key')})."
        )
    if role != "admin":
        raise HTTPException(403, f"This route needs the admin key; the {role} key may not.")
    return Caller(role)


async def require_writer(request: Request, creds: Bearer) -> Caller:
    """A FastAPI dependency: the write key (or the admin key).

    Raises
    ------
    HTTPException
        401 without a key, 403 with the public key.
    """
    role = _role(request, creds)
    if role is None:
        raise _unauthorized(
            f"This route needs the write key: send 'Authorization: Bearer <key>' "
            f"({_where('write_key')})."
        )
    if role == "public":
        raise HTTPException(403, "This route needs the write key; the public key may not.")
    return Caller(role)


async def require_metrics_reader(request: Request, creds: Bearer) -> Caller | None:
    """A FastAPI dependency: the admin key, unless ``serve.public_metrics`` opens /metrics."""
    if guard_of(request).serve.public_metrics:
        return None
    return await require_admin(request, creds)


async def require_event_writer(request: Request, creds: Bearer) -> Caller:
    """A FastAPI dependency of ``POST /events``: the write key, or the public key within its
    limits (event types, events a request, requests a minute per client address).

    Raises
    ------
    HTTPException
        401 without a key; 429 with ``Retry-After`` over the public rate; 403 when a public
        post has too many events or a type the public key may not post.
    """
    role = _role(request, creds)
    if role is None:
        raise _unauthorized(
            "POST /events needs the write key or the web app's public key: send "
            f"'Authorization: Bearer <key>' ({_where('write_key')})."
        )
    if role == "public":
        guard = guard_of(request)
        client = request.client.host if request.client else "unknown"
        wait = guard.limiter.wait_s(client)
        if wait > 0:
            raise HTTPException(
                429,
                f"Too many event posts with the public key from {client}: at most "
                f"{guard.serve.public_rate_per_min} a minute (serve.public_rate_per_min). "
                "Retry later.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        _check_public_events(await _json_or_none(request), guard.serve.public_max_events)
    return Caller(role)


async def _json_or_none(request: Request) -> Any:
    """The JSON body (FastAPI parsed and cached it already), or None when it is not JSON."""
    try:
        return await request.json()
    except ValueError:
        return None


def _check_public_events(body: Any, most: int) -> None:
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        return  # not a batch: validation answers 422
    if len(events) > most:
        raise HTTPException(
            403,
            f"The public key may post at most {most} events a request "
            f"(serve.public_max_events). Got {len(events)}: send fewer, or use the write key.",
        )
    bad = sorted({str(e.get("type")) for e in events if isinstance(e, dict)} - PUBLIC_EVENT_TYPES)
    if bad:
        allowed = ", ".join(sorted(PUBLIC_EVENT_TYPES))
        raise HTTPException(
            403,
            f"The public key may post only events of the types {allowed}. Got {bad[:5]}: "
            "post those with the write key.",
        )


async def require_board_writer(request: Request, creds: Bearer, cookie: Cookie) -> Caller:
    """A FastAPI dependency of board writes: the write key, or a shopper's session cookie sent
    from this server's own pages (the route then checks the board is the shopper's).

    Raises
    ------
    HTTPException
        401 without a key or a valid session; 403 with the public key, or a cookie sent from
        another site.
    """
    role = _role(request, creds)
    if role == "public":
        raise HTTPException(
            403, "The public key may not write boards: a shopper's session or the write key may."
        )
    if role is not None:
        return Caller(role)
    user = guard_of(request).keys.session_user(cookie)
    if user is None:
        raise _unauthorized(
            "Writing a board needs its owner's session (the web app's pages set it) or the "
            f"write key: send 'Authorization: Bearer <key>' ({_where('write_key')})."
        )
    _check_same_origin(request)
    return Caller("shopper", user)


def _check_same_origin(request: Request) -> None:
    """Refuse a cookie-authenticated write that another site's page made the browser send."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise HTTPException(
                403, f"A board write from another site is refused (Sec-Fetch-Site: {site})."
            )
        return
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "A board write from another origin is refused.")


async def require_json(request: Request) -> None:
    """A FastAPI dependency of JSON routes: the body must be sent as ``application/json``.

    Raises
    ------
    HTTPException
        415 for any other content type (e.g. a cross-site ``text/plain`` form post).
    """
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    if mime != "application/json" and not (
        mime.startswith("application/") and mime.endswith("+json")
    ):
        raise HTTPException(
            415,
            f"This route takes a JSON body: send it with 'Content-Type: application/json'. "
            f"Got {ctype[:100]!r} instead.",
        )


# ---- the web app's shopper ------------------------------------------------------------------


def shopper_of(request: Request) -> tuple[str, str | None]:
    """The web app's shopper: ``(user_id, cookie to set)``; a new ``anon-<hex>`` id (and its
    signed cookie) when the request carries no valid session."""
    keys = guard_of(request).keys
    user = keys.session_user(request.cookies.get(SESSION_COOKIE))
    if user is not None:
        return user, None
    user = "anon-" + secrets.token_hex(8)
    return user, keys.sign_session(user)
