"""Does the served search chain with its trained ranker beat the unranked chain, later on?

The log is split by time: the ranker learns from the search impressions labelled as of the
cutoff (``pipelines.labels`` with ``as_of``: no later event leaks in; popularity features as
of the cutoff too), and is judged on the search requests after it. Each held-out request's
query is run through the served search chain twice, as ``/search`` runs it: with ``rank/noop``
and with ``rank/lambdamart`` holding that ranker (``Surface.with_rank``); the pages' first
``k`` items are judged by what the shopper engaged with on that page, with gain ``label - 1``
(click 1, save 2, add_to_cart 3, purchase 4; shown or hidden 0), and NDCG@k is our
``ndcg_at_k``; requests with no engagement are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import LabelsConfig
from moodboard.data import IdMap, Request
from moodboard.data import columns as C
from moodboard.pipelines import labels_table, popularity
from moodboard.rank import LambdaMARTConfig, NoopRanker, SearchFeatures
from moodboard.rank.engagement import (
    LABEL,
    SEARCH,
    ChainCandidates,
    SearchRankerFit,
    train_search_ranker,
)
from moodboard.rank.metrics import mean_metrics
from moodboard.rank.search import LambdaMARTStage, SearchModel
from moodboard.surfaces import Surface

_log = logging.getLogger(__name__)


def engaged_qrels(labels: pa.Table, surface: str = SEARCH) -> dict[str, tuple[str, dict]]:
    """Request -> (query, {item: label - 1}) of the requests with an engaged item."""
    out: dict[str, tuple[str, dict[str, float]]] = {}
    for req, item, surf, q, y in zip(
        *(labels.column(c).to_pylist() for c in (C.REQUEST_ID, C.ITEM_ID, C.SURFACE, C.QUERY)),
        labels.column(LABEL).to_pylist(),
        strict=True,
    ):
        if surf == surface and q and q.strip() and y >= 2:
            out.setdefault(req, (q, {}))[1][item] = float(y - 1)
    return out


def _request_starts(labels: pa.Table) -> pa.Table:
    """``request_id, ts``: each search request's first impression."""
    t = labels.filter(pc.equal(labels[C.SURFACE], SEARCH))
    t = t.group_by(C.REQUEST_ID).aggregate([(C.TS, "min")])
    return t.rename_columns([C.REQUEST_ID, C.TS])


def search_time_cutoff(labels: pa.Table, test_fraction: float = 0.5) -> datetime:
    """The instant that leaves the last ``test_fraction`` of the search requests after it.

    Raises
    ------
    ValueError
        If ``test_fraction`` is not in (0, 1) or there are no search requests.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1). Got {test_fraction} instead.")
    starts = _request_starts(labels)
    if starts.num_rows == 0:
        raise ValueError("The labels hold no search impressions: there is nothing to split.")
    times = np.sort(starts.column(C.TS).to_numpy(zero_copy_only=False))
    return times[min(int(len(times) * (1 - test_fraction)), len(times) - 1)].astype(datetime)


@dataclass(frozen=True)
class RankerGain:
    """NDCG@k (and MRR) of the chain's order and of the ranked order on the same requests."""

    unranked: dict[str, float]
    ranked: dict[str, float]
    queries: int
    k: int = 10

    @property
    def gain(self) -> float:
        """Relative NDCG@k gain of the ranked order (0.1 = +10%)."""
        base = self.unranked[f"ndcg@{self.k}"]
        return self.ranked[f"ndcg@{self.k}"] / base - 1 if base > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The manifest / ``--json`` entry."""
        return {
            "queries": self.queries,
            "unranked": {n: round(v, 4) for n, v in self.unranked.items()},
            "ranked": {n: round(v, 4) for n, v in self.ranked.items()},
            "gain": round(self.gain, 4),
        }


def page_ids(chain: Surface, query: str, k: int = 10) -> list[str]:
    """The ids of the first ``k`` items of the chain's page for ``query``."""
    res = chain.run(Request(surface=SEARCH, query=query, k=k))
    return chain.env.catalog.ids.external(res.candidates.items[:k])


