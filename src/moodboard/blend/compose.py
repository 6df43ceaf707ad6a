"""The composed page: utility, then diversity, then slot rules, then explore slots for fresh
items filled by a policy with exact propensities.

``order_page`` is the deterministic part: the ``Utility`` of the rank stage's per-objective
scores (with no weights: the incoming order), re-ordered by ``MMR`` or ``DPP`` over item
embeddings (``strength`` 0: the utility order exactly), then placed under the ``SlotRules``.
``FreshPolicy`` fills the explore slots: its arms are fresh items (little engagement in the
build's logs, or created recently; ``fresh_items``), its state is fitted from their
impressions and clicks (Thompson sampling: one Beta posterior per item; LinUCB: one ridge
model over the items' embeddings), and it draws per request with ``request_rng``, so the same
(seed, user, request key) gives the same page. ``explore_page`` then puts its picks at the
slots with their propensities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Self

import numpy as np
from pydantic import Field, field_validator

from moodboard.blend._base import BlendConfig
from moodboard.blend.bandits import SlateChoice, ThompsonConfig, ThompsonSampling
from moodboard.blend.diversity import DPP, MMR, DiversityConfig
from moodboard.blend.linucb import LinUCB, LinUCBConfig
from moodboard.blend.slot_rules import SlotRules, SlotRulesConfig
from moodboard.blend.utility import Utility, UtilityConfig
from moodboard.data import Candidates
from moodboard.data import columns as C
from moodboard.errors import ConfigError, NotFittedError


class ComposeDiversity(DiversityConfig):
    """The diversity re-ranker of the composed page.

    Attributes
    ----------
    method
        ``"mmr"``, ``"dpp"`` or ``"none"`` (the utility order).
    vectors
        The loaded vector source whose item vectors are the embeddings (``dense/text``).
    """

    method: Literal["none", "mmr", "dpp"] = "mmr"
    vectors: str = "dense/text"


class FreshConfig(BlendConfig):
    """The explore slots of the composed page and the policy that fills them.

    Attributes
    ----------
    policy
        ``"thompson"`` (Beta posteriors from the items' impressions and clicks), ``"linucb"``
        (one ridge model over the items' embeddings, epsilon-greedy) or ``"none"``.
    slots
        The page positions (1-based, in the whole feed: a page at a cursor shows those it
        covers) of the explore slots.
    max_engagements
        An item is fresh with fewer than this many engagements (clicks, saves, carts,
        purchases) in the build's logs ...
    new_days
        ... or created within this many days before the build's newest event (0: never).
    max_arms
        The policy draws among at most this many fresh items: the newest first (by
        ``created_at``, else the rows the catalog added last).
    thompson, linucb
        The policies' own settings.
    """

    policy: Literal["thompson", "linucb", "none"] = "thompson"
    slots: tuple[int, ...] = (4, 10, 16, 22)
    max_engagements: int = Field(default=3, ge=0)
    new_days: float = Field(default=14.0, ge=0)
    max_arms: int = Field(default=100, ge=1, le=2_000)
    thompson: ThompsonConfig = ThompsonConfig()
    linucb: LinUCBConfig = LinUCBConfig()

    @field_validator("slots")
    @classmethod
    def _positions(cls, s: tuple[int, ...]) -> tuple[int, ...]:
        if any(p < 1 for p in s) or len(set(s)) != len(s):
            raise ValueError(
                f"The 'slots' of FreshConfig must be distinct positions >= 1. Got {s}."
            )
        return tuple(sorted(s))


class ComposeConfig(BlendConfig):
    """``blend/compose``: utility weights, diversity, slot rules and fresh-item explore slots.

    With ``utility.weights`` empty the page keeps the rank stage's order (its ``utility``
    column when it wrote one, else the rank order, is the relevance diversity trades off).
    """

    utility: UtilityConfig = UtilityConfig()
    diversity: ComposeDiversity = ComposeDiversity()
    slot_rules: SlotRulesConfig = SlotRulesConfig()
    fresh: FreshConfig = FreshConfig()


def _utility(cand: Candidates, config: UtilityConfig) -> Candidates:
    """``Utility`` of the weights; with none, the incoming order (its rank as ``utility``
    unless the candidates carry one)."""
    if config.weights:
        return Utility(config)(cand)
    if C.UTILITY in cand.scores:
        return cand
    return cand.with_score(C.UTILITY, -np.arange(len(cand), dtype=np.float64))


def order_page(
    cand: Candidates,
    config: ComposeConfig,
    embeddings: np.ndarray | None,
    attributes: Mapping[str, np.ndarray],
) -> Candidates:
    """The deterministic page: utility, diversity (over ``embeddings``), slot rules.

    Raises
    ------
    ConfigError
        If a weighted column is missing, diversity is on without ``embeddings``, or a rule's
        attribute is not among ``attributes``.
    """
    page = _utility(cand, config.utility)
    div = config.diversity
    if div.method != "none" and div.strength > 0 and len(page) > 1:
        if embeddings is None:
            raise ConfigError(
                f"The diversity of blend/compose needs the item vectors of {div.vectors!r}."
            )
        page = (MMR if div.method == "mmr" else DPP)(div)(page, embeddings)
    if config.slot_rules.rules and len(page):
        page = SlotRules(config.slot_rules)(page, attributes)
    return page


def fresh_items(
    engagements: np.ndarray,
    created_at: np.ndarray | None,
    reference: np.datetime64 | None,
    config: FreshConfig,
) -> np.ndarray:
    """The fresh items of the catalog (indices), newest first.

    Parameters
    ----------
    engagements
        Per catalog item, its engagements in the build's logs.
    created_at
        Per item, when it was created (``datetime64``; NaT: unknown), or None.
    reference
        The build's newest event time (``new_days`` counts back from it), or None.
    config
        The thresholds.
    """
    n = len(engagements)
    fresh = np.asarray(engagements) < config.max_engagements
    rows = np.arange(n)
    if created_at is None:
        return rows[fresh][::-1].copy()
    t = np.asarray(created_at, dtype="datetime64[us]")
    if reference is not None and config.new_days > 0:
        since = np.datetime64(reference, "us") - np.timedelta64(
            int(config.new_days * 86400e6), "us"
        )
        fresh |= ~np.isnat(t) & (t >= since)
    age = np.where(np.isnat(t), np.iinfo(np.int64).max, -t.astype(np.int64))  # NaT: last
    order = np.lexsort((-rows, age))
    return order[fresh[order]]


class FreshPolicy:
    """The explore policy of the fresh items (``FreshConfig.policy``).

    Parameters
    ----------
    config
        The policy and its settings; ``FreshConfig()`` when None.
    """

    def __init__(self, config: FreshConfig | None = None) -> None:
        self.config = config or FreshConfig()

    def fit(
        self, impressions: np.ndarray, clicks: np.ndarray, features: np.ndarray | None = None
    ) -> Self:
        """Learn from each catalog item's impressions and clicks in the build's logs.

        Thompson sampling: item ``i`` has ``Beta(prior_alpha + c_i, prior_beta + n_i - c_i)``
        with ``c_i = min(clicks, impressions)``. LinUCB: one row per shown item, its
        ``features`` row with its click-through rate as the reward.

        Raises
        ------
        ConfigError
            If LinUCB has no ``features`` or the arrays do not align.
        """
        n = np.asarray(impressions, dtype=np.float64)
        c = np.minimum(np.asarray(clicks, dtype=np.float64), n)
        if n.shape != c.shape:
            raise ConfigError("The impressions and clicks of FreshPolicy must align.")
        shown = np.flatnonzero(n > 0)
        ctr = c[shown] / n[shown]
        if self.config.policy == "thompson":
            self.policy_ = ThompsonSampling(self.config.thompson).fit(shown, ctr, n[shown])
        elif self.config.policy == "linucb":
            if features is None or len(features) != len(n):
                raise ConfigError(
                    "The linucb policy of blend/compose needs one feature row per item "
                    "(the item vectors of surfaces.feed.compose.diversity.vectors)."
                )
            self.features_ = np.asarray(features, dtype=np.float64)
            self.policy_ = LinUCB(self.config.linucb).fit(self.features_[shown], ctr)
        else:
            self.policy_ = None
        return self

    def __call__(
        self, arms: np.ndarray, slots: int, *, seed: int, user: str | None, key: str
    ) -> SlateChoice:
        """The policy's slate of ``slots`` among ``arms`` (item indices) for one request.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        if not hasattr(self, "policy_"):
            raise NotFittedError("FreshPolicy isn't fitted, call fit first")
        arms = np.asarray(arms, dtype=np.int64)
        req = {"seed": seed, "user": user, "request_id": key}
        if isinstance(self.policy_, ThompsonSampling):
            return self.policy_(arms, slots, **req)
        if isinstance(self.policy_, LinUCB):
            return self.policy_(self.features_[arms], slots, **req)
        empty = np.zeros(0)
        return SlateChoice(np.zeros(0, dtype=np.int64), empty, empty, np.zeros((0, len(arms))))
