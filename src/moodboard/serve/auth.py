"""Who may call what: bearer keys, the web app's public key and its shopper's session cookie.

======================================================  ========================================
routes                                                  who
======================================================  ========================================
reads, ``/healthz``, web pages, static files            anyone
``POST /events``                                        write key, or the public key (limited)
``POST /boards``, ``POST /boards/{id}/items``           the board's owner (cookie) or write key
``/admin/*``, ``/metrics``                              admin key (``/metrics`` open when
                                                        ``serve.public_metrics``)
``/dashboard*`` (operator pages)                        admin key, as a bearer key or once as
                                                        ``?key=`` (then an operator cookie)
======================================================  ========================================

The admin key works wherever the write key does. Keys are sent as ``Authorization: Bearer
<key>`` and compared in constant time; a key not configured in ``serve.*`` is generated once
into ``<workspace>/serve-keys.json`` (mode 0600) and reused. No key is ever logged: the
settings hold them as ``SecretStr`` and only the file's path is printed.

Each right is a FastAPI dependency (``require_admin``, ``require_operator``,
``require_event_writer``, ``require_board_writer``, ``require_metrics_reader``,
``require_json``): 401 with
``WWW-Authenticate: Bearer`` when no or an unknown key is sent, 403 when a valid key lacks the
right. Generated keys and the cookie's signature live in ``moodboard.serve.keys``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from moodboard.config import ServeSettings
from moodboard.serve.keys import KEYS_FILE, Keys, RateLimiter, Role

_log = logging.getLogger(__name__)

#: The web app's signed shopper cookie.
SESSION_COOKIE = "moodboard_session"
#: The operator pages' cookie (a signed expiry, set when the admin key is sent as ``?key=``).
OPERATOR_COOKIE = "moodboard_operator"
#: How long an operator's browser stays signed in to the operator pages.
OPERATOR_MAX_AGE_S = 12 * 3600
#: Where the operator pages live (the operator cookie's path).
OPERATOR_PATH = "/dashboard"
#: Event types the public key may post.
PUBLIC_EVENT_TYPES = frozenset({"search", "click", "save", "add_to_cart", "purchase", "hide"})
_WHERE = "serve.{name}, or the generated <workspace>/" + KEYS_FILE

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


def operator_token(admin_key: str, expires: int) -> str:
    """The operator cookie's value: an expiry (unix seconds) and its MAC under the admin key
    (a new admin key signs every operator out)."""
    msg = b"moodboard-operator\0" + str(expires).encode()
    return f"{expires}.{hmac.new(admin_key.encode(), msg, hashlib.sha256).hexdigest()}"


def _operator_cookie_ok(request: Request) -> bool:
    value = request.cookies.get(OPERATOR_COOKIE) or ""
    expires, _, _mac = value.partition(".")
    if not expires.isdigit() or len(value) > 200 or int(expires) < time.time():
        return False
    admin = guard_of(request).keys.admin.get_secret_value()
    return hmac.compare_digest(value.encode(), operator_token(admin, int(expires)).encode())


async def require_operator(
    request: Request,
    creds: Bearer,
    key: Annotated[
        str | None,
        Query(max_length=200, description="The admin key, once: the page then sets a cookie."),
    ] = None,
) -> Caller:
    """A FastAPI dependency of the operator pages (``/dashboard*``): the admin key, in a way a
    browser can send it.

    The key is accepted as ``Authorization: Bearer <key>`` (scripts), or once as ``?key=<key>``:
    the answer is then a 303 to the same page without the key in its URL, setting an HttpOnly
    operator cookie (an expiry signed with the admin key, ``OPERATOR_MAX_AGE_S``) that the
    browser sends to every operator page after.

    Raises
    ------
    HTTPException
        401 without a key or a valid operator cookie, or with an unknown key; 403 with a key
        that is not the admin key; 303 (the redirect that sets the cookie) for ``?key=``.
    """
    role = _role(request, creds)
    if role is None and key is not None:
        role = guard_of(request).keys.role_of(key)
        if role is None:
            raise _unauthorized(
                f"The key sent is not a key of this server (see {_where('admin_key')})."
            )
        if role == "admin":
            expires = int(time.time()) + OPERATOR_MAX_AGE_S
            token = operator_token(guard_of(request).keys.admin.get_secret_value(), expires)
            secure = "; Secure" if request.url.scheme == "https" else ""
            cookie = (
                f"{OPERATOR_COOKIE}={token}; Max-Age={OPERATOR_MAX_AGE_S}; Path={OPERATOR_PATH}; "
                f"HttpOnly; SameSite=lax{secure}"
            )
            raise HTTPException(
                303,
                "Signed in to the operator pages: continue without the key in the URL.",
                headers={
                    "Location": request.url.path,
                    "Set-Cookie": cookie,
                    "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer",
                },
            )
    if role is None:
        if _operator_cookie_ok(request):
            return Caller("admin")
        raise _unauthorized(
            f"The operator pages need the admin key: open {OPERATOR_PATH}?key=<admin key> once "
            f"in the browser, or send 'Authorization: Bearer <key>' ({_where('admin_key')})."
        )
    if role != "admin":
        raise HTTPException(403, f"The operator pages need the admin key; the {role} key may not.")
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
