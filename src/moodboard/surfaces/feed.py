"""The feed surface's steps: ``prepare/feed`` and ``blend/explore``.

The home feed of a user: personalized sources fused, minus what the user already engaged with.

A user with a history: every source named in ``config.sources`` that is loaded (``two_tower``,
``sequence``, ``graph/walks``, ``user_interests``, ``ease``), asked with the user's history,
its action weights and the user id, proposes its best items the user has not engaged with
(with ``exclude_engaged`` off, engaged items may come back: re-purchases); the lists are fused
by weighted reciprocal rank with provenance. A user without one (anonymous, new, or whose
items left the catalog) gets the ``cold_sources`` (popular items) with ``explore_share`` of the
page, at evenly spaced slots, given to a random slice of the catalog seeded by (seed, user,
request key): the same key gives the same page, so a feed pages on consistently, and a new key
(a new day, a new session) shows other items. The key is the request's ``session``, else the
UTC day of the request's time (the simulated day in a simulation). The fallback sources fill
what is left, and a page is never an error while the catalog and the filter allow items.

The page order is computed over ``max(k, per_source)`` items and then cut, so a longer page
(the next cursor) starts with the shorter one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.blend import explore_slice, interleave, slots
from moodboard.data import Candidates, Request
from moodboard.errors import ConfigError
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.modules import candidate_modules, compose_modules
from moodboard.surfaces.recent import rank_query, recent_actions
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, SurfaceEnv
from moodboard.surfaces.steps import register_blend, register_prepare

_log = logging.getLogger(__name__)


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

    def users(self) -> list[str]:
        """The users with a history, sorted."""
        return sorted(self._by_user)

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


def personalized(env: SurfaceEnv) -> list[str]:
    """The configured sources that are loaded and weigh more than 0 in the fusion, in config
    order."""
    w = env.config.fuse.weights
    return [n for n in env.config.sources if n in env.sources and w.get(n, 1.0) > 0]


def user_history(request: Request, env: SurfaceEnv) -> tuple[np.ndarray, np.ndarray | None]:
    """The request's own history (``items`` with ``weights``; unknown ids are dropped), else
    the user's built one (``histories`` resource).

    Raises
    ------
    ConfigError
        If ``weights`` do not align with ``items``.
    """
    if not request.items:
        histories = env.resources.get("histories") or UserHistories()
        user = request.user_id
        hist = histories(user)
        w = np.asarray(histories.weights(user), dtype=np.float64)
        return _with_recent(hist, w, request, env)
    w = None if request.weights is None else np.asarray(request.weights, dtype=np.float64)
    if w is not None and len(w) != len(request.items):
        raise ConfigError(
            f"The 'weights' parameter of the feed must have one weight per history item "
            f"({len(request.items)}). Got {len(w)} instead."
        )
    idx = env.catalog.ids.indices(list(request.items), missing=-1).astype(np.int64)
    known = idx >= 0
    return idx[known], None if w is None else w[known]


def _with_recent(
    hist: np.ndarray, w: np.ndarray, request: Request, env: SurfaceEnv
) -> tuple[np.ndarray, np.ndarray]:
    """The built history followed by the user's actions accepted since (the ``recent``
    resource, a ``RecentActions``: at most its ``per_user`` newest)."""
    actions = recent_actions(request, env.resources)
    if not actions:
        return hist, w
    idx = env.catalog.ids.indices([a.item_id for a in actions], missing=-1).astype(np.int64)
    known = idx >= 0
    weights = np.array([a.weight for a in actions], dtype=np.float64)[known]
    return np.concatenate([hist.astype(np.int64), idx[known]]), np.concatenate([w, weights])


def _utc_day(ts: datetime) -> str:
    """The UTC day of a time (a naive one is UTC already), ``YYYY-MM-DD``."""
    return (ts.astimezone(UTC) if ts.tzinfo else ts).date().isoformat()


@register_prepare("prepare/feed")
def prepare_feed(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Ask the personalized sources with the user's history (oldest first), its action
    weights and the user id, or, for a user without one, the ``cold_sources``.

    Raises
    ------
    ConfigError
        If the request's ``weights`` do not align with its ``items``.
    """
    cfg = env.config
    hist, w = user_history(request, env)
    seen = np.unique(hist)
    engaged = seen if cfg.exclude_engaged else seen[:0]
    skip = np.unique(np.concatenate([engaged, env.indices(request.exclude)])).astype(np.int64)
    f = request.item_filter
    f = None if f is None or f.is_empty() else f
    names = personalized(env) if len(seen) else []
    user = request.user_id
    query = SourceQuery(history=hist, weights=w, user=user, item_filter=f, exclude=skip)
    cold = SourceQuery(item_filter=f, exclude=skip)
    # the key of the policies' draws (modules, blend/compose): the session, else the request
    request_key = request.session if request.session is not None else request.request_id
    context = {
        "user": user,
        "key": request.session if request.session is not None else _utc_day(request.ts),
        "personalized": bool(names),
        "request_key": request_key,
    }
    lists, given = {}, {}
    if cfg.modules.enabled:
        modules, lists, given = candidate_modules(request, env, hist, w, query)
        context |= {"modules": modules, "module_key": request_key}
    return Prepared(
        {n: Probe(query) for n in names},
        max(need, cfg.per_source),
        lists=lists,
        backup={n: Probe(cold) for n in cfg.cold_sources if n in env.sources},
        item_filter=f,
        exclude=skip,
        rank=rank_query(request, env.resources, context=context),
        context=context,
        given=given,
        rank_lists=cfg.modules.enabled,
    )


@register_blend("blend/explore")
def blend_explore(
    retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv
) -> Candidates:
    """A share of the page (``explore_share`` for a cold start, ``explore_share_known``
    otherwise), at evenly spaced slots, to random allowed items seeded by (seed, user,
    request key); computed over ``max(need, per_source)`` so pages continue each other. With
    modules (``surfaces.modules``), the policy's rows of modules come first, then this grid."""
    cfg = env.config
    horizon = max(need, cfg.per_source)
    share = cfg.explore_share if retrieved.cold else cfg.explore_share_known
    at = slots(horizon, share)
    if "modules" in prepared.context:  # the home page: rows of modules, then this grid
        return compose_modules(
            _grid(retrieved, prepared, horizon, at, env), retrieved, prepared, env
        )
    return _grid(retrieved, prepared, horizon, at, env)


def _grid(
    retrieved: Retrieved, prepared: Prepared, horizon: int, at: np.ndarray, env: SurfaceEnv
) -> Candidates:
    """The ranked list with random allowed items at the slots ``at``."""
    if not len(at):
        return retrieved.main
    allowed = np.ones(len(env.catalog), dtype=bool)
    if prepared.item_filter is not None:
        allowed &= prepared.item_filter.mask(env.catalog)
    allowed[prepared.exclude] = False
    ctx = prepared.context
    taken = retrieved.main.items.astype(np.int64)
    explore = explore_slice(len(at), allowed, taken, env.seed, ctx["user"], ctx["key"])
    return interleave(retrieved.main, explore, horizon, at)
