"""Multiplicative boosts of the ``retrieval`` score for items that match what was asked."""

from __future__ import annotations

import numpy as np

from moodboard.data import Candidates
from moodboard.data import columns as C


def boost_matches(cand: Candidates, matches: np.ndarray, boost: float) -> Candidates:
    """``retrieval x (1 + boost * matches)``, re-sorted best first.

    Parameters
    ----------
    cand
        Candidates with a ``retrieval`` score.
    matches
        How many wanted attributes each candidate has (aligned with ``cand``); 0: no boost.
    boost
        The gain per match; 0 leaves ``cand`` as it is.

    Returns
    -------
    Candidates
        ``cand`` unchanged when nothing matches, else boosted and sorted by ``retrieval``.

    Raises
    ------
    ValueError
        If ``matches`` is not as long as ``cand``.
    """
    matches = np.asarray(matches, dtype=np.float64)
    if len(matches) != len(cand):
        raise ValueError(
            f"The 'matches' parameter must have one value per candidate ({len(cand)}). "
            f"Got {len(matches)} instead."
        )
    if len(cand) == 0 or boost == 0 or not matches.any():
        return cand
    s = cand.score(C.RETRIEVAL) * (1 + boost * matches)
    return cand.with_score(C.RETRIEVAL, s).sort_by(C.RETRIEVAL)
