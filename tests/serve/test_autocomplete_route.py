"""``GET /autocomplete`` on the mini engine's build, over HTTP, and its search box in a browser.

One ``moodboard serve`` subprocess over a copy of the mini engine (whose build learned the
completions from its simulated search log) answers the API tests and the browser test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import chromium, serve_process

from moodboard.ingest import Workspace


@pytest.fixture(scope="module")
def base(served_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("ac-log") / "server.log"
    with serve_process(served_ws.root, log) as (url, _):
        yield url


def _ask(base: str, **params: object) -> httpx.Response:
    return httpx.get(f"{base}/autocomplete", params=params, timeout=10)


def test_a_prefix_gets_ranked_completions_that_start_with_it(base: str) -> None:
    r = _ask(base, q="dre")
    assert r.status_code == 200, r.text
    body = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    texts = [c["text"] for c in body["completions"]]
    assert 1 <= len(texts) <= 8 and all(t.startswith("dre") for t in texts), texts
    assert len({" ".join(t.split()[:2]) for t in texts}) == len(texts)  # one per head
    assert len(_ask(base, q="s", k=3).json()["completions"]) == 3
    assert _ask(base, q="dre").json()["request_id"] != body["request_id"]
    typo = [c["text"] for c in _ask(base, q="drse").json()["completions"]]
    assert typo and typo[0].startswith("dres"), typo


def test_blank_long_and_hostile_prefixes_get_clean_answers(base: str) -> None:
    for blank in ("", "   ", "\t"):
        r = _ask(base, q=blank)
        assert r.status_code == 200 and r.json()["completions"] == [], r.text
    assert _ask(base).json()["completions"] == []  # no q at all
    r = _ask(base, q="a" * 101)
    assert r.status_code == 422 and "at most 100 characters" in r.json()["detail"]
    assert _ask(base, q="a" * 20_000).status_code == 422
    for hostile in ("\x00\x1b[31mdre", "dre\u202e\u0000", "🙂🙂", "%00", "' OR 1=1 --"):
        r = _ask(base, q=hostile)
        assert r.status_code == 200, (hostile, r.text)
    for raw in ("%FF%FEdre", "%ED%B3%BF", "%C0%AF"):  # bytes that are not UTF-8
        r = httpx.get(f"{base}/autocomplete?q={raw}", timeout=10)
        assert r.status_code in (200, 422), (raw, r.text)
    for k in (0, 21, -1, "x", 10**30):
        r = _ask(base, q="dre", k=k)
        assert r.status_code == 422 and "k" in r.json()["detail"], (k, r.text)


def test_an_unknown_user_is_served_as_anonymous(base: str) -> None:
    anonymous = _ask(base, q="sh").json()["completions"]
    assert _ask(base, q="sh", user="nobody-we-know").json()["completions"] == anonymous
    assert _ask(base, q="sh", user=" ").json()["completions"] == anonymous
    assert _ask(base, q="sh", user="u" * 201).status_code == 422


@pytest.mark.browser
def test_typing_dre_and_picking_a_completion_with_the_keyboard_searches_it(
    base: str, tmp_path: Path
) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.goto(base + "/")
        box = page.locator("#search-q")
        box.click()
        box.press_sequentially("dre", delay=30)
        # the list of what was typed (a slow machine may first show the list of "d", asked
        # when the next key came more than the debounce later; it is then replaced)
        page.wait_for_function(
            "() => { const o = document.querySelector('#ac-list:not([hidden]) #ac-option-0');"
            " return o !== null && o.textContent.startsWith('dre'); }"
        )
        assert box.get_attribute("aria-expanded") == "true"
        box.press("ArrowDown")
        box.press("ArrowDown")
        chosen = page.locator("#ac-option-1")
        assert chosen.get_attribute("aria-selected") == "true"
        assert box.get_attribute("aria-activedescendant") == "ac-option-1"
        box.press("ArrowUp")
        text = page.locator("#ac-option-0").text_content()
        assert text and text.startswith("dre")
        box.press("Enter")
        page.wait_for_url(re.compile(r"/s\?q="))
        page.wait_for_selector("#grid .pin")
        assert page.locator("#search-q").input_value() == text
        box = page.locator("#search-q")
        box.press_sequentially(" x", delay=30)
        box.press("Escape")
        assert page.locator("#ac-list").is_hidden()
