"""The web app in a real browser (Debian chromium) against `moodboard serve` on real products.

A shopper searches, opens a result, sees related products and saves the product to a new
board; the click and the save must reach the workspace's event log, joined to the search
page by its request id. A demo visitor shops as a simulated shopper and sees their home page:
rows of modules, then a grid whose top row holds the first ranks, on a desktop and a phone.
The browser waits only on selectors, URLs and page conditions (no fixed sleeps); the event
log is polled until a deadline.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from serving import chromium, serve_process

from mini import share_embeddings
from moodboard.build import build
from moodboard.config import SimulateSettings
from moodboard.datasets import load_fashion
from moodboard.ingest import Workspace, all_events, ingest_catalog
from moodboard.simulate import run_simulation

pytestmark = pytest.mark.browser
#: The server setting of how spread a broad query's intent is (effective categories).
BROAD_AT = "MOODBOARD_SURFACES__SEARCH__MODULES__MIN_CATEGORIES"

IMAGES_LOADED = """n => {
    const imgs = [...document.querySelectorAll('#grid .pin img')].slice(0, n);
    return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
#: The grid's (rank, title) pairs: the masonry places pins column by column, so document order
#: is not rank order.
RANKED = "ps => ps.map(p => [+p.dataset.position, p.querySelector('.pin-title').textContent])"
# Multipart bodies with a file are invisible to playwright's request events: record the form
# fields (file fields by name) as the page hands them to fetch.
RECORD_FORMS = """
window.sentForms = [];
const realFetch = window.fetch;
window.fetch = (url, opts = {}) => {
    if (opts.body instanceof FormData) {
        window.sentForms.push(Object.fromEntries(
            [...opts.body].map(([k, v]) => [k, typeof v === "string" ? v : v.name])));
    }
    return realFetch(url, opts);
};
"""


@pytest.fixture(scope="module")
def web_ws(mini_engine: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """About 300 real fashion products (every dress, red tops and shoes, some others), a few
    simulated shoppers and one build: a private workspace this server may write to. Most of
    its products are in the mini engine, whose embeddings it reuses."""
    t = load_fashion().products
    kinds = t.column("articleType").to_pylist()
    colours = t.column("baseColour").to_pylist()
    dresses = [i for i, a in enumerate(kinds) if a == "Dresses"]
    red = [i for i, (a, c) in enumerate(zip(kinds, colours, strict=True)) if c == "Red"]
    others = [i for i, a in enumerate(kinds) if a in ("Tops", "Heels", "Handbags")]
    keep = sorted(set(dresses) | set(red[:120]) | set(others[:150]))
    ws = Workspace(tmp_path_factory.mktemp("web") / "ws")
    assert ingest_catalog(ws, [t.take(keep)]).quarantined == 0
    run_simulation(ws, SimulateSettings(users=30, days=1))
    share_embeddings(mini_engine, ws)
    build(ws)
    return ws


@pytest.fixture(scope="module")
def server(web_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moodboard serve`` as a subprocess, in demo mode (as ``make demo``); yields its URL."""
    log = tmp_path_factory.mktemp("web-log") / "server.log"
    # a catalog of few categories: a query spread over 3 of them is broad here
    env = {"MOODBOARD_SERVE__DEMO_MODE": "1", BROAD_AT: "3"}
    with serve_process(web_ws.root, log, env=env) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught script errors of the page under test (must stay empty)."""
    return []


@pytest.fixture
def page(browser: Any, server: str, page_errors: list[str]) -> Iterator[Any]:
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    pg = context.new_page()
    pg.on("pageerror", lambda e: page_errors.append(str(e)))
    yield pg
    context.close()


def _logged(ws: Workspace) -> list[dict[str, Any]]:
    """Every event of the workspace: the Parquet log plus the write-ahead log's segments."""
    return all_events(ws).to_pylist()


def _wait_for_event(ws: Workspace, timeout_s: float = 10, **match: Any) -> dict[str, Any]:
    """The first logged event whose fields equal ``match``, polled until a deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _logged(ws)
        found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            pytest.fail(f"no event {match} among {len(rows)} logged events")
        time.sleep(0.1)


def test_search_open_related_and_save_to_a_new_board(
    page: Any, page_errors: list[str], web_ws: Workspace
) -> None:
    page.goto("/")
    page.wait_for_selector("#grid .pin")  # the popular grid
    page.fill("header input[name=q]", "red dress")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/s\?q=red\+dress$"))
    page.wait_for_selector("#grid[aria-busy=false] .pin")

    pins = page.locator("#grid .pin")
    assert pins.count() >= 8
    titles = [t.lower() for _, t in sorted(page.eval_on_selector_all("#grid .pin", RANKED))[:8]]
    assert all("dress" in t or "red" in t for t in titles), titles
    assert any("dress" in t and "red" in t for t in titles[:3]), titles
    page.wait_for_function(IMAGES_LOADED, arg=6)

    first = pins.first
    item_id = first.get_attribute("data-id")
    search_request = first.get_attribute("data-request-id")
    title = first.locator(".pin-title").text_content()
    assert item_id and search_request and first.get_attribute("data-position") == "1"
    first.click()

    page.wait_for_url(f"**/p/{item_id}")
    page.wait_for_selector("#product[aria-busy=false]")
    assert page.text_content("#product-title") == title
    page.wait_for_function("() => document.getElementById('product-img').naturalWidth > 0")
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    related = page.locator("#grid .pin")
    assert related.count() >= 4
    assert item_id not in [related.nth(i).get_attribute("data-id") for i in range(related.count())]
    assert related.first.get_attribute("data-surface") == "related"
    page.wait_for_function(IMAGES_LOADED, arg=4)

    page.select_option("#save-board", "__new__")
    page.fill("#save-new-title", "Red dresses")
    page.click("#save-button")
    page.wait_for_selector("#saved-link")
    board_id = page.get_attribute("#saved", "data-board-id")
    assert board_id

    # The click carries the search page's request id; the server logged the save itself,
    # attributed to the same page (the product page remembers where the shopper came from).
    click = _wait_for_event(web_ws, type="click", item_id=item_id, request_id=search_request)
    assert click["surface"] == "search" and click["position"] == 1
    save = _wait_for_event(web_ws, type="save", item_id=item_id, board_id=board_id)
    assert save["request_id"] == search_request
    _wait_for_event(web_ws, type="impression", item_id=item_id, request_id=search_request)
    saves = [e for e in _logged(web_ws) if e["type"] == "save" and e["item_id"] == item_id]
    assert len(saves) == 1  # the UI leaves the save event to the server

    page.click("#saved-link")
    page.wait_for_url(f"**/b/{board_id}")
    page.wait_for_selector(f"#board-items .pin[data-id='{item_id}']")
    assert page.text_content("#board-title") == "Red dresses"
    page.wait_for_selector("#grid[aria-busy=false] .pin")  # more ideas

    page.click("#nav-boards")
    page.wait_for_selector(f".board-card[data-id='{board_id}']")
    assert not page_errors


def test_visual_search_sends_the_crop_in_original_pixels(
    page: Any, page_errors: list[str], server: str, tmp_path: Path
) -> None:
    from PIL import Image

    item = httpx.get(f"{server}/search", params={"q": "red dress", "k": 1}).json()["items"][0]
    raw = httpx.get(f"{server}{item['image_url']}").content
    photo = tmp_path / "photo.png"  # upscaled 4x: the preview shows it smaller than it is
    img = Image.open(io.BytesIO(raw)).convert("RGB")
    img.resize((img.width * 4, img.height * 4)).save(photo)
    width, height = img.width * 4, img.height * 4

    page.add_init_script(RECORD_FORMS)
    page.goto("/visual")
    page.set_input_files("#visual-file", str(photo))
    page.wait_for_function("() => document.getElementById('visual-preview').naturalWidth > 0")
    box = page.locator("#visual-preview").bounding_box()
    assert box["width"] < width  # displayed scaled down
    page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.9 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    page.wait_for_selector("#crop-box:not([hidden])")

    page.click("#visual-submit")
    page.wait_for_function("() => window.sentForms.length === 1")
    sent = page.evaluate("() => window.sentForms[0]")
    assert sent["image"] == "photo.png" and sent["user"].startswith("anon-")
    x, y, w, h = map(int, sent["crop"].split(","))
    tol = 2 * width / box["width"]
    assert abs(x - 0.1 * width) <= tol and abs(w - 0.8 * width) <= tol, (x, w, width)
    assert abs(y - 0.2 * height) <= tol and abs(h - 0.5 * height) <= tol, (y, h, height)

    page.wait_for_selector("#grid[aria-busy=false] .pin")
    assert page.locator("#grid .pin").first.get_attribute("data-surface") == "visual"
    page.wait_for_function(IMAGES_LOADED, arg=4)

    page.click("#visual-clear")  # the whole photo: the product itself comes first
    page.click("#visual-submit")
    page.wait_for_function("() => window.sentForms.length === 2")
    assert "crop" not in page.evaluate("() => window.sentForms[1]")
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    assert page.locator("#grid .pin").first.get_attribute("data-id") == item["id"]
    assert not page_errors


#: Where the README's screenshots of the home page are saved, when
#: ``MOODBOARD_UPDATE_SCREENSHOTS=1`` asks to refresh them (otherwise a test run writes them to
#: a temporary folder and leaves the tree clean).
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
#: The grid's pins by their place on screen: (data-position, x, y, column).
PIN_BOXES = """() => [...document.querySelectorAll('#grid .col')].flatMap((col, c) =>
    [...col.querySelectorAll('.pin')].map(p => {
        const r = p.getBoundingClientRect();
        return [Number(p.dataset.position), r.x, r.y, c];
    }))"""


def _save_png(page: Any, name: str, height: int, scratch: Path) -> None:
    """The top ``height`` px of the whole page, as a palette PNG (small): in ``docs/img`` with
    ``MOODBOARD_UPDATE_SCREENSHOTS=1``, else in ``scratch``."""
    from PIL import Image

    width = page.viewport_size["width"]
    shot = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
    folder = DOCS_IMG if os.environ.get("MOODBOARD_UPDATE_SCREENSHOTS") == "1" else scratch
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=192)
    img.save(folder / name, optimize=True)
    assert Image.open(folder / name).size == (width, height)


def _top_row_holds_the_first_ranks(page: Any) -> int:
    """The grid's columns; its top row (the first pin of each column, left to right) must be
    the grid's first ranks in order."""
    boxes = page.evaluate(PIN_BOXES)
    columns = page.locator("#grid .col").count()
    assert len(boxes) > 2 * columns
    ranks = sorted(b[0] for b in boxes)
    top = sorted(
        (b for b in boxes if b[2] == min(x[2] for x in boxes if x[3] == b[3])), key=lambda b: b[1]
    )
    assert [b[0] for b in top] == ranks[:columns], (top, ranks[: 2 * columns])
    return columns


def test_a_demo_visitor_shops_as_a_shopper_and_sees_module_rows(
    page: Any, page_errors: list[str], server: str, tmp_path: Path
) -> None:
    shoppers = httpx.get(f"{server}/demo/shoppers", params={"k": 5}).json()["shoppers"]
    assert shoppers and all(s["history"] > 0 for s in shoppers)
    page.goto("/")
    page.wait_for_selector("#shop-as:not([hidden])")
    page.wait_for_selector("#grid[aria-busy=false] .pin")  # the visitor's own (cold) feed
    who = shoppers[0]["id"]
    with page.expect_response(lambda r: f"/feed/{who}" in r.url and "modules=1" in r.url) as res:
        page.select_option("#shop-as-select", who)
    served = res.value.json()
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    assert page.text_content("#home-title") == f"For {who}"
    assert page.input_value("#shop-as-select") == who

    rows = page.locator("#modules .module")
    assert rows.count() == len(served["modules"]) >= 2
    for j, row in enumerate(served["modules"]):
        shown = rows.nth(j)
        assert shown.locator(".module-title").text_content() == row["title"]
        ids = [served["items"][i]["id"] for i in range(row["start"], row["end"])]
        assert [p.get_attribute("data-id") for p in shown.locator(".pin").all()] == ids
    page.wait_for_function(IMAGES_LOADED, arg=4)
    assert _top_row_holds_the_first_ranks(page) >= 4  # 1280 px: a column per ~200 px
    _save_png(page, "home-modules.png", 1500, tmp_path)

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.querySelectorAll('#grid .col').length === 2")
    for sel in (
        "header .logo",
        "header input[name=q]",
        "header button",
        "#nav-visual",
        "#nav-boards",
    ):
        box = page.locator(sel).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (sel, box)
        assert page.locator(sel).is_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert _top_row_holds_the_first_ranks(page) == 2
    _save_png(page, "home-phone.png", 1400, tmp_path)
    assert not page_errors


def test_a_refinement_chip_opens_the_refined_search_with_its_facet_applied(
    page: Any, page_errors: list[str], server: str, web_ws: Workspace
) -> None:
    page.goto("/s?q=dresses")
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    chip = page.locator("#chips a.chip[data-filter]").first
    chip.wait_for()
    facet, value = chip.get_attribute("data-filter").split(":", 1)
    assert chip.text_content() == value
    page.wait_for_selector("#related-searches:not([hidden]) #related-list a")
    with page.expect_response(lambda r: "/search?" in r.url and "filter=" in r.url) as searched:
        chip.click()
    page.wait_for_url(re.compile(r"/s\?q=.+&filter="))
    assert searched.value.status == 200
    sent = parse_qs(urlsplit(searched.value.request.url).query)
    assert sent["filter"] == [f"{facet}:{value}"]
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    assert value in page.text_content("#applied")
    shown = page.eval_on_selector_all("#grid .pin", "ps => ps.map(p => p.dataset.id)")
    assert shown
    for item_id in shown[:6]:
        product = httpx.get(f"{server}/products/{item_id}").json()
        assert product["attributes"][facet] == value
    # the refined search is logged with how the shopper reached it (search analytics)
    query = parse_qs(urlsplit(page.url).query)["q"][0]
    logged = _wait_for_event(web_ws, type="search", query=query)
    assert json.loads(logged["props"])["via"] == "chip"
    assert not page_errors


def test_a_broad_query_shows_rows_of_sub_searches_above_the_grid(
    page: Any, page_errors: list[str]
) -> None:
    # "summer" spans tops, dresses, shoes and bags here ("party" no longer does: with the
    # products' looks searched too, its first results are mostly dresses, so it gets a grid)
    page.goto("/s?q=summer")
    page.wait_for_selector("#modules section.module[data-kind=search] .pin")
    rows = page.eval_on_selector_all(
        "#modules section.module",
        "ss => ss.map(s => [s.querySelector('.module-title').textContent,"
        " s.querySelectorAll('.pin').length])",
    )
    assert len(rows) >= 2 and all(n >= 1 for _, n in rows), rows
    assert page.is_visible("#grid-title")
    link = page.locator("#modules .module-title a").first
    title = link.text_content()
    link.click()  # the row's title opens its whole sub-search
    page.wait_for_url(re.compile(r"/s\?q=.+&via=module"))
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    assert title.lower() in page.text_content("h1").lower()
    assert not page_errors


def test_a_photo_of_several_products_shows_each_as_a_box_with_its_row_and_takes_words(
    page: Any, page_errors: list[str], server: str, tmp_path: Path
) -> None:
    from PIL import Image

    from moodboard.understand.composites import cutout

    # three products of different kinds pasted side by side on a grey backdrop: a photo of a look
    photo = Image.new("RGB", (720, 400), (128, 132, 138))
    for j, q in enumerate(("dress", "handbag", "heels")):
        item = httpx.get(f"{server}/search", params={"q": q, "k": 1}).json()["items"][0]
        shot = Image.open(io.BytesIO(httpx.get(f"{server}{item['image_url']}").content))
        cut = cutout(shot)
        assert cut is not None
        part = Image.fromarray(cut.rgb)
        mask = Image.fromarray(cut.mask.astype("uint8") * 255)
        photo.paste(part, (20 + 240 * j, (400 - part.height) // 2), mask)
    path = tmp_path / "look.jpg"
    photo.save(path, quality=92)

    page.add_init_script(RECORD_FORMS)
    page.goto("/visual")
    page.set_input_files("#visual-file", str(path))
    page.wait_for_function("() => document.getElementById('visual-preview').naturalWidth > 0")
    page.click("#visual-submit")
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    boxes = page.locator("#object-boxes .object-box")
    boxes.first.wait_for()
    assert boxes.count() >= 2  # the products in the photo, drawn over it
    # each box sits on the photo as displayed (the server's boxes are in the upload's pixels)
    shown = page.locator("#visual-preview").bounding_box()
    for i in range(boxes.count()):
        b = boxes.nth(i).bounding_box()
        assert b["x"] >= shown["x"] - 1 and b["x"] + b["width"] <= shown["x"] + shown["width"] + 1
    assert page.locator("#object-row").is_hidden()
    boxes.nth(1).click()  # a click on a box is not a crop: it opens that object's row
    page.wait_for_selector("#object-row:not([hidden]) .module-row .pin")
    assert "selected" in (boxes.nth(1).get_attribute("class") or "")
    assert page.locator("#crop-box").is_hidden()
    row = page.locator("#object-row .pin")
    assert row.first.get_attribute("data-surface") == "visual"

    page.fill("#visual-text", "in red")  # words refine the photo
    page.click("#visual-submit")
    page.wait_for_function("() => window.sentForms.length === 2")
    sent = page.evaluate("() => window.sentForms[1]")
    assert sent["text"] == "in red" and "crop" not in sent
    page.wait_for_selector("#grid[aria-busy=false] .pin")
    assert not page_errors
