"""The web app's HTML pages: server-rendered shells that ``static/app.js`` fills from the API.

The JSON API's app factory includes ``router`` and calls ``mount_static(app)``; every asset is
served from the package (no CDN). Each page names its shopper: a signed session cookie (set on
the first visit, ``anon-<hex>``) lets the shopper write their own boards, and the page carries
the server's public key, with which ``app.js`` posts the shopper's events.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from moodboard.serve.auth import SESSION_COOKIE, guard_of, shopper_of
from moodboard.ui import STATIC_DIR, TEMPLATES_DIR

_log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _asset_version() -> str:
    """A short hash of the static files, appended to their URLs so browsers never mix versions."""
    h = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


templates.env.globals["asset_version"] = _asset_version()


def mount_static(app: FastAPI) -> None:
    """Serve ``ui/static`` at ``/static`` (named ``static`` for ``url_for``)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


#: How long the shopper's session cookie lasts (a year from the first visit).
SESSION_MAX_AGE_S = 365 * 24 * 3600


def _page(request: Request, template: str, page: str, **context: object) -> HTMLResponse:
    user, cookie = shopper_of(request)
    public_key = guard_of(request).keys.public.get_secret_value()
    demo = request.app.state.settings.serve.demo_mode
    context = {"page": page, "user": user, "public_key": public_key, "demo": demo, **context}
    response = templates.TemplateResponse(request, template, context)
    response.headers["Cache-Control"] = "no-store"  # it names the shopper
    if cookie is not None:
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/")
def home_page(request: Request) -> HTMLResponse:
    """The shopper's feed as rows of modules and a grid (in demo mode, of the shopper the
    visitor picks to shop as)."""
    return _page(request, "home.html", "home")


@router.get("/s")
def search_page(request: Request, q: Annotated[str, Query(max_length=500)] = "") -> HTMLResponse:
    """Search results for ``q``."""
    return _page(request, "search.html", "search", q=q)


@router.get("/p/{item_id:path}")
def product_page(
    request: Request, item_id: Annotated[str, Path(min_length=1, max_length=500)]
) -> HTMLResponse:
    """One product, a Save control and related products."""
    return _page(request, "product.html", "product", item_id=item_id)


@router.get("/visual")
def visual_page(request: Request) -> HTMLResponse:
    """Photo upload with an optional crop, and visually similar products."""
    return _page(request, "visual.html", "visual")


@router.get("/boards")
def boards_page(request: Request) -> HTMLResponse:
    """The browser's user's boards."""
    return _page(request, "boards.html", "boards")


@router.get("/b/{board_id}")
def board_page(
    request: Request, board_id: Annotated[str, Path(min_length=1, max_length=100)]
) -> HTMLResponse:
    """One board's items and more ideas for it."""
    return _page(request, "board.html", "board", board_id=board_id)
