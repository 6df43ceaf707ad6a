"""The feed's ``blend/compose`` step: the page composed by utility, diversity, slot rules and
explore slots for fresh items (``surfaces.feed.blend = "blend/compose"``, configured by
``[surfaces.feed.compose]``).

The ranked list (``rank/multihead`` writes the ``p_<head>`` columns) is ordered by the utility
of ``compose.utility.weights``, re-ordered by MMR or DPP over the item vectors of
``compose.diversity.vectors`` and placed under ``compose.slot_rules`` (``blend.compose``). The
explore slots at ``compose.fresh.slots`` then hold fresh items (fewer than ``max_engagements``
engagements in the build's logs, or created within ``new_days`` before its newest event: the
build's ``feed/engagement``) that the request allows, drawn by the ``fresh.policy`` fitted on
their impressions and clicks; the draw is seeded by (seed, user, request key: the session,
else the request id), so a replayed request shows the same page and the pages of a session
continue each other. The fresh items the policy draws among are left out of the other
positions, so those do not depend on the draw.

Every item carries ``propensity`` (1 at a deterministic position; at an explore slot the
policy's marginal probability of that slot holding that item), ``explored`` (1 at an explore
slot) and ``propensity_cascade`` (the probability of the explore slots up to and including
this one holding exactly these items), which the page JSON and the impressions log. The slot
rules govern the deterministic positions; an explore slot's item does not count against them.

With modules on, the rows come first and this page is the grid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.blend import CASCADE, EXPLORED, SlateChoice, explore_page
from moodboard.blend.compose import ComposeConfig, FreshPolicy, fresh_items, order_page
from moodboard.data import Candidates, Catalog, IdMap
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.rank import HEADS, LTV_COLUMN, MULTIHEAD, MultiHeadModel
from moodboard.surfaces.modules import compose_modules
from moodboard.surfaces.recent import EVENTS_UNTIL
from moodboard.surfaces.runner import Prepared, Retrieved, SurfaceEnv
from moodboard.surfaces.steps import register_blend

_log = logging.getLogger(__name__)

__all__ = [
    "CASCADE",
    "COMPOSE",
    "ENGAGEMENT",
    "FRESH",
    "ItemEngagement",
    "explore_arms",
    "explore_choice",
]

#: The step's registry name.
COMPOSE = "blend/compose"
#: The resource holding the build's ``ItemEngagement``.
ENGAGEMENT = "engagement"
#: The provenance of the items an explore slot holds.
FRESH = "explore/fresh"
#: The columns the rank stage writes, by ranker (a weight on another ``p_*`` is refused).
_WRITES = {MULTIHEAD: {f"p_{h}" for h in HEADS} | {C.UTILITY}}
_MEMO = "compose/state"


class ItemEngagement:
    """Each item's impressions, clicks and engagements (clicks, saves, carts, purchases) in
    the build's event log, bots left out: what the explore policy learns from.

    Parameters
    ----------
    item_ids
        External item ids.
    impressions, clicks, engagements
        Counts aligned with ``item_ids``.
    """

    COLUMNS = ("impressions", "clicks", "engagements")

    def __init__(
        self,
        item_ids: Sequence[str] = (),
        impressions: Sequence[int] = (),
        clicks: Sequence[int] = (),
        engagements: Sequence[int] = (),
    ) -> None:
        self.item_ids = list(item_ids)
        self.counts = {
            n: np.asarray(v, dtype=np.int64)
            for n, v in zip(self.COLUMNS, (impressions, clicks, engagements), strict=True)
        }
        if any(len(v) != len(self.item_ids) for v in self.counts.values()):
            raise ValueError("The counts of ItemEngagement must align with its item ids.")

    def __len__(self) -> int:
        return len(self.item_ids)

    def aligned(self, ids: IdMap) -> dict[str, np.ndarray]:
        """Each count per catalog item (0 for items the log never names)."""
        idx = ids.indices(self.item_ids, missing=-1) if self.item_ids else np.zeros(0, int)
        ok = np.asarray(idx) >= 0
        out = {}
        for name, v in self.counts.items():
            full = np.zeros(len(ids), dtype=np.int64)
            full[np.asarray(idx)[ok]] = v[ok]
            out[name] = full
        return out

    def save(self, path: Path) -> None:
        """Write ``item_id, impressions, clicks, engagements`` as Parquet."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = {"item_id": pa.array(self.item_ids, pa.string())}
        cols |= {n: pa.array(v, pa.int64()) for n, v in self.counts.items()}
        pq.write_table(pa.table(cols), path)

    @classmethod
    def load(cls, path: Path) -> ItemEngagement:
        """Read a saved file."""
        t = pq.read_table(path)
        return cls(t.column("item_id").to_pylist(), *(t.column(n).to_numpy() for n in cls.COLUMNS))


