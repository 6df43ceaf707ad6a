"""Evenly spaced slots of a page and the interleaving of a second list into them."""

from __future__ import annotations

import numpy as np

from moodboard.blend.fill import concat
from moodboard.data import Candidates


def slots(k: int, share: float) -> np.ndarray:
    """The page positions (0-based, below ``k``) of a slotted module (complements,
    exploration): every ``1 / share``-th position, so a longer page keeps the slots of a
    shorter one.

    For ``share = 0.25``: positions 3, 7, 11, 15, ...
    """
    if share <= 0:
        return np.empty(0, dtype=np.int64)
    stride = 1.0 / share
    n = int(np.floor(k * share + 1e-9))
    return (np.floor((np.arange(n) + 1) * stride + 1e-9).astype(np.int64) - 1).clip(0, k - 1)


def interleave(main: Candidates, extra: Candidates, k: int, at: np.ndarray) -> Candidates:
    """A page of ``k``: ``extra`` at positions ``at`` (while it lasts), ``main`` everywhere else.

    Slots ``extra`` cannot fill go to ``main``; the result may be shorter than ``k`` when both
    run out.
    """
    pool = concat(main, extra)
    order: list[int] = []
    m = e = 0
    slot_set = {int(s) for s in at}
    for pos in range(k):
        if pos in slot_set and e < len(extra):
            order.append(len(main) + e)
            e += 1
        elif m < len(main):
            order.append(m)
            m += 1
        elif e < len(extra):
            order.append(len(main) + e)
            e += 1
        else:
            break
    return pool.take(np.asarray(order, dtype=np.int64))
