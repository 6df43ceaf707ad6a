"""The Bernoulli Thompson Sampling policy that logged ZOZOTOWN's ``bts`` pages, as obp rebuilds it.

The Open Bandit Dataset's evaluation policy: every page, BTS draws a click rate for each item
from its Beta posterior and shows the three highest draws in order. ``ZOZOTOWN_PRIOR`` is the
Beta prior ZOZOTOWN used at the start of the collection period, per campaign, as shipped in
obp 0.4.1 (``obp/policy/conf/prior_bts.yaml``, Apache-2.0, ZOZO Technologies); obp's
``BernoulliTS(is_zozotown_prior=True, campaign=c)`` starts from it. With no update the
policy is the same on every page, so its action distribution is one ``(n_actions, len_list)``
table: ``bts_action_dist`` estimates it by Monte Carlo over ``n_sim`` pages, drawing from
``numpy.random.RandomState(seed)`` in obp's order (one row of draws per simulated page), so
it equals ``BernoulliTS(..., random_state=seed).compute_batch_action_dist(1, n_sim)[0]``
exactly (a test checks it); its Monte-Carlo error is about ``sqrt(p (1 - p) / n_sim)``.
"""

from __future__ import annotations

import logging

import numpy as np

from moodboard.errors import ConfigError

_log = logging.getLogger(__name__)

_CHUNK = 20_000  # simulated pages drawn at once

#: (campaign, "alpha" | "beta") -> the prior's parameters per item, in item id order.
_PRIOR_TEXT = {
    ("all", "alpha"): (
        "47 8 62 142 3 14 7 857 12 15 6 100 48 23 71 61 13 16 518 30 7 4 23 8 10 11 11 18 121 "
        "11 11 10 14 9 204 58 3 19 42 1013 2 328 15 31 14 138 45 55 23 38 10 401 52 6 3 6 5 "
        "32 35 133 52 820 43 195 8 42 40 4 32 30 9 22 6 23 5 54 8 22 65 246 "
    ),
    ("all", "beta"): (
        "12198 3566 15993 35522 2367 4609 3171 181745 4372 4951 3100 24665 13210 7061 18061 "
        "17449 5644 6787 111326 8776 3334 2271 7389 2659 3665 4724 3561 5085 27407 4601 4756 "
        "4120 4736 3788 45292 14719 2189 5589 11995 222255 2308 70034 4801 8274 5421 31912 "
        "12213 13576 6230 10382 4141 85731 12811 2707 2250 2668 2886 9581 9465 28336 12062 "
        "162793 12107 41240 3162 11604 10818 2923 8897 8654 4000 6580 3174 6766 2602 14506 "
        "3968 7523 16532 51964 "
    ),
    ("men", "alpha"): (
        "47 8 62 142 3 6 100 48 23 71 61 13 16 518 30 7 4 23 8 10 11 11 18 121 11 4 32 30 9 "
        "22 6 23 5 54 "
    ),
    ("men", "beta"): (
        "12198 3566 15993 35522 2367 3100 24665 13210 7061 18061 17449 5644 6787 111326 8776 "
        "3334 2271 7389 2659 3665 4724 3561 5085 27407 4601 2923 8897 8654 4000 6580 3174 "
        "6766 2602 14506 "
    ),
    ("women", "alpha"): (
        "12 7 984 13 15 15 11 14 9 200 72 3 14 49 1278 3 325 14 27 14 169 48 47 18 40 12 447 "
        "46 5 3 5 7 35 34 99 30 880 51 182 6 45 39 10 24 72 229 "
    ),
    ("women", "beta"): (
        "3612 3173 204484 4517 4765 5331 4131 4728 4028 44280 17918 2309 4339 12922 270771 "
        "2480 68475 5129 7367 5819 38026 13047 11604 5394 10912 4439 94485 10700 2679 2319 "
        "2578 3288 9566 9775 20120 7317 172026 13673 37329 3365 10911 10734 4278 7574 16826 "
        "47462 "
    ),
}
CAMPAIGNS = ("all", "men", "women")


def zozotown_prior(campaign: str) -> tuple[np.ndarray, np.ndarray]:
    """The Beta prior ``(alpha, beta)`` per item of BTS on ``campaign``.

    Raises
    ------
    ConfigError
        If ``campaign`` is not "all", "men" or "women".
    """
    if campaign not in CAMPAIGNS:
        raise ConfigError(
            f"The 'campaign' parameter of zozotown_prior must be one of {list(CAMPAIGNS)}. "
            f"Got {campaign!r} instead."
        )
    a, b = (np.array(_PRIOR_TEXT[campaign, k].split(), dtype=float) for k in ("alpha", "beta"))
    return a, b


def bts_action_dist(
    alpha: np.ndarray, beta: np.ndarray, len_list: int = 3, n_sim: int = 100_000, seed: int = 0
) -> np.ndarray:
    """The probability that BTS with Beta(``alpha``, ``beta``) shows each item at each slot.

    Parameters
    ----------
    alpha, beta
        ``(n_actions,)`` the Beta parameters of each item's click rate.
    len_list
        Slots on a page.
    n_sim
        Simulated pages.
    seed
        Seed of ``numpy.random.RandomState`` (obp's ``random_state``).

    Returns
    -------
    np.ndarray
        ``(n_actions, len_list)``; each column sums to 1.

    Raises
    ------
    ConfigError
        If the shapes disagree, ``len_list`` exceeds the items or ``n_sim`` < 1.
    """
    n_actions = len(alpha)
    if beta.shape != (n_actions,) or not 1 <= len_list <= n_actions or n_sim < 1:
        raise ConfigError(
            "The parameters of bts_action_dist must be alpha and beta of one shape (n_actions,), "
            f"1 <= len_list <= n_actions and n_sim >= 1. Got {alpha.shape}, {beta.shape}, "
            f"{len_list}, {n_sim} instead."
        )
    rng = np.random.RandomState(seed)
    counts = np.zeros((n_actions, len_list))
    for start in range(0, n_sim, _CHUNK):
        draws = rng.beta(alpha, beta, size=(min(_CHUNK, n_sim - start), n_actions))
        # obp ranks by argsort()[::-1]: the same order, ties included
        shown = np.argsort(draws, axis=1)[:, ::-1][:, :len_list]
        for slot in range(len_list):
            counts[:, slot] += np.bincount(shown[:, slot], minlength=n_actions)
    _log.info("bts action distribution: %d items, %d simulated pages", n_actions, n_sim)
    return counts / n_sim