@dataclass(frozen=True)
class _State:
    """What the step computes once per chain: item vectors, rule attribute codes, the fresh
    items (newest first) and the fitted policy."""

    vectors: np.ndarray | None
    attributes: dict[str, np.ndarray]
    fresh: np.ndarray
    policy: FreshPolicy


def _codes(catalog: Catalog, attribute: str) -> np.ndarray:
    """Integer codes of an attribute per item (-1: unknown)."""
    if attribute == C.CATEGORY:
        values = np.asarray(catalog.category, dtype=object)
    elif attribute == C.BRAND:
        values = np.asarray(catalog.brand, dtype=object)
    else:
        values = np.asarray(catalog.attribute(attribute), dtype=object)
    keys = np.array([str(v) if v not in (None, "") else "" for v in values], dtype=object)
    uniq, codes = np.unique(keys, return_inverse=True)
    return np.where(keys == "", -1, codes).astype(np.int64) if len(uniq) else codes


def _wants_vectors(cfg: ComposeConfig) -> bool:
    div = cfg.diversity
    return (div.method != "none" and div.strength > 0) or cfg.fresh.policy == "linucb"


def _state(env: SurfaceEnv) -> _State:
    cfg: ComposeConfig = env.config.compose
    catalog = env.catalog
    vectors = env.item_vectors(cfg.diversity.vectors) if _wants_vectors(cfg) else None
    attributes = {r.attribute: _codes(catalog, r.attribute) for r in cfg.slot_rules.rules}
    found = env.resources.get(ENGAGEMENT)
    counts = (found or ItemEngagement()).aligned(catalog.ids)
    until = env.resources.get(EVENTS_UNTIL)
    if until is not None and until.tzinfo is not None:
        until = until.astimezone(UTC).replace(tzinfo=None)
    ref = None if until is None else np.datetime64(until, "us")
    fresh = fresh_items(counts["engagements"], catalog.created_at, ref, cfg.fresh)
    linucb = cfg.fresh.policy == "linucb"
    policy = FreshPolicy(cfg.fresh).fit(
        counts["impressions"], counts["clicks"], vectors if linucb else None
    )
    _log.info("blend/compose: %d fresh items, policy %s", len(fresh), cfg.fresh.policy)
    return _State(vectors, attributes, fresh, policy)


def setup_compose(env: SurfaceEnv, ranker: str) -> None:
    """Refuse a chain ``blend/compose`` cannot serve, then fit its state (at engine load).

    Raises
    ------
    ConfigError
        If the surface has no ``compose`` settings (it is the feed's step), the utility
        weighs head scores ``ranker`` does not write (or ``ltv`` without a value model), the
        item vectors diversity or LinUCB need are not loaded, or a slot rule names an
        attribute the catalog lacks.
    """
    cfg = getattr(env.config, "compose", None)
    if not isinstance(cfg, ComposeConfig):
        raise ConfigError(f"{COMPOSE} is the feed's blend step: declare it on surfaces.feed.")
    writes = _WRITES.get(ranker, set())
    weights = cfg.utility.weights
    missing = sorted(
        n
        for n, w in weights.items()
        if w and n not in writes and (n.startswith("p_") or n == C.UTILITY)
    )
    if missing:
        raise ConfigError(
            f"{COMPOSE} weighs {missing}, which the rank stage {ranker} does not write: set "
            f'surfaces.feed.ranker = "{MULTIHEAD}" (with a version that trained it), or set '
            "surfaces.feed.compose.utility.weights = {} to keep the ranker's order."
        )
    model = env.resources.get(MULTIHEAD) if ranker == MULTIHEAD else None
    has_ltv = isinstance(model, MultiHeadModel) and model.ltv is not None
    if weights.get(LTV_COLUMN) and not has_ltv:
        raise ConfigError(
            f"{COMPOSE} weighs {LTV_COLUMN!r}, which only {MULTIHEAD} with a trained value "
            "model (rank/ltv, trained by `moodboard build` on logs longer than "
            "rank.ltv.horizon_days) writes: rebuild, or drop the weight."
        )
    name = cfg.diversity.vectors
    if _wants_vectors(cfg) and env.item_vectors(name) is None:
        loaded = sorted(n for n in env.sources if env.item_vectors(n) is not None)
        raise ConfigError(
            f"{COMPOSE} needs the item vectors of {name!r} (diversity or linucb), which this "
            f"engine does not load: set surfaces.feed.compose.diversity.vectors to one of "
            f"{loaded}, or diversity.method = 'none' and fresh.policy != 'linucb'."
        )
    known = {C.CATEGORY, C.BRAND, *env.catalog.attributes}
    bad = sorted({r.attribute for r in cfg.slot_rules.rules} - known)
    if bad:
        raise ConfigError(
            f"The slot rules of {COMPOSE} name {bad}, which the catalog lacks: choose among "
            f"{sorted(known)}."
        )
    env.memo(_MEMO, lambda: _state(env))


