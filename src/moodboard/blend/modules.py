"""Whole-page modules: which rows a page shows, in which order, and the page they make.

``order_modules`` is an epsilon-greedy policy over the orders of the candidate modules: with
probability ``1 - epsilon`` the greedy order (by score, the earlier module first on ties),
else a uniformly random order; the first ``rows`` modules are shown. Its probabilities are
exact and in closed form (``module_propensities``): module ``m`` is at row ``j`` with
probability ``(1 - epsilon) [greedy[j] = m] + epsilon / n``, which each shown module logs as
its ``propensity`` (ARCHITECTURE.md, convention 8: the draw is seeded by the request).

``compose`` lays the page out: each shown module's best items (in its ranked order, items of
earlier rows left out), then the grid without them. Three score columns say where each item
came from: ``module`` (the index of its module among the candidates, NaN in the grid),
``propensity`` (its module's; in the grid 1, or the grid's own when a policy drew it) and
``explored`` (1 when the random order was drawn; in the grid, the grid's own). Two more say
what the policy drew among, for off-policy evaluation (``evaluate.ope_logs``): ``module_row``
(the policy's row ``j`` of the item's module, which differs from the row's place on the page
when an earlier row kept no items) and ``module_among`` (the candidates the policy ordered, as
the bit mask ``sum(2 ** m)`` of their indices; NaN in the grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moodboard.blend.fill import concat
from moodboard.data import Candidates

#: The score column of each item's module (its index among the candidate modules; NaN: grid).
MODULE = "module"
#: The score column of the probability that the item's module was shown at its row.
PROPENSITY = "propensity"
#: The score column saying the policy drew the random order (1) or the greedy one (0).
EXPLORED = "explored"
#: The score column of the policy's row of the item's module (NaN: grid).
ROW = "module_row"
#: The score column of the candidates the policy drew among, as a bit mask (NaN: grid).
AMONG = "module_among"
#: The columns ``compose`` adds, which are about the page, not the item.
LAYOUT_COLUMNS = (MODULE, PROPENSITY, EXPLORED, ROW, AMONG)


@dataclass(frozen=True)
class Layout:
    """The rows a policy drew: candidate indices in row order, each one's probability of
    being at its row, whether the random branch drew them, and the candidates it drew among
    (indices, in the policy's order: the order of ``scores``)."""

    order: tuple[int, ...]
    propensities: tuple[float, ...]
    explored: bool
    among: tuple[int, ...] = ()


def among_mask(among: Sequence[int]) -> float:
    """The ``AMONG`` column's value: the bit mask of the candidate indices."""
    return float(sum(1 << int(m) for m in among))


def mask_members(mask: float) -> list[int]:
    """The candidate indices of an ``AMONG`` bit mask, increasing."""
    bits = int(mask)
    return [m for m in range(bits.bit_length()) if bits >> m & 1]


def _check(scores: np.ndarray, rows: int, epsilon: float) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"The 'epsilon' of the module policy must be in [0, 1]. Got {epsilon}.")
    if rows < 0:
        raise ValueError(f"The 'rows' of the module policy must be >= 0. Got {rows} instead.")
    return s


def greedy_order(scores: np.ndarray) -> np.ndarray:
    """Candidate indices by score, highest first (the earlier one first on ties)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def module_propensities(scores: np.ndarray, rows: int, epsilon: float) -> np.ndarray:
    """``P[m, j]``: the probability that the policy shows candidate ``m`` at row ``j``.

    Raises
    ------
    ValueError
        If ``epsilon`` is outside [0, 1] or ``rows`` is negative.
    """
    s = _check(scores, rows, epsilon)
    n = len(s)
    rows = min(rows, n)
    p = np.full((n, rows), epsilon / n if n else 0.0)
    greedy = greedy_order(s)
    for j in range(rows):
        p[greedy[j], j] += 1.0 - epsilon
    return p


def order_modules(
    scores: np.ndarray, rows: int, epsilon: float, rng: np.random.Generator
) -> Layout:
    """The modules to show, in row order, drawn by the epsilon-greedy policy.

    Parameters
    ----------
    scores
        One score per candidate module (higher: shown earlier by the greedy order).
    rows
        How many to show (at most the candidates).
    epsilon
        The probability of a uniformly random order.
    rng
        The request's generator (``request_rng``): one uniform draw, then a permutation only
        when exploring.

    Raises
    ------
    ValueError
        If ``epsilon`` is outside [0, 1] or ``rows`` is negative.
    """
    s = _check(scores, rows, epsilon)
    rows = min(rows, len(s))
    among = tuple(range(len(s)))
    if rows == 0:
        return Layout((), (), False, among)
    explored = bool(rng.random() < epsilon)
    order = rng.permutation(len(s)) if explored else greedy_order(s)
    p = module_propensities(s, rows, epsilon)
    shown = tuple(int(m) for m in order[:rows])
    return Layout(shown, tuple(float(p[m, j]) for j, m in enumerate(shown)), explored, among)


def compose(
    modules: Sequence[Candidates], layout: Layout, per_module: int, grid: Candidates
) -> tuple[Candidates, list[tuple[int, int, int]]]:
    """The page: each shown module's first ``per_module`` items not already on an earlier
    row, then ``grid`` without the modules' items; with the ``LAYOUT_COLUMNS``.

    Parameters
    ----------
    modules
        Every candidate module's items, ranked (indexed as in ``layout.order``).
    layout
        The rows the policy drew.
    per_module
        Items per row.
    grid
        The rest of the page, in page order.

    Returns
    -------
    tuple
        The page's candidates, and each row that kept items as ``(module, start, end)``
        (positions in the page, ``end`` exclusive).
    """
    parts: list[Candidates] = []
    rows: list[tuple[int, int, int]] = []
    taken = np.empty(0, dtype=np.int32)
    start = 0
    mask = among_mask(layout.among or range(len(modules)))
    for j, (m, p) in enumerate(zip(layout.order, layout.propensities, strict=True)):
        part = modules[m].exclude(taken).head(per_module)
        if not len(part):
            continue
        n = len(part)
        tags = {MODULE: np.full(n, m), PROPENSITY: np.full(n, p), EXPLORED: np.full(n, 0.0)}
        tags |= {ROW: np.full(n, float(j)), AMONG: np.full(n, mask)}
        tags[EXPLORED] += float(layout.explored)
        parts.append(Candidates(part.items, {**part.scores, **tags}, part.sources))
        rows.append((m, start, start + n))
        start += n
        taken = np.concatenate([taken, part.items])
    rest = grid.exclude(taken)
    n = len(rest)
    tags = {MODULE: np.full(n, np.nan), PROPENSITY: np.ones(n), EXPLORED: np.zeros(n)}
    tags |= {ROW: np.full(n, np.nan), AMONG: np.full(n, np.nan)}
    tags |= {c: rest.scores[c] for c in (PROPENSITY, EXPLORED) if c in rest.scores}  # drawn
    page = Candidates(rest.items, {**rest.scores, **tags}, rest.sources)
    for part in reversed(parts):
        page = concat(part, page)
    return page, rows
