"""``rank/lambdamart``: the search ranker, trained from the workspace's own search engagement.

The step runs after the search chain's components are saved: it opens them from the version
being built (as the server will), declares the search chain as ``/search`` serves it but with
``rank/noop``, labels the logged search impressions (``pipelines.labels``), and trains
LambdaMART on the candidates that chain's rank stage is given (``rank.engagement``). It then
measures the gain the server will see: trained on the earlier half of the search requests, the
served chain with the ranker against the one without, on the later half (``build.heldout``).
The manifest entry says whether a ranker was trained and why not, and holds that gain.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from moodboard.build.context import BuildContext
from moodboard.build.heldout import heldout_search_gain, popularity_as_of
from moodboard.build.layout import part_path
from moodboard.build.steps import SEARCH_LABELS, BuildStep
from moodboard.data import columns as C
from moodboard.pipelines import labels_table
from moodboard.rank import (
    LAMBDAMART,
    ChainCandidates,
    ItemTexts,
    LambdaMARTConfig,
    SearchFeatures,
    search_features,
    train_search_ranker,
)
from moodboard.retrieve.registry import attach_all, load_source
from moodboard.surfaces import Surface, build_surface
from moodboard.surfaces.search import search_text
from moodboard.understand.query import QueryUnderstanding
from moodboard.understand.query_vectors import QueryVectors
from moodboard.understand.text import TextEncoder

_log = logging.getLogger(__name__)


class SearchRankerStep(BuildStep):
    """``rank/lambdamart``: LambdaMART trained on the logged search sessions, if enough.

    Parameters
    ----------
    config
        LightGBM parameters, ``min_queries`` and ``depth``; default ``[rank.lambdamart]``.
    """

    name, label = LAMBDAMART, "rank_lambdamart"  # type: ignore[assignment]

    def __init__(self, config: LambdaMARTConfig | None = None) -> None:
        self.config = config

    def message(self, ctx: BuildContext) -> str:
        return "training the search ranker on logged search sessions"

    def _chain(self, ctx: BuildContext, out: Path, queries: list[str]) -> Surface:
        """The search chain as ``/search`` serves it, opened from the version being built, its
        query vectors of the logged ``queries`` embedded up front in batches."""
        manifest = {"components": ctx.built}
        sources = {}
        names = [*ctx.settings.surfaces.search.sources, "popular/trending"]
        if "dense/text_image" in names:  # it searches the image index
            names.append(ctx.settings.retrieve.text_image.index or "")
        for name in names:
            found = part_path(out, manifest, name)
            if found is not None:
                sources[name] = load_source(found, ctx.catalog)
        attach_all(sources)
        understand = QueryUnderstanding.load(part_path(out, manifest, "understand"))  # type: ignore[arg-type]
        encode = QueryVectors(TextEncoder(), size=None)
        encode.prime([search_text(understand(q), q) for q in dict.fromkeys(queries)])
        resources = {"understand": understand, "encode": encode}
        cfg = ctx.settings.surfaces.search.model_copy(update={"ranker": "rank/noop"})
        return build_surface("search", cfg, ctx.catalog, sources, ctx.settings.seed, resources)

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        settings = ctx.settings.rank
        cfg = self.config or settings.lambdamart
        if not ctx.has_events:
            reason = "the workspace has no events: search is not re-ranked"
            return {self.name: {"path": None, "component": "rank/noop", "trained": False,
                                "reason": reason, "n_queries": 0}}  # fmt: skip
        events = ctx.events()  # without the bots' events
        labels = labels_table(events, settings.labels)
        ctx.shared[SEARCH_LABELS] = labels  # the query graph (refinements) reads them too
        queries = [q for q in labels.column(C.QUERY).to_pylist() if q and q.strip()]
        chain = self._chain(ctx, out, queries)
        texts = ItemTexts.from_catalog(ctx.catalog)
        sources = chain.env.sources
        retrieve = ChainCandidates(chain, cfg.depth)
        fit = train_search_ranker(
            labels,
            retrieve,
            search_features(ctx.catalog, sources, texts),
            cfg,
        )
        entry: dict[str, Any] = {"path": None, **fit.as_dict(), "config": cfg.model_dump()}
        if fit.ranker is None:
            return {self.name: entry}
        fit.ranker.save(out / self.folder)
        entry["path"] = self.folder
        pop = sources.get("popular/trending")
        weights = pop.config.weights if pop is not None else {}  # type: ignore[attr-defined]
        half_life = pop.config.half_life_days if pop is not None else 7.0  # type: ignore[attr-defined]

        def features_at(cut: datetime) -> SearchFeatures:
            scores = popularity_as_of(events, ctx.catalog.ids, cut, weights, half_life)
            return search_features(ctx.catalog, sources, texts, scores)

        try:
            held, gain = heldout_search_gain(
                events,
                chain,
                features_at,
                cfg,
                settings.labels,
                settings.heldout_fraction,
                retrieve,
            )
        except ValueError as exc:  # no search impressions to split
            entry["heldout"] = {"measured": False, "reason": str(exc)}
            return {self.name: entry}
        entry["heldout"] = (
            {"measured": True, "train_queries": held.n_queries, **gain.as_dict()}
            if gain is not None
            else {"measured": False, "reason": held.reason}
        )
        return {self.name: entry}