def explore_arms(prepared: Prepared, env: SurfaceEnv) -> np.ndarray:
    """The fresh items the request allows that the policy draws among (at most
    ``fresh.max_arms``, newest first)."""
    st: _State = env.memo(_MEMO, lambda: _state(env))
    allowed = np.ones(len(env.catalog), dtype=bool)
    if prepared.item_filter is not None:
        allowed &= prepared.item_filter.mask(env.catalog)
    allowed[prepared.exclude] = False
    return st.fresh[allowed[st.fresh]][: env.config.compose.fresh.max_arms]


def explore_choice(
    prepared: Prepared, env: SurfaceEnv, slots: int
) -> tuple[np.ndarray, SlateChoice]:
    """The fresh items the policy drew among (``explore_arms``) and its slate of ``slots``
    for the prepared request (seeded by its user and request key), with the probabilities
    the page logs; an empty slate with ``fresh.policy = "none"`` or no fresh item."""
    cfg: ComposeConfig = env.config.compose
    st: _State = env.memo(_MEMO, lambda: _state(env))
    arms = explore_arms(prepared, env) if cfg.fresh.policy != "none" and slots else None
    if arms is None or not len(arms):
        empty = np.zeros(0)
        none = np.zeros(0, np.int64)
        return none, SlateChoice(none, empty, empty, np.zeros((0, 0)))
    ctx = prepared.context
    key = str(ctx.get("request_key", ctx.get("key", "")))
    return arms, st.policy(arms, slots, seed=env.seed, user=ctx.get("user"), key=key)


def _deterministic(page: Candidates) -> Candidates:
    """``page`` with the columns of a page without explore slots."""
    ones = np.ones(len(page))
    page = page.with_score(C.PROPENSITY, ones).with_score(EXPLORED, np.zeros(len(page)))
    return page.with_score(CASCADE, ones)


@register_blend(COMPOSE, setup=setup_compose)
def blend_compose(
    retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv
) -> Candidates:
    """The composed page over ``max(need, per_source)`` positions (module docstring); with
    modules, the policy's rows first, then this page as the grid.

    Raises
    ------
    ConfigError
        If a weighted score column is missing from the ranked candidates.
    """
    cfg: ComposeConfig = env.config.compose
    st: _State = env.memo(_MEMO, lambda: _state(env))
    horizon = max(need, env.config.per_source)
    at = np.asarray(cfg.fresh.slots, dtype=np.int64) - 1
    at = at[at < horizon]
    arms, choice = explore_choice(prepared, env, len(at))
    # the arms leave the ranked list first, so the slot rules hold over what stays
    main = order_page(retrieved.main.exclude(arms), cfg, st.vectors, st.attributes)
    if not len(choice.order):
        grid = _deterministic(main.head(horizon))
    else:
        pool = Candidates.from_scores(arms.astype(np.int32), np.zeros(len(arms)), FRESH)
        grid = explore_page(main, pool, choice, at, horizon)
    if "modules" in prepared.context:
        return compose_modules(grid, retrieved, prepared, env)
    return grid
