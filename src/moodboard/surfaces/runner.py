"""The one runner of every surface: prepare -> retrieve -> fuse -> rank -> blend -> fallback.

A surface is declared by naming its components: a ``prepare`` step (the surface's own code:
it turns a ``Request`` into the queries of its sources), the candidate sources, the fusion,
the ranker, the blend step and the fallback sources. ``Surface`` runs them in that order,
times each one (one ``retrieve`` entry per source asked), keeps each item's provenance, fills
the page from the fallback sources and cuts it to the page once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from moodboard.blend import concat, fill_page
from moodboard.data import Candidates, Catalog, ItemFilter, Page, Request, StageTiming
from moodboard.errors import InputError, NotFoundError
from moodboard.rank import Ranker, RankQuery
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.retrieve.base import check_k
from moodboard.retrieve.fuse import round_robin
from moodboard.surfaces.page import to_page

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probe:
    """How one source is asked: ``query``, or, with ``vectors``, one search per vector (a
    board's centroids) merged by weighted round robin (``weights``: each vector's share)."""

    query: SourceQuery
    vectors: np.ndarray | None = None
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class Prepared:
    """What a prepare step hands the chain.

    Attributes
    ----------
    probes
        Source name -> how to ask it, for the page's main list; sources without a probe are
        not asked.
    depth
        Candidates asked of each source.
    lists
        Further named lists (e.g. ``"complement"``), each fused on its own, for the blend step.
    backup
        Probes asked only when every main list comes back empty (a cold start).
    item_filter, exclude
        The request's hard constraints, which the fallback keeps too.
    rank
        What the ranker may know of the request.
    context
        Whatever the blend step and the route need (e.g. the parsed query, the item).
    timings_ms
        The prepare step's own sub-steps (``understand``, ``encode``, ``cluster``).
    keep_single
        A single main list is kept as it is instead of fused (its own scores stay).
    given
        Further named lists the prepare step made itself (no source asked: the newest items),
        handed to the blend step with ``lists``.
    list_depth
        Candidates asked of each source for the further lists (None: ``depth``).
    rank_lists
        Rank the further lists (``lists`` and ``given``) with the main list in one call of
        the rank stage (a page of modules); otherwise they reach the blend step as fused.
    """

    probes: Mapping[str, Probe]
    depth: int
    lists: Mapping[str, Mapping[str, Probe]] = field(default_factory=dict)
    backup: Mapping[str, Probe] = field(default_factory=dict)
    item_filter: ItemFilter | None = None
    exclude: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    rank: RankQuery = field(default_factory=RankQuery)
    context: Mapping[str, Any] = field(default_factory=dict)
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    keep_single: bool = False
    given: Mapping[str, Candidates] = field(default_factory=dict)
    rank_lists: bool = False
    list_depth: int | None = None


@dataclass(frozen=True)
class Retrieved:
    """The fused main list, the fused further lists, and whether the backup answered."""

    main: Candidates
    lists: Mapping[str, Candidates] = field(default_factory=dict)
    cold: bool = False


@dataclass
class SurfaceEnv:
    """What a surface's steps may use: the catalog, the loaded sources, the surface's config,
    the engine seed, and named resources (``understand``, ``encode``, ``complements``, ...)."""

    catalog: Catalog
    sources: Mapping[str, CandidateSource]
    config: Any
    seed: int = 0
    resources: Mapping[str, Any] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` computed once per environment (per catalog and config)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def indices(self, ids: Sequence[str]) -> np.ndarray:
        """The internal indices of the ids the catalog knows (others are ignored), unique,
        in their first order."""
        if not ids:
            return np.empty(0, dtype=np.int64)
        idx = self.catalog.ids.indices(list(ids), missing=-1).astype(np.int64)
        idx = idx[idx >= 0]
        _, first = np.unique(idx, return_index=True)
        return idx[np.sort(first)]

    def item_index(self, item_id: str | None) -> int:
        """The internal index of the item a request is about.

        Raises
        ------
        InputError
            If the request names no item.
        NotFoundError
            If the catalog does not have it.
        """
        if item_id is None:
            raise InputError("This surface is about one product: pass its id (item=<id>).")
        idx = self.catalog.ids.indices([item_id or ""], missing=-1)
        if idx[0] < 0:
            raise NotFoundError(f"No product with id {item_id!r} in the live catalog.")
        return int(idx[0])

    def item_vectors(self, name: str) -> np.ndarray | None:
        """The item vectors of a loaded vector source (``dense/*``, ``visual/*``), else None."""
        source = self.sources.get(name)
        vectors = None if source is None else source.item_vectors()
        return None if vectors is None else np.asarray(vectors)


#: ``(request, need, env) -> Prepared``: ``need`` is how many items the page order must reach.
PrepareFn = Callable[[Request, int, SurfaceEnv], Prepared]
#: ``(retrieved ranked, prepared, need, env) -> candidates`` in page order.
BlendFn = Callable[[Retrieved, Prepared, int, SurfaceEnv], Candidates]


@dataclass(frozen=True)
class Step:
    """A named step: its registry name and its function."""

    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class SurfaceResult:
    """A surface's candidates in page order (cut to the page), its stages, and what its
    prepare step found."""

    candidates: Candidates
    timings_ms: dict[str, float] = field(default_factory=dict)
    stages: tuple[StageTiming, ...] = ()
    prepared: Prepared | None = None


@dataclass(frozen=True)
class _Gathered:
    """Prepare, retrieve and fuse of one request: the rank stage's input."""

    prepared: Prepared
    main: Candidates
    lists: Mapping[str, Candidates]
    cold: bool
    stages: tuple[tuple[str, str, float], ...]
    retrieve_ms: dict[str, float]


class Surface:
    """One surface's declared chain.

    Parameters
    ----------
    name
        The surface's name (``search``, ``related``, ...), echoed on its pages.
    prepare
        The prepare step (``prepare/<surface>``).
    sources
        The names of the sources it may ask, in order; those not loaded in ``env`` are skipped.
    fuse
        Fuses the named lists (its component is ``fuse/<method>``).
    rank
        The rank stage (``rank/noop`` by default).
    blend
        The blend step (``blend/<kind>``).
    fallback
        Sources that fill the page, in order, before the catalog itself.
    env
        The catalog, loaded sources, config and resources the steps use.
    """

    def __init__(
        self,
        name: str,
        prepare: Step,
        sources: Sequence[str],
        fuse: Fuser,
        rank: Ranker,
        blend: Step,
        fallback: Sequence[str],
        env: SurfaceEnv,
    ) -> None:
        self.name = name
        self.prepare = prepare
        self.sources = tuple(sources)
        self.fuse = fuse
        self.rank = rank
        self.blend = blend
        self.fallback = tuple(fallback)
        self.env = env

    def with_rank(self, rank: Ranker) -> Surface:
        """The same chain with another rank stage (an experiment arm, a held-out ranker)."""
        parts = (self.prepare, self.sources, self.fuse, rank, self.blend, self.fallback)
        return Surface(self.name, *parts, self.env)

    @property
    def config(self) -> Any:
        """The surface's section of ``[surfaces]``."""
        return self.env.config

    @property
    def fallback_component(self) -> str:
        """``fallback/<kinds>`` (``fallback/popular``), or ``fallback/catalog`` alone."""
        kinds = [n.split("/")[0] for n in self.fallback if n in self.env.sources]
        return "fallback/" + ("+".join(kinds) or "catalog")

    def _retrieve(
        self, lists: Mapping[str, Mapping[str, Probe]], depth: int, t: dict[str, float]
    ) -> dict[str, dict[str, Candidates]]:
        """Each list's probes answered in probe order, each source asked once for all the
        lists' single-query probes (``CandidateSource.batch``: one pass of an exact index)."""
        by_source: dict[str, list[str]] = {}
        for ln, probes in lists.items():
            for name in probes:
                by_source.setdefault(name, []).append(ln)
        got: dict[tuple[str, str], Candidates] = {}
        for name, lns in by_source.items():
            source, t0 = self.env.sources[name], time.perf_counter()
            plain = [ln for ln in lns if lists[ln][name].vectors is None]
            found = source.batch([lists[ln][name].query for ln in plain], depth) if plain else []
            got |= {(ln, name): c for ln, c in zip(plain, found, strict=True)}
            for ln in (ln for ln in lns if lists[ln][name].vectors is not None):
                p = lists[ln][name]
                if len(p.vectors):
                    many = source.search_many(p.query, p.vectors, depth)
                    got[ln, name] = round_robin(many, np.asarray(p.weights))
            t[name] = t.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
        return {ln: {n: got[ln, n] for n in ps if (ln, n) in got} for ln, ps in lists.items()}

    def _asked(self, probes: Mapping[str, Probe]) -> dict[str, Probe]:
        """The probes of the chain's sources that are loaded, in the prepare step's order."""
        return {n: p for n, p in probes.items() if n in self.sources and n in self.env.sources}

    def _gather(self, request: Request, need: int) -> _Gathered:
        """Prepare, retrieve and fuse: what the rank stage is given, with those stages' times."""
        t0 = time.perf_counter()
        prepared = self.prepare.fn(request, need, self.env)
        clock = round(request.ts.timestamp() * 1_000_000)  # the simulated one in a simulation
        prepared = replace(prepared, rank=replace(prepared.rank, ts_us=clock))
        t1 = time.perf_counter()
        stages = [("prepare", self.prepare.name, (t1 - t0) * 1e3)]
        t: dict[str, float] = {}
        asked = {"": self._asked(prepared.probes)}
        further = {ln: self._asked(p) for ln, p in prepared.lists.items()}
        if "" not in further and (prepared.list_depth or prepared.depth) == prepared.depth:
            # the main list's and the further lists' probes in one pass of each exact index
            lists = self._retrieve(asked | further, prepared.depth, t)
            parts = lists.pop("")
        else:
            parts = self._retrieve(asked, prepared.depth, t)[""]
            lists = self._retrieve(further, prepared.list_depth or prepared.depth, t)
        cold = False
        if prepared.backup and not any(len(c) for c in parts.values()):
            parts = self._retrieve({"": prepared.backup}, prepared.depth, t)[""]
            cold = True
        stages += [("retrieve", n, ms) for n, ms in t.items()]
        t2 = time.perf_counter()
        if len(parts) == 1 and (prepared.keep_single or cold):
            main = next(iter(parts.values()))
        else:
            main = self.fuse(parts)
        fused = {ln: self.fuse(p) for ln, p in lists.items()} | dict(prepared.given)
        stages.append(("fuse", f"fuse/{self.fuse.config.method}", (time.perf_counter() - t2) * 1e3))
        return _Gathered(prepared, main, fused, cold, tuple(stages), t)

    def rank_input(self, request: Request) -> tuple[Prepared, Candidates]:
        """What the chain's rank stage is given for ``request``: the prepare step's output and
        the fused main list (a ranker trains on exactly these).

        Raises
        ------
        ConfigError
            If ``k`` is not an int >= 1.
        """
        k = check_k(request.k, f"Surface {self.name!r}")
        g = self._gather(request, max(1, min(request.cursor + k + 1, len(self.env.catalog))))
        return g.prepared, g.main

    def run(self, request: Request) -> SurfaceResult:
        """Run the chain for ``request``: the page order up to ``cursor + k + 1`` items (one
        past the page, so the caller knows whether a next page exists).

        Raises
        ------
        ConfigError
            If ``k`` is not an int >= 1.
        NotFoundError
            If the request names an item, board or user item the catalog lacks (per surface).
        """
        k = check_k(request.k, f"Surface {self.name!r}")
        need = max(1, min(request.cursor + k + 1, len(self.env.catalog)))
        t0 = time.perf_counter()
        g = self._gather(request, need)
        prepared, main, stages = g.prepared, g.main, list(g.stages)
        t3 = time.perf_counter()
        if prepared.rank_lists:
            ranked, lists = rank_together(self.rank, main, g.lists, prepared.rank)
        else:
            ranked, lists = self.rank(main, prepared.rank), g.lists
        t4 = time.perf_counter()
        page = self.blend.fn(Retrieved(ranked, lists, g.cold), prepared, need, self.env)
        t5 = time.perf_counter()
        page = fill_page(
            page,
            need,
            self.env.catalog,
            self.env.sources,
            self.fallback,
            prepared.item_filter,
            prepared.exclude,
        ).head(need)
        t6 = time.perf_counter()
        stages += [
            ("rank", self.rank.name, (t4 - t3) * 1e3),
            ("blend", self.blend.name, (t5 - t4) * 1e3),
            ("fallback", self.fallback_component, (t6 - t5) * 1e3),
        ]
        timings = {**prepared.timings_ms, **g.retrieve_ms}
        timings |= {n: ms for n, _, ms in stages[-4:]} | {"total": (t6 - t0) * 1e3}
        done = tuple(StageTiming(name=n, component=c, ms=round(ms, 3)) for n, c, ms in stages)
        return SurfaceResult(page, timings, done, prepared)

    def __call__(self, request: Request) -> Page:
        """The page ``request`` asks for (items ``cursor .. cursor + k``).

        Raises
        ------
        ConfigError
            If ``k`` is not an int >= 1.
        NotFoundError
            If the request names something the catalog lacks.
        """
        res = self.run(request)
        return to_page(res, request, self.env.catalog, self.name)


#: The score column ``rank_together`` tags each row's list with (removed again).
_LIST = "_list"


def rank_together(
    rank: Ranker, main: Candidates, lists: Mapping[str, Candidates], query: RankQuery
) -> tuple[Candidates, dict[str, Candidates]]:
    """``main`` and the named ``lists`` ranked in one call of ``rank``: the further lists
    first (a ranker that scores only its first candidates scores them all), then ``main``;
    each comes back in the ranker's order, without the rows of the others."""
    names = [n for n, c in lists.items() if len(c)]
    parts = [lists[n] for n in names] + [main]
    tagged = [c.with_score(_LIST, np.full(len(c), j)) for j, c in enumerate(parts)]
    batch = tagged[0]
    for c in tagged[1:]:
        batch = concat(batch, c)
    ranked = rank(batch, query)
    tag, scores = ranked.score(_LIST), {n: v for n, v in ranked.scores.items() if n != _LIST}
    ranked = Candidates(ranked.items, scores, ranked.sources)
    out = [ranked.take(np.flatnonzero(tag == j)) for j in range(len(parts))]
    return out[-1], {n: lists[n] for n in lists} | dict(zip(names, out, strict=False))
