"""``surfaces/autocomplete``: completions learned from the search log and the catalog.

The log is the workspace's ``search`` events (bots left out, ``BuildContext.events``); a
search's results got engagement when an action of ``autocomplete.engaged_actions`` carries its
``request_id``. Each search weighs ``0.5 ** (age / half_life_days)`` (age from the newest
search); its engagement strength is the strongest action's interaction weight. The catalog
gives its titles, categories and attribute combinations; the shoppers' interests (the
categories of their recent interactions) train the user-interest feature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from moodboard.build.context import BuildContext
from moodboard.build.steps import BuildStep
from moodboard.config.autocomplete import AutocompleteConfig
from moodboard.data import Catalog
from moodboard.data import columns as C
from moodboard.data.records import INTERACTION_WEIGHTS
from moodboard.surfaces.autocomplete import Autocomplete
from moodboard.surfaces.autocomplete_candidates import CatalogText, QueryLog, interests_of


def catalog_text(catalog: Catalog, cfg: AutocompleteConfig) -> CatalogText:
    """The catalog's titles, categories and attribute-combination phrases (``cfg.combos``:
    one phrase per product having every attribute of a combination)."""
    phrases: list[str] = []
    for combo in cfg.combos:
        cols = [catalog.attributes.get(a) for a in combo]
        if any(c is None for c in cols):
            continue
        for values in zip(*cols, strict=True):  # type: ignore[call-overload]
            if all(v for v in values):
                phrases.append(" ".join(str(v) for v in values))
    return CatalogText(list(catalog.title), list(catalog.category), phrases)


def search_log(ctx: BuildContext, cfg: AutocompleteConfig) -> QueryLog:
    """The workspace's logged searches with their weights and engagement (see the module)."""
    if not ctx.has_events:
        return QueryLog([], np.zeros(0), np.zeros(0))
    t = ctx.events()
    table = (
        t.filter((t[C.TYPE] == "search") & t[C.QUERY].notnull())
        .select(C.REQUEST_ID, C.QUERY, C.USER_ID, C.TS)
        .to_pyarrow()
    )
    searches = table.select([C.REQUEST_ID, C.QUERY, C.USER_ID]).to_pydict()
    ts_us = table.column(C.TS).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    acts = t.filter(t[C.TYPE].isin(list(cfg.engaged_actions)) & t[C.REQUEST_ID].notnull())
    acts = acts.select(C.REQUEST_ID, C.TYPE, C.ITEM_ID).to_pyarrow().to_pydict()
    strength: dict[str, float] = {}
    item: dict[str, str] = {}
    for rid, kind, it in zip(acts[C.REQUEST_ID], acts[C.TYPE], acts[C.ITEM_ID], strict=True):
        w = INTERACTION_WEIGHTS.get(kind, 1.0)
        if w > strength.get(rid, 0.0):
            strength[rid] = w
            if it is not None:
                item[rid] = it
    rids = searches[C.REQUEST_ID]
    ts = ts_us.to_numpy().astype(np.float64) / 1e6
    weight = np.ones(len(ts))
    if cfg.half_life_days and len(ts):
        weight = 0.5 ** ((ts.max() - ts) / 86_400 / cfg.half_life_days)
    engaged_items = [item.get(r) if r else None for r in rids]
    idx = ctx.catalog.ids.indices([i or "" for i in engaged_items], missing=-1)
    cats = [ctx.catalog.category[i] if i >= 0 else None for i in idx]
    return QueryLog(
        list(searches[C.QUERY]),
        weight,
        np.array([strength.get(r, 0.0) if r else 0.0 for r in rids]),
        list(searches[C.USER_ID]),
        cats,
    )


def user_interests(ctx: BuildContext) -> dict[str, dict[str, float]]:
    """Each shopper's interests from their recent interactions (``interests_of``)."""
    users, seqs, _ = ctx.sequences
    category = ctx.catalog.category
    return {u: interests_of([category[i] for i in s]) for u, s in zip(users, seqs, strict=True)}


class AutocompleteStep(BuildStep):
    """``surfaces/autocomplete``: the completions of the search box."""

    name, label = "surfaces/autocomplete", "autocomplete"  # type: ignore[assignment]

    def __init__(self, config: AutocompleteConfig | None = None) -> None:
        self.config = config or AutocompleteConfig()

    def message(self, ctx: BuildContext) -> str:
        return "learning autocomplete from the search log and the catalog"

    def fit(self, log: QueryLog, catalog: CatalogText, interests: Any = None) -> Autocomplete:
        """The fitted component (what evaluation fits too)."""
        return Autocomplete(self.config).fit(log, catalog, interests)

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        log = search_log(ctx, self.config)
        ac = self.fit(log, catalog_text(ctx.catalog, self.config), user_interests(ctx))
        ac.save(out / self.folder)
        engaged = int((np.asarray(log.strength) > 0).sum())
        return {self.name: {"path": self.folder, "engaged_searches": engaged, **ac.info}}