def ranked_vs_unranked(
    labels: pa.Table, unranked: Surface, ranked: Surface, k: int = 10
) -> RankerGain:
    """Score the pages of two search chains against the engaged items of ``labels``.

    Parameters
    ----------
    labels
        Held-out ``pipelines.labels`` rows.
    unranked, ranked
        The served search chain with ``rank/noop`` and with the ranker.
    k
        The page's length and the cut of NDCG.
    """
    qrels = engaged_qrels(labels)
    before, after, memo = {}, {}, {}
    for req, (q, _) in qrels.items():
        if q not in memo:
            memo[q] = (page_ids(unranked, q, k), page_ids(ranked, q, k))
        before[req], after[req] = memo[q]
    judged = {req: j for req, (_, j) in qrels.items()}
    out = RankerGain(mean_metrics(before, judged, k), mean_metrics(after, judged, k), len(qrels))
    _log.info("search ranker on %d held-out requests: %s", len(qrels), out.as_dict())
    return out


def popularity_as_of(
    events: ir.Table,
    ids: IdMap,
    as_of: datetime,
    weights: Mapping[str, float],
    half_life_days: float = 7.0,
) -> np.ndarray:
    """Per-item popularity (``pipelines.popularity``) from the events before ``as_of`` only."""
    t = popularity(events.filter(events[C.TS] < as_of), weights, half_life_days, as_of)
    t = t.to_pyarrow()
    out = np.zeros(len(ids))
    idx = ids.indices(t.column(C.ITEM_ID).to_pylist(), missing=-1)
    out[idx[idx >= 0]] = t.column("score").to_numpy(zero_copy_only=False)[idx >= 0]
    return out


def heldout_search_gain(
    events: ir.Table,
    chain: Surface,
    features_at: Callable[[datetime], SearchFeatures],
    config: LambdaMARTConfig | None = None,
    labels: LabelsConfig | None = None,
    test_fraction: float = 0.5,
    retrieve: ChainCandidates | None = None,
) -> tuple[SearchRankerFit, RankerGain | None]:
    """Train on the earlier search requests, measure the served chain on the later ones.

    Parameters
    ----------
    events
        The event log.
    chain
        The served search chain (its own rank stage is replaced: ``rank/noop`` for the
        unranked pages, ``rank/lambdamart`` with the held-out ranker for the ranked ones).
    features_at
        The serving features as known at an instant (e.g. popularity as of the cutoff).
    config
        The ranker's parameters, ``min_queries`` and ``depth`` included.
    labels
        The label window.
    test_fraction
        The share of the search requests held out, the latest ones.
    retrieve
        The rank stage's input of ``chain`` per query, if one is already at hand (its memo is
        reused); default a new ``ChainCandidates(chain, config.depth)``.

    Returns
    -------
    tuple[SearchRankerFit, RankerGain | None]
        The fit on the earlier requests (labelled as of the cutoff), and the gain on the
        requests that start at or after it (None when no ranker was trained).

    Raises
    ------
    ValueError
        If the log holds no search impressions.
    """
    cfg = config or LambdaMARTConfig()
    full = labels_table(events, labels)
    cut = search_time_cutoff(full, test_fraction)
    feats = features_at(cut)
    unranked = chain.with_rank(NoopRanker())
    retrieve = retrieve or ChainCandidates(unranked, cfg.depth)
    fit = train_search_ranker(labels_table(events, labels, as_of=cut), retrieve, feats, cfg)
    if fit.ranker is None:
        return fit, None
    ranked = chain.with_rank(LambdaMARTStage(SearchModel(fit.ranker, feats, cfg.depth)))
    starts = _request_starts(full)
    after = pc.greater_equal(starts[C.TS], pa.scalar(cut, starts.schema.field(C.TS).type))
    later = pc.is_in(full[C.REQUEST_ID], value_set=starts.filter(after).column(C.REQUEST_ID))
    return fit, ranked_vs_unranked(full.filter(later), unranked, ranked)
