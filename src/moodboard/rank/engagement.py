"""``rank/lambdamart`` trained from the workspace's own search engagement.

A LambdaMART group is one query text (``group_by="query"``, each item's best grade over the
query's labelled requests) or one search request: the first ``depth`` candidates the served search
chain's rank stage is given for the request's query (``Surface.rank_input``: what
``rank/lambdamart`` re-ranks at serving time), with the ``SearchFeatures`` that serve
``/search`` (the same chain, the same feature code) and a grade
each: the impression's label (``pipelines.labels``: hide 0, shown 1, click 2, save 3,
add_to_cart 4, purchase 5) for the items the shopper was shown, and 0 (``NOT_SHOWN``) for the
candidates that were not shown. The impression's ``position`` is never a feature (it is what
the ranker decides). Impressed items that the chain does not retrieve for the query are left
out (the ranker never sees them at serving time) and counted.

A labelled query is a search request with at least one engaged impression (a click or
stronger); requests without engagement are not used. A ranker is trained only when the logs
hold at least ``min_queries`` labelled queries; otherwise the result says why, and the search
chain keeps ``rank/noop``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from moodboard.data import Candidates, Request
from moodboard.data import columns as C
from moodboard.rank.features import FEATURES, QueryContext, SearchFeatures, query_context
from moodboard.rank.ltr import LambdaMARTConfig, LambdaMARTRanker

_log = logging.getLogger(__name__)

#: The labels' column (``pipelines.labels.LABEL``).
LABEL = "label"
SEARCH = "search"
#: The grade of a candidate the chain retrieved but the shopper was not shown.
NOT_SHOWN = 0
#: The weakest grade of an engaged impression (a click).
ENGAGED = 2
#: query text -> (what the features know of it, the candidates the served chain ranks).
Retrieve = Callable[[str], tuple[QueryContext, Candidates]]


class _Prepared(Protocol):
    @property
    def context(self) -> Mapping[str, Any]: ...


class SearchRun(Protocol):
    """The served search surface (``Engine.search``), as the trainer uses it: what its rank
    stage is given for a request (the prepare step's output, whose ``context`` holds the
    parsed query and its vector, and the fused candidates)."""

    def rank_input(self, request: Request) -> tuple[_Prepared, Candidates]: ...


class ChainCandidates:
    """``query -> (QueryContext, Candidates)`` from the served search surface, memoized per
    query: the candidates its rank stage is given, with the very parse and query vector the
    surface used.

    Parameters
    ----------
    chain
        The search surface ``/search`` serves.
    k
        How many of the chain's fused candidates the ranker re-ranks: the first ``k`` (the
        served ``rank/lambdamart`` re-ranks the same depth, ``SearchModel.depth``).
    """

    def __init__(self, chain: SearchRun, k: int = 100) -> None:
        self.chain = chain
        self.k = k
        self._memo: dict[str, tuple[QueryContext, Candidates]] = {}

    def __call__(self, query: str) -> tuple[QueryContext, Candidates]:
        """The query's feature context and the rank stage's first ``k`` candidates."""
        hit = self._memo.get(query)
        if hit is None:
            prepared, cand = self.chain.rank_input(Request(surface="search", query=query, k=10))
            context = prepared.context
            ctx = query_context(context["parsed"], context.get("vector"))
            hit = self._memo[query] = (ctx, cand.head(self.k))
        return hit


@dataclass(frozen=True)
class TrainingSet:
    """Feature rows of labelled impressions, one group per search request.

    Attributes
    ----------
    X
        ``SearchFeatures`` rows, groups contiguous, columns ``FEATURES``.
    labels
        The grade of each row (int32).
    groups
        Rows per request, in order.
    requests, queries
        Each group's request id and query text.
    unretrieved
        Labelled impressions left out because the chain does not retrieve their item.
    labelled
        Labelled requests (with an engaged impression among their retrieved items).
    """

    X: np.ndarray
    labels: np.ndarray
    groups: list[int]
    requests: list[str]
    queries: list[str]
    unretrieved: int = 0
    labelled: int = 0


def search_training_set(
    labels: pa.Table,
    retrieve: Retrieve,
    features: SearchFeatures,
    *,
    surface: str = SEARCH,
    by_query: bool = False,
) -> TrainingSet:
    """The labelled queries of ``labels`` as LambdaMART groups.

    Parameters
    ----------
    labels
        ``pipelines.labels`` rows (``request_id``, ``item_id``, ``surface``, ``query``,
        ``label``); other surfaces and rows without a query are ignored.
    retrieve
        Query -> context and candidates (``ChainCandidates`` of the served chain).
    features
        The serving ``SearchFeatures`` of the catalog.
    surface
        The surface whose impressions are used.
    by_query
        One group per query text instead of per request: each candidate's grade is its best
        over the query's labelled requests (``requests`` then holds each query's first). A
        query's features are the same in each of its requests, so this keeps each item's best
        grade in far fewer rows, with fewer matching items graded 0 for not being shown.

    Returns
    -------
    TrainingSet
        Only requests with an engaged impression (grade >= 2) among their retrieved items.
    """
    rows: dict[str, tuple[str, dict[str, int]]] = {}
    for req, item, surf, q, y in zip(
        *(labels.column(c).to_pylist() for c in (C.REQUEST_ID, C.ITEM_ID, C.SURFACE, C.QUERY)),
        labels.column(LABEL).to_pylist(),
        strict=True,
    ):
        if surf == surface and q and q.strip():
            rows.setdefault(req, (q, {}))[1][item] = int(y)
    ids = features.catalog.ids
    X, ys, groups, reqs, queries, unretrieved, labelled = [], [], [], [], [], 0, 0
    memo: dict[str, np.ndarray] = {}
    at: dict[str, int] = {}
    for req in sorted(rows):
        q, graded = rows[req]
        ctx, cand = retrieve(q)
        where = {int(i): r for r, i in enumerate(cand.items.tolist())}
        idx = ids.indices(list(graded), missing=-1)
        pos = [where.get(int(i), -1) for i in idx]
        keep = [(p, y) for p, y in zip(pos, graded.values(), strict=True) if p >= 0]
        unretrieved += len(graded) - len(keep)
        if max((y for _, y in keep), default=0) < ENGAGED:
            continue
        labelled += 1
        if q not in memo:
            memo[q] = features(ctx, cand)
        y = np.full(len(cand), NOT_SHOWN, dtype=np.int32)
        for p, g in keep:
            y[p] = g
        if by_query and q in at:  # the query's group: each item's best grade over requests
            np.maximum(ys[at[q]], y, out=ys[at[q]])
            continue
        at[q] = len(ys)
        X.append(memo[q])
        ys.append(y)
        groups.append(len(y))
        reqs.append(req)
        queries.append(q)
    width = len(FEATURES)
    return TrainingSet(
        np.concatenate(X) if X else np.zeros((0, width), dtype=np.float32),
        np.concatenate(ys) if ys else np.zeros(0, dtype=np.int32),
        groups,
        reqs,
        queries,
        unretrieved,
        labelled,
    )


@dataclass(frozen=True)
class SearchRankerFit:
    """What training the search ranker from engagement gave.

    Attributes
    ----------
    trained
        Whether a ranker was trained (else the chain keeps ``rank/noop``).
    reason
        Why not, or what it was trained on.
    n_queries
        Labelled queries (requests) found in the logs.
    rows
        Training rows (labelled, retrieved impressions).
    ranker
        The ranker, when trained.
    """

    trained: bool
    reason: str
    n_queries: int
    rows: int = 0
    ranker: LambdaMARTRanker | None = field(default=None, repr=False)

    @property
    def component(self) -> str:
        """The rank stage the search chain should use."""
        return "rank/lambdamart" if self.trained else "rank/noop"

    def as_dict(self) -> dict[str, Any]:
        """The manifest entry."""
        return {
            "component": self.component,
            "trained": self.trained,
            "reason": self.reason,
            "n_queries": self.n_queries,
            "rows": self.rows,
        }


def train_search_ranker(
    labels: pa.Table,
    retrieve: Retrieve,
    features: SearchFeatures,
    config: LambdaMARTConfig | None = None,
) -> SearchRankerFit:
    """Train LambdaMART on the labelled search impressions, if there are enough of them.

    Parameters
    ----------
    labels
        ``pipelines.labels`` rows (any surfaces: only ``search`` ones are used).
    retrieve
        Query -> context and candidates of the served chain (``ChainCandidates``).
    features
        The serving ``SearchFeatures`` of the catalog.
    config
        LambdaMART parameters and ``min_queries``; default ``LambdaMARTConfig()``.

    Returns
    -------
    SearchRankerFit
        ``trained=False`` with the reason when the logs hold fewer than ``min_queries``
        labelled queries.
    """
    cfg = config or LambdaMARTConfig()
    data = search_training_set(labels, retrieve, features, by_query=cfg.group_by == "query")
    n = data.labelled
    if n < cfg.min_queries:
        reason = (
            f"{n} labelled search queries in the logs, fewer than rank.lambdamart.min_queries "
            f"= {cfg.min_queries}: search is not re-ranked"
        )
        _log.info(reason)
        return SearchRankerFit(False, reason, n, int(data.labels.size))
    ranker = LambdaMARTRanker(cfg, FEATURES).fit_labels(data.X, data.labels, data.groups)
    reason = (
        f"trained on {n} labelled search queries in {len(data.groups)} groups "
        f"(one per {cfg.group_by}), {data.labels.size} candidates "
        f"({data.unretrieved} impressed items the chain does not retrieve left out)"
    )
    _log.info(reason)
    return SearchRankerFit(True, reason, n, int(data.labels.size), ranker)
