"""The home feed of a user: personalized sources fused, minus what the user already engaged with.

A user with a history: every source named in ``config.sources`` that is loaded (``two_tower``,
``sequence``, ``graph/walks``, ``user_interests``), asked with the user's history, its action
weights and the user id, proposes its best items the user has not engaged with; the lists are
fused by weighted reciprocal rank with provenance. A user without one (anonymous, new, or whose
items left the catalog) gets the ``cold_sources`` (popular items) with ``explore_share`` of the
page, at evenly spaced slots, given to a random slice of the catalog seeded by (seed, user,
request key): the same key gives the same page, so a feed pages on consistently, and a new key
(a new day, a new session) shows other items. The fallback sources fill what is left, and a
page is never an error while the catalog and the filter allow items.

The page order is computed over ``max(k, per_source)`` items and then cut, so a longer page
(the next cursor) starts with the shorter one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.config import FeedConfig
from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.errors import ConfigError
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.retrieve.two_tower import user_hash
from moodboard.surfaces.base import SurfaceResult, check_items, check_k, fill_page
from moodboard.surfaces.related import complement_slots, interleave

_log = logging.getLogger(__name__)

#: The provenance of the exploration slice.
EXPLORE = "explore/random"


class UserHistories:
    """Each user's recent engaged items (internal indices, oldest first) and the weights of
    their actions, saved by the build.

    Parameters
    ----------
    histories
        User id -> item indices; unknown users have an empty history.
    weights
        User id -> one action weight per item (a save weighs more than a click); default 1.
    """

    def __init__(
        self,
        histories: Mapping[str, np.ndarray] | None = None,
        weights: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self._by_user = {u: np.asarray(h, dtype=np.int64) for u, h in (histories or {}).items()}
        self._weights = {u: np.asarray(w, dtype=np.float32) for u, w in (weights or {}).items()}
        for u, w in self._weights.items():
            if len(w) != len(self._by_user.get(u, ())):
                raise ValueError(f"The weights of user {u!r} must align with the user's items.")

    def __len__(self) -> int:
        return len(self._by_user)

    def __call__(self, user: str | None) -> np.ndarray:
        """The user's items, oldest first (empty for an unknown or anonymous user)."""
        h = self._by_user.get(user) if user is not None else None
        return h if h is not None else np.empty(0, dtype=np.int64)

    def weights(self, user: str | None) -> np.ndarray:
        """The weights of the user's actions, aligned with ``self(user)`` (ones by default)."""
        w = self._weights.get(user) if user is not None else None
        return w if w is not None else np.ones(len(self(user)), dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write ``user_id, items, weights`` as Parquet (creating the folder)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        users = list(self._by_user)
        items = pa.array([self._by_user[u].tolist() for u in users], type=pa.list_(pa.int32()))
        weights = pa.array([self.weights(u).tolist() for u in users], pa.list_(pa.float32()))
        table = {"user_id": pa.array(users, pa.string()), "items": items, "weights": weights}
        pq.write_table(pa.table(table), path)

    @classmethod
    def load(cls, path: Path) -> UserHistories:
        """Read a saved file (one without weights gives weights of 1)."""
        t = pq.read_table(path)
        users = t.column("user_id").to_pylist()
        items = dict(zip(users, t.column("items").to_pylist(), strict=True))
        if "weights" not in t.column_names:
            return cls(items)
        return cls(items, dict(zip(users, t.column("weights").to_pylist(), strict=True)))


class FeedChain:
    """The home feed.

    Parameters
    ----------
    catalog
        The items.
    sources
        Fitted candidate sources by name: the personalized ones of ``config.sources``, and
        ``popular/trending`` for cold users and fallback.
    config
        Source names, fusion, exploration shares and fallback.
    seed
        Seeds the exploration slice, with the user and the request key.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Mapping[str, CandidateSource],
        config: FeedConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.catalog = catalog
        self.sources = dict(sources)
        self.config = config or FeedConfig()
        self.seed = seed
        self.fuser = Fuser(self.config.fuse)

    @property
    def recommenders(self) -> dict[str, CandidateSource]:
        """The loaded sources that rank the whole catalog for a history (``full_ranking``)."""
        return {n: s for n, s in self.sources.items() if s.full_ranking}

    @property
    def personalized(self) -> list[str]:
        """The configured sources that are loaded and weigh more than 0 in the fusion, in
        config order."""
        w = self.config.fuse.weights
        return [n for n in self.config.sources if n in self.sources and w.get(n, 1.0) > 0]

    def _cold(self, k: int, item_filter: ItemFilter | None, skip: np.ndarray) -> Candidates:
        query = SourceQuery(item_filter=item_filter, exclude=skip)
        parts = {
            n: self.sources[n](query, k) for n in self.config.cold_sources if n in self.sources
        }
        return next(iter(parts.values())) if len(parts) == 1 else self.fuser(parts, k)

    def _explore(
        self, n: int, allowed: np.ndarray, taken: np.ndarray, user: str | None, nonce: str | int
    ) -> Candidates:
        """``n`` random allowed items not in ``taken``, seeded by (seed, user, nonce)."""
        if n <= 0:
            return Candidates.empty()
        pool = allowed.copy()
        pool[taken] = False
        rng = np.random.default_rng([self.seed, user_hash(user), user_hash(str(nonce))])
        items = rng.permutation(np.flatnonzero(pool))[:n]
        return Candidates.from_scores(items, np.zeros(len(items)), EXPLORE)

    def __call__(
        self,
        history: Sequence[int] | np.ndarray,
        k: int = 24,
        user: str | None = None,
        nonce: str | int = 0,
        item_filter: ItemFilter | None = None,
        exclude: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> SurfaceResult:
        """The feed of a user whose engaged items are ``history`` (oldest first).

        Parameters
        ----------
        history
            Item indices the user engaged with, oldest first (repeats allowed); they never
            appear on the page. Empty: the cold-start page.
        k
            The page size.
        user
            The user's id (the user id embedding of ``two_tower``; seeds exploration).
        nonce
            The request key that seeds exploration with the user (e.g. a session or a day).
        item_filter, exclude
            The request's hard constraints.
        weights
            The weight of each history action (a save more than a click), for the
            recommenders that take them (``graph/walks``, ``user_interests``).

        Returns
        -------
        SurfaceResult
            ``k`` items (fewer only when the filter and exclusions allow fewer); provenance
            names the recommenders, ``explore/random`` or the fallback.

        Raises
        ------
        NotFoundError
            If a ``history`` or ``exclude`` index is not in the catalog.
        ConfigError
            If ``k`` is not an int >= 1.
        """
        k = min(check_k(k, "FeedChain"), max(1, len(self.catalog)))  # never past the catalog
        n = len(self.catalog)
        cfg = self.config
        hist = np.asarray([] if history is None else history).astype(np.int64).ravel()
        w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        if w is not None and len(w) != len(hist):
            raise ConfigError(
                f"The 'weights' parameter of FeedChain must have one weight per history item "
                f"({len(hist)}). Got {len(w)} instead."
            )
        seen = check_items(hist, n, "history")
        skip = np.unique(np.concatenate([seen, check_items(exclude, n, "exclude")]))
        horizon = max(k, cfg.per_source)
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        allowed = np.ones(n, dtype=bool)
        if item_filter is not None and not item_filter.is_empty():
            allowed &= item_filter.mask(self.catalog)
        allowed[skip] = False
        names = self.personalized if len(seen) else []
        parts: dict[str, Candidates] = {}
        query = SourceQuery(
            history=hist, weights=w, user=user, item_filter=item_filter, exclude=skip
        )
        for name in names:
            t1 = time.perf_counter()
            cand = self.sources[name](query, horizon)
            parts[name] = Candidates(cand.items, cand.scores, np.full(len(cand), name, object))
            t[name] = (time.perf_counter() - t1) * 1e3
        if any(len(c) for c in parts.values()):
            main, share = self.fuser(parts, horizon), cfg.explore_share_known
        else:
            t1 = time.perf_counter()
            main, share = self._cold(horizon, item_filter, skip), cfg.explore_share
            t["cold"] = (time.perf_counter() - t1) * 1e3
        slots = complement_slots(horizon, share)
        explore = self._explore(len(slots), allowed, main.items.astype(np.int64), user, nonce)
        page = interleave(main, explore, horizon, slots)
        page = fill_page(page, horizon, self.catalog, self.sources, cfg.fallback, item_filter, skip)
        t["total"] = (time.perf_counter() - t0) * 1e3
        return SurfaceResult(page.head(k), t)
