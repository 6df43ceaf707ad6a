"""Turning a surface's ranked candidates into the JSON page, and logging it as impressions.

Every page served is logged as one ``impression`` event per item (surface, position, request
id, propensity), so a later click or save that carries the ``request_id`` joins to it. Its
``props`` carry what the ranker learns from (``page_props``): the item's retrieval sources
and its scores, ``{"sources": ["lexical/bm25", ...], "scores": {"bm25": 1.5, ...}}``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from moodboard.data import Candidates, Catalog
from moodboard.rank.rows import candidate_props
from moodboard.surfaces.compose import CASCADE
from moodboard.surfaces.modules import (
    AMONG,
    EXPLORED,
    LAYOUT_COLUMNS,
    MODULE,
    PROPENSITY,
    ROW,
    mask_members,
)
from moodboard.surfaces.page import page_score


def image_url(catalog: Catalog, i: int, item_id: str | None = None) -> str | None:
    """Where the web app fetches item ``i``'s image: a local file is served by ``/images``."""
    img = catalog.image[i]
    if not img:
        return None
    if str(img).startswith(("http://", "https://")):
        return str(img)
    item_id = item_id if item_id is not None else catalog.ids.external([i])[0]
    return f"/images/{quote(item_id, safe='')}" if Path(img).is_file() else None


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def item_json(catalog: Catalog, i: int) -> dict[str, Any]:
    """The public fields of item ``i``."""
    item_id = catalog.ids.external([i])[0]
    return {
        "id": item_id,
        "title": catalog.title[i],
        "image_url": image_url(catalog, i, item_id),
        "price": _num(catalog.price[i]),
        "category": catalog.category[i],
        "brand": catalog.brand[i],
    }


