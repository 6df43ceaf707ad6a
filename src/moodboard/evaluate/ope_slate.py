"""Slate off-policy estimators: the value of a ranking policy from logged ranked pages.

The logs hold one row per shown slot: the page (``slate_id``), the slot, the reward of that
slot, and the behaviour and evaluation policies' probabilities of what was shown. The three
estimators weigh each slot's reward by a ratio of these probabilities and sum a page's terms;
the value is the mean over pages (named and computed as in obp 0.4.1, checked to 1e-9):

===== ========================================================= ================================
sips  the whole page's probability (standard IPS)                any reward interaction
iips  the probability of the item at that slot (independent)    each slot's reward depends on
                                                                 its own item only
rips  the probability of the page's top ``k`` (reward           the reward at ``k`` depends on
      interaction, the cascade)                                  the items at ``1..k``
===== ========================================================= ================================

The intervals are obp's bootstrap over pages (``moodboard.evaluate.ope.bootstrap_intervals``
on the per-page sums, pages in ascending id order).
"""

from __future__ import annotations

import numpy as np

from moodboard.errors import ConfigError
from moodboard.evaluate.ope import Estimate, OPEConfig, bootstrap_intervals
from moodboard.evaluate.ope_slope import slope_width

#: The slate estimators, by obp's names, and the propensity each one weighs by.
SLATE_ESTIMATORS = {"sips": "slate", "iips": "item-position", "rips": "cascade"}


def _check(
    name: str,
    slate_id: np.ndarray,
    reward: np.ndarray,
    position: np.ndarray,
    pscore: np.ndarray,
    evaluation_pscore: np.ndarray,
) -> None:
    """obp's checks of slate logs: one shape, probabilities in range, slots unique per page,
    the page probability constant within a page (sips) and the cascade non-increasing (rips)."""
    n = len(slate_id)

    def bad(param: str, must: str, got: object) -> None:
        raise ConfigError(f"The '{param}' parameter of {name} must be {must}. Got {got} instead.")

    for param, arr in (
        ("reward", reward),
        ("position", position),
        ("pscore", pscore),
        ("evaluation_pscore", evaluation_pscore),
    ):
        if arr.shape != (n,):
            bad(param, f"an array of shape ({n},) like slate_id", arr.shape)
    if np.any(pscore <= 0) or np.any(pscore > 1):
        bad("pscore", "in (0, 1]", (float(pscore.min()), float(pscore.max())))
    if np.any(evaluation_pscore < 0) or np.any(evaluation_pscore > 1):
        bad("evaluation_pscore", "in [0, 1]", (float(evaluation_pscore.min()), None))
    order = np.lexsort((position, slate_id))
    s, p = slate_id[order], position[order]
    same = s[1:] == s[:-1]
    if np.any(same & (p[1:] == p[:-1])):
        bad("position", "unique within each slate", "a repeated slot")
    if name == "sips":
        for param, arr in (("pscore", pscore), ("evaluation_pscore", evaluation_pscore)):
            a = arr[order]
            if np.any(same & (a[1:] != a[:-1])):
                bad(param, "the same on every row of a slate (the page's probability)", arr)
    if name == "rips":
        for param, arr in (("pscore", pscore), ("evaluation_pscore", evaluation_pscore)):
            a = arr[order]
            if np.any(same & (a[1:] > a[:-1])):
                bad(param, "non-increasing down each slate (a cascade)", "an increase")


def slate_estimate(
    name: str,
    slate_id: np.ndarray,
    reward: np.ndarray,
    position: np.ndarray,
    pscore: np.ndarray,
    evaluation_pscore: np.ndarray,
    config: OPEConfig | None = None,
) -> Estimate:
    """One slate estimator's value and bootstrap interval.

    Parameters
    ----------
    name
        ``"sips"``, ``"iips"`` or ``"rips"``.
    slate_id
        ``(n,)`` the page of each row (non-negative integers).
    reward
        ``(n,)`` the reward at each row's slot.
    position
        ``(n,)`` the 0-based slot.
    pscore, evaluation_pscore
        ``(n,)`` the behaviour and evaluation policies' probabilities of the kind the
        estimator weighs by (``SLATE_ESTIMATORS``): the page's for sips, the item at the slot's
        for iips, the page's top ``k``'s for rips.
    config
        Bootstrap resamples, level and seed (the other fields are unused).

    Raises
    ------
    ConfigError
        If ``name`` is unknown or the logs fail obp's checks.
    """
    if name not in SLATE_ESTIMATORS:
        raise ConfigError(
            f"The 'name' parameter of slate_estimate must be one of {list(SLATE_ESTIMATORS)}. "
            f"Got {name!r} instead."
        )
    cfg = config or OPEConfig()
    _check(name, slate_id, reward, position, pscore, evaluation_pscore)
    _, page = np.unique(slate_id, return_inverse=True)
    per_page = np.bincount(page, weights=reward * (evaluation_pscore / pscore))
    lo, hi = bootstrap_intervals(per_page, cfg.n_bootstrap, cfg.alpha, cfg.seed)
    return Estimate(
        name=name,
        value=float(per_page.mean()),
        ci=(float(lo), float(hi)),
        width=slope_width(per_page, cfg.slope_delta),
    )
