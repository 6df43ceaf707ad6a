"""``refinements/graph``: the query-item graph of related searches, from the search log.

Each logged search impression is labelled with what the shopper did with it
(``pipelines.labels``, bots left out; the search ranker's step shares its labels); an
impression clicked, saved, carted or bought is an edge from its query to the item, weighing
its grade above "shown" (click 1 ... purchase 4).
``surfaces.query_graph.QueryGraph`` keeps the most engaged queries and their heaviest items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from moodboard.build.context import BuildContext
from moodboard.build.steps import SEARCH_LABELS, BuildStep
from moodboard.data import columns as C
from moodboard.pipelines import labels_table
from moodboard.pipelines.labels import LABEL, SHOWN
from moodboard.surfaces.query_graph import QueryGraph


class QueryGraphStep(BuildStep):
    """``refinements/graph``: queries -> items engaged from their results (weighted)."""

    name, label = "refinements/graph", "refinements"  # type: ignore[assignment]

    def message(self, ctx: BuildContext) -> str:
        return "linking logged queries to the items engaged from their results"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        cfg = ctx.settings.surfaces.search.refinements
        queries: list[str] = []
        items, weights = np.empty(0, np.int64), np.empty(0)
        if ctx.has_events:
            t = ctx.shared.get(SEARCH_LABELS)  # the search ranker's step labelled them
            if t is None:
                t = labels_table(ctx.events(), ctx.settings.rank.labels)
            keep = pc.and_(
                pc.equal(t.column(C.SURFACE), "search"), pc.greater(t.column(LABEL), SHOWN)
            )
            t = t.filter(pc.fill_null(keep, False))
            queries = t.column(C.QUERY).to_pylist()
            items = ctx.catalog.ids.indices(t.column(C.ITEM_ID).to_pylist(), missing=-1)
            weights = t.column(LABEL).to_numpy().astype(np.float64) - SHOWN
        graph = QueryGraph.from_edges(
            queries, np.asarray(items), weights, len(ctx.catalog),
            max_queries=cfg.max_queries, max_items=cfg.max_items, max_chars=cfg.max_query_chars,
        )  # fmt: skip
        graph.save(out / self.folder)
        entry = {"path": self.folder, "queries": len(graph), "edges": len(graph.items)}
        return {self.name: entry | {"edges_in_log": len(queries)}}