class ItemCards:
    """``item_json`` of a catalog, computed once per item (the page's hot path).

    Parameters
    ----------
    catalog
        The live catalog (immutable for the life of an artifact version).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._memo: dict[int, dict[str, Any]] = {}

    def __call__(self, i: int) -> dict[str, Any]:
        """The public fields of item ``i`` (do not mutate the result)."""
        card = self._memo.get(i)
        if card is None:
            card = self._memo[i] = item_json(self.catalog, i)
        return card


def build_page(
    cards: Callable[[int], dict[str, Any]],
    cand: Candidates,
    *,
    surface: str,
    request_id: str,
    cursor: int,
    k: int,
    explain: bool = False,
    timings_ms: Mapping[str, float] | None = None,
    features: Callable[[Candidates], dict[str, np.ndarray]] | None = None,
    stages: Sequence[Mapping[str, Any]] = (),
    modules: Sequence[Any] = (),
) -> dict[str, Any]:
    """The page JSON of items ``cursor .. cursor + k`` of ``cand``.

    A surface that lays its page out in modules (its candidates carry a ``module`` column)
    gets a ``modules`` key: the rows of the page as ranges of ``items``, ``[{"id", "title",
    "kind", "start", "end", "propensity", "row", "among"}]`` (``end`` exclusive; a row cut by
    the page's edges is cut the same way; ``row``: the policy's row; ``among``: the ids of
    the candidate modules the policy drew among, in its order), the items outside them being
    the grid.

    Parameters
    ----------
    cards
        Item index -> its public fields (``ItemCards``).
    cand
        The surface's ranked candidates (page order).
    surface, request_id
        Echoed on the page and on every impression.
    cursor, k
        Offset and page size.
    explain
        Add each item's sources, scores and features, and the stage timings.
    timings_ms
        Stage timings of the surface.
    features
        ``candidates -> {feature: values}`` for ``explain``.
    stages
        The chain's stages as they ran (``{"name", "component", "ms"}``), for ``explain``.
    modules
        The candidate modules the ``module`` column indexes (``surfaces.modules.Module``).
    """
    page = cand.take(np.arange(cursor, min(cursor + k, len(cand))))
    scores = page_score(page)
    items = []
    feats = features(page) if explain and features is not None and len(page) else {}
    drawn = policy_columns(page)
    for j, i in enumerate(page.items.tolist()):
        row = cards(i) | {"score": _num(scores[j]), "position": cursor + j + 1}
        row |= {name: values[j] for name, values in drawn.items()}
        if explain:
            src = page.sources[j] if len(page.sources) else ""
            row["explain"] = {
                "sources": [s for s in str(src or "").split("+") if s],
                "scores": {n: _num(v[j]) for n, v in page.scores.items()},
                "features": {n: _num(v[j]) for n, v in feats.items()},
            }
        items.append(row)
    out: dict[str, Any] = {
        "request_id": request_id,
        "surface": surface,
        "items": items,
        "next_cursor": str(cursor + k) if len(cand) > cursor + k else None,
    }
    if MODULE in page.scores:
        out["modules"] = module_rows(page, modules)
    if explain:
        out["timings_ms"] = {n: round(v, 3) for n, v in (timings_ms or {}).items()}
        out["explain"] = {"stages": [dict(st) for st in stages]}
    return out


def module_rows(page: Candidates, modules: Sequence[Any]) -> list[dict[str, Any]]:
    """The runs of a page's items that share a module, as ranges of the page's items."""
    m, p = page.score(MODULE), page.score(PROPENSITY)
    row_of, among = page.score(ROW), page.score(AMONG)
    rows: list[dict[str, Any]] = []
    j = 0
    while j < len(page):
        end = j + 1
        if not np.isnan(m[j]):
            while end < len(page) and m[end] == m[j]:
                end += 1
            spec = modules[int(m[j])]
            row = {"id": spec.id, "title": spec.title, "kind": spec.kind, "start": j, "end": end}
            if spec.query:
                row["query"] = spec.query
            ids = [modules[i].id for i in mask_members(among[j])]
            row |= {"propensity": round(float(p[j]), 6), "row": int(row_of[j]), "among": ids}
            rows.append(row)
        j = end
    return rows


def policy_columns(page: Candidates) -> dict[str, list[Any]]:
    """What a page drawn by a policy (its candidates carry ``propensity``: modules,
    ``blend/compose``) says of each item: ``propensity`` (1 where nothing was drawn, e.g. a
    fallback item), ``explored`` and, with explore slots, ``propensity_cascade``; nothing for
    a deterministic page."""
    if PROPENSITY not in page.scores:
        return {}
    ones = np.ones(len(page))
    explored = np.nan_to_num(page.scores.get(EXPLORED, ones * 0)) > 0
    out: dict[str, list[Any]] = {EXPLORED: [bool(e) for e in explored]}
    for name in (PROPENSITY, CASCADE):
        if name in page.scores:
            p = page.score(name)
            out[name] = [_probability(x) for x in np.where(np.isnan(p), ones, p)]
    return out


def _probability(x: float) -> float:
    """A logged probability: the shortest decimal of its float32 score (0.85, not
    0.8500000238), as a module row's; not rounded to a fixed number of decimals, so a small
    propensity stays positive."""
    return float(str(np.float32(x)))


def page_props(cand: Candidates, cursor: int, k: int) -> list[dict[str, Any]]:
    """The logged ``props`` of items ``cursor .. cursor + k`` of ``cand`` (the page's items):
    each item's source names and its scores (``rank.rows.candidate_props``); on a page drawn
    by a policy (modules, ``blend/compose``), ``explored`` (whether the policy drew the item's
    row at random, or put it in an explore slot) and, with explore slots,
    ``propensity_cascade``, instead of those columns."""
    page = cand.take(np.arange(cursor, min(cursor + k, len(cand))))
    drawn = policy_columns(page)
    if not drawn:
        return candidate_props(page)
    skip = {*LAYOUT_COLUMNS, CASCADE}
    scores = {n: v for n, v in page.scores.items() if n not in skip}
    props = candidate_props(Candidates(page.items, scores, page.sources))
    extra = {n: v for n, v in drawn.items() if n != PROPENSITY}
    return [p | {n: v[j] for n, v in extra.items()} for j, p in enumerate(props)]


def impression_rows(
    page: Mapping[str, Any],
    user_id: str,
    query: str | None = None,
    props: Sequence[Mapping[str, Any]] | None = None,
    ts: datetime | None = None,
    *,
    arms: Mapping[str, str] | None = None,
    latency_ms: float | None = None,
) -> list[dict[str, Any]]:
    """One ``impression`` event per item of a served page.

    The ranking is deterministic given the request, so an item's propensity is 1, except
    where a policy drew it: in a row of modules (the page's ``modules``) it is the row's
    ``propensity``, and the item's ``props`` name its ``module``, the policy's row
    (``module_row``) and the module ids it drew among (``module_among``), what off-policy
    evaluation reads (``evaluate.ope_logs``); in an explore slot of ``blend/compose`` it is
    the item's own ``propensity`` (the page item's field).

    Parameters
    ----------
    page
        The page JSON (``build_page``).
    user_id, query
        Logged on every impression.
    props
        One ``props`` object per page item, in page order (``page_props``); none when None.
    ts
        When the page was served (the request's time: the simulated clock in a simulation);
        default now.
    arms
        The experiment arms the page was served (``{experiment: arm}``), logged in ``arms``.
    latency_ms
        How long the page took to make, logged in each impression's ``props`` (a guardrail
        metric of experiments).

    Raises
    ------
    ValueError
        If ``props`` is not one object per page item.
    """
    items = page["items"]
    if props is not None and len(props) != len(items):
        raise ValueError(
            f"impression_rows needs one props object per page item. Got {len(props)} for "
            f"{len(items)} items."
        )
    when = (ts or datetime.now(UTC)).isoformat()
    chance = [float(it.get(PROPENSITY, 1.0)) for it in items]
    drawn: list[dict[str, Any]] = [{} for _ in items]
    for row in page.get("modules") or ():
        for j in range(row["start"], row["end"]):
            chance[j] = row["propensity"]
            drawn[j] = {"module": row["id"]} | {
                "module_row": row.get("row"),
                "module_among": row.get("among"),
            }
    rows = []
    for j, it in enumerate(items):
        row = {
            "event_id": uuid.uuid4().hex,
            "ts": when,
            "user_id": user_id,
            "type": "impression",
            "item_id": it["id"],
            "query": query,
            "surface": page["surface"],
            "position": it["position"],
            "request_id": page["request_id"],
            "propensity": chance[j],
        }
        if arms:
            row["arms"] = dict(arms)
        extra = drawn[j] if latency_ms is None else drawn[j] | {"latency_ms": round(latency_ms, 3)}
        if props is not None or latency_ms is not None:
            row["props"] = dict(props[j] if props is not None else {}) | extra
        rows.append(row)
    return rows


def page_impressions(
    page: Mapping[str, Any],
    cand: Candidates,
    user_id: str,
    query: str | None = None,
    ts: datetime | None = None,
    *,
    arms: Mapping[str, str] | None = None,
    latency_ms: float | None = None,
) -> list[dict[str, Any]]:
    """The impression rows of a page built by ``build_page`` from ``cand`` (none for an empty
    page), each with its ``props`` (``page_props``), stamped ``ts`` (default now), with the
    page's experiment ``arms`` and ``latency_ms`` (``impression_rows``)."""
    if not page["items"]:
        return []
    cursor = page["items"][0]["position"] - 1
    props = page_props(cand, cursor, len(page["items"]))
    return impression_rows(page, user_id, query, props, ts, arms=arms, latency_ms=latency_ms)
