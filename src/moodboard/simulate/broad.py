"""Broad-query sessions: do refinement chips and module rows help shoppers who start broad?

A shopper with known tastes (``world.Shopper``) starts a search session with a broad query
made of their favourite season or usage and gender ("summer outfit for women", "casual wear
for men"): it names no product type. The session runs through the engine's real search surface
(in-process, the chain ``/search`` serves) for at most ``max_queries`` queries:

1. The shopper sees the page of the query (``page_size`` items, in page order: a broad
   query's module rows come first when the arm shows them) and acts on it by the simulator's
   position-biased click model (``clickmodel``): clicks, carts and purchases from the true
   affinity of each item at its position.
2. Without a purchase, the shopper asks another query:

   - in an arm with chips, the chip whose value the shopper likes most (their true weight for
     it), if they like any: shoppers recognise what they like among offered options;
   - otherwise, with probability ``self_refine``, their own narrower query (a favourite article
     type added to the broad one, as a shopper who knows what they want would type); else
     they leave.

Arms: ``grid`` (the search surface with ``surfaces.search.modules`` off and no chips) and
``assisted`` (modules on, chips from ``/refinements``' function). Both arms use common random
numbers: shopper ``n``'s draws are the same in each, so the arms are compared on each
shopper's difference (``compare.PairedStats``: the paired t interval).

Reported per arm: purchases and clicks per broad session, sessions with a purchase, queries per
session, and the queries asked up to the first purchase (sessions with one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Request
from moodboard.serve.registry import Engine
from moodboard.simulate.compare import PairedStats
from moodboard.simulate.run import Simulator
from moodboard.simulate.world import Shopper, World
from moodboard.surfaces.modules import with_modules
from moodboard.surfaces.refinements import refinements

#: A chip: (its query, its facet value); ``(query, user) -> chips`` in the engine's order.
Chips = Callable[[str, str | None], Sequence[tuple[str, str]]]
#: How a shopper phrases a broad query from a value: season/usage -> words.
_BROAD_WORDS = {"season": "{v} outfit", "usage": "{v} wear"}
_GENDER_WORDS = {"men": "for men", "women": "for women", "boys": "for boys", "girls": "for girls"}
METRICS = ("purchases", "clicks", "purchased", "queries", "queries_to_purchase")


class BroadSessionConfig(BaseModel):
    """The broad-query sessions (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shoppers: int = Field(default=400, ge=2)
    max_queries: int = Field(default=3, ge=1, le=10)
    page_size: int = Field(default=24, ge=1, le=100)
    self_refine: float = Field(default=0.5, ge=0, le=1)
    seed: int = 0


@dataclass
class ArmOutcome:
    """Per shopper: purchases, whether any, queries asked, queries up to the first purchase
    (NaN without one)."""

    purchases: np.ndarray
    queries: np.ndarray
    first: np.ndarray
    clicks: np.ndarray

    def metrics(self) -> dict[str, float]:
        """Means over the shoppers (``queries_to_purchase`` over those who bought)."""
        bought = np.isfinite(self.first)
        return {
            "purchases": float(self.purchases.mean()),
            "clicks": float(self.clicks.mean()),
            "purchased": float((self.purchases > 0).mean()),
            "queries": float(self.queries.mean()),
            "queries_to_purchase": float(self.first[bought].mean()) if bought.any() else np.nan,
        }


@dataclass
class BroadComparison:
    """Both arms' outcomes and the paired difference ``assisted - grid``."""

    config: BroadSessionConfig
    arms: dict[str, ArmOutcome] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: each arm's metrics and the paired differences with 95% intervals."""
        a, b = self.arms["assisted"], self.arms["grid"]
        diffs = {}
        for name, x, y in (
            ("purchases", a.purchases, b.purchases),
            ("clicks", a.clicks, b.clicks),
            ("purchased", a.purchases > 0, b.purchases > 0),
            ("queries", a.queries, b.queries),
        ):
            st = PairedStats.of(np.asarray(x, float), np.asarray(y, float))
            diffs[name] = {"estimate": st.mean, "ci": list(st.interval())}
        return {
            "shoppers": self.config.shoppers,
            "config": self.config.model_dump(),
            "arms": {n: o.metrics() for n, o in self.arms.items()},
            "diffs": {"assisted-grid": diffs},
        }


def broad_query(shopper: Shopper) -> str | None:
    """The shopper's broad query: their favourite season or usage, and gender words."""
    for attr, pattern in _BROAD_WORDS.items():
        favs = shopper.favourites.get(attr)
        if favs:
            words = pattern.format(v=favs[0].lower())
            gender = (shopper.favourites.get("gender") or ("",))[0].lower()
            return f"{words} {_GENDER_WORDS.get(gender, '')}".strip()
    return None


def chip_for(shopper: Shopper, world: World, chips: Sequence[tuple[str, str]]) -> str | None:
    """The chip a shopper follows: the one whose value they like most (their weight for it
    in any taste attribute; the engine's order breaks ties), None when they like none."""
    vocabs = {
        attr: {v.lower(): j for j, v in enumerate(world.vocab.get(attr, ()))}
        for attr in shopper.weights
    }
    best, best_w = None, 0.0
    for query, value in chips:
        w = 0.0
        for attr, weights in shopper.weights.items():
            j = vocabs[attr].get(value.lower())
            if j is not None and j < len(weights):
                w = max(w, float(weights[j]))
        if w > best_w:
            best, best_w = query, w
    return best


class BroadSessions:
    """Runs broad-query sessions of a world's shoppers through an engine's search surface.

    Parameters
    ----------
    engine
        The loaded engine.
    sim
        The simulator (the world, its shoppers and click model).
    config
        The sessions' parameters.
    chips
        The refinement chips of a query (None: no arm shows chips).
    """

    def __init__(
        self,
        engine: Engine,
        sim: Simulator,
        config: BroadSessionConfig | None = None,
        chips: Chips | None = None,
    ) -> None:
        self.engine = engine
        self.sim = sim
        self.config = config or BroadSessionConfig()
        self.chips = chips
        self.index = {str(x): i for i, x in enumerate(sim.world.item_ids)}

    def _page(self, surface: Any, query: str, user: str, rid: str) -> np.ndarray:
        req = Request(
            surface="search", user_id=user, query=query, k=self.config.page_size, request_id=rid,
            ts=datetime.now(UTC),
        )  # fmt: skip
        res = surface.run(req)
        ids = self.engine.catalog.ids.external(res.candidates.items[: req.k].tolist())
        return np.array([self.index[i] for i in ids if i in self.index], dtype=np.int64)

    def session(self, n: int, assisted: bool) -> tuple[int, int, float, int]:
        """Shopper ``n``'s session: (purchases, queries asked, queries up to the first
        purchase or NaN, clicks). The same draws in both arms (common random numbers)."""
        cfg, world = self.config, self.sim.world
        shopper = self.sim.shopper(n)
        query = broad_query(shopper)
        if query is None:
            return 0, 0, np.nan, 0
        surface = with_modules(self.engine.search, assisted)
        purchases, first = 0, np.nan
        asked = clicks = 0
        for q in range(cfg.max_queries):
            rng = np.random.default_rng([cfg.seed, n, q])
            asked += 1
            items = self._page(surface, query, shopper.user_id, f"broad-{n}-{q}")
            if len(items):
                positions = np.arange(1, len(items) + 1)
                out = self.sim.click_model.sample(rng, positions, world.affinity(shopper, items))
                bought = int(out.purchase.sum())
                clicks += int(out.click.sum())
                if bought:
                    purchases += bought
                    first = float(asked) if np.isnan(first) else first
                    break
            if q == cfg.max_queries - 1:
                break
            nxt = None
            if assisted and self.chips is not None:
                nxt = chip_for(shopper, world, self.chips(query, shopper.user_id))
            if nxt is None:
                types = shopper.favourites.get("articleType") or ()
                if not types or rng.random() >= cfg.self_refine:
                    break
                nxt = f"{query} {types[int(rng.integers(len(types)))].lower()}"
            query = nxt
        return purchases, asked, first, clicks

    def run(self) -> BroadComparison:
        """Both arms over ``config.shoppers`` shoppers."""
        out = BroadComparison(self.config)
        n = self.config.shoppers
        for name, assisted in (("grid", False), ("assisted", True)):
            rows = [self.session(u, assisted) for u in range(n)]
            p, q, f, c = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
            out.arms[name] = ArmOutcome(p, q, f, c)
        return out


def engine_chips(engine: Engine) -> Chips:
    """The refinement chips ``GET /refinements`` serves for a query: (refined query, value)."""

    def chips(query: str, user: str | None) -> list[tuple[str, str]]:
        return [(c.query, c.value) for c in refinements(engine.search, query, user).chips]

    return chips
