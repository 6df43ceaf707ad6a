"""Learning complementary categories from co-engagement, at build time.

Items engaged with in the same session, or saved to the same board, form a group. Over the
``N`` groups with two or more distinct items, ``n(a)`` counts the groups holding category ``a``
and ``n(a, b)`` those holding both ``a`` and ``b``; against ``e(a, b) = n(a) * n(b) / N``, the
count if shoppers mixed categories at random, the lift is ``(n(a, b) + s) / (e(a, b) + s)``,
smoothed by ``s`` pseudo-groups so that a few chance meetings of rare categories do not look
like a strong bond. Pairs with lift ``>= min_lift`` and support ``n(a, b) >= min_support`` are
complements, best lift first (``surfaces.complements.Complements``, served by related products).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

from moodboard.config import ComplementsConfig
from moodboard.data import Catalog
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.pipelines import connect
from moodboard.pipelines.bots import Bots
from moodboard.pipelines.coengagement import GROUP, coengagement_table
from moodboard.surfaces.complements import Complement, Complements

_log = logging.getLogger(__name__)


def workspace_complements(
    ws: Workspace,
    catalog: Catalog,
    cfg: ComplementsConfig,
    engine: str,
    bots: Bots | None = None,
) -> Complements:
    """Complementary categories from sessions and boards (saves and the boards table), the
    ``bots``' sessions and boards left out."""
    groups: list[str] = []
    ids: list[str] = []
    flagged = set(bots.user_ids) if bots is not None else set()
    if ws.events.files():
        t = coengagement_table(
            connect(engine),
            ws.events.glob(),
            cfg.actions,
            cfg.session_gap_minutes,
            exclude_users=bots.exclude() if bots is not None else None,
        )
        groups += t.column(GROUP).to_pylist()
        ids += t.column("item_id").to_pylist()
    for board in ws.boards():
        if board.user_id in flagged:
            continue
        groups += [f"b:{board.id}"] * len(board.item_ids)
        ids += list(board.item_ids)
    idx = catalog.ids.indices(ids, missing=-1)
    known = idx >= 0
    return learn_complements(
        catalog.category, np.asarray(groups, dtype=object)[known], idx[known], cfg
    )


def learn_complements(
    categories: np.ndarray,
    groups: np.ndarray,
    items: np.ndarray,
    config: ComplementsConfig | None = None,
) -> Complements:
    """Complementary categories from co-engagement groups.

    Parameters
    ----------
    categories
        Each catalog item's category path (None where missing).
    groups
        One group label per engagement (a session or board key; any hashable values).
    items
        The item index of each engagement (same length as ``groups``).
    config
        Support and lift thresholds and how many complements to keep per category.

    Returns
    -------
    Complements
        Per category, its complements by decreasing lift (ties: more support first).

    Raises
    ------
    ConfigError
        If ``groups`` and ``items`` differ in length or an item index is out of range.
    """
    cfg = config or ComplementsConfig()
    groups = np.asarray(groups)
    items = np.asarray(items, dtype=np.int64)
    if len(groups) != len(items):
        raise ConfigError(
            f"learn_complements needs one group per item. Got {len(groups)} groups for "
            f"{len(items)} items instead."
        )
    if len(items) and (items.min() < 0 or items.max() >= len(categories)):
        raise ConfigError(
            f"The 'items' of learn_complements must be indices in [0, {len(categories)}). "
            f"Got {int(items.min())}..{int(items.max())} instead."
        )
    if len(items) == 0:
        return Complements(config=cfg)
    # distinct (group, item) pairs; groups with two or more distinct items
    _, g = np.unique(groups, return_inverse=True)
    pairs = np.unique(np.stack([g.ravel(), items]), axis=1)
    sizes = np.bincount(pairs[0])
    pairs = pairs[:, sizes[pairs[0]] >= 2]
    cats = np.asarray(categories, dtype=object)[pairs[1]]
    known = np.array([c is not None and c != "" for c in cats], dtype=bool)
    pairs, cats = pairs[:, known], cats[known]
    if pairs.shape[1] == 0:
        return Complements(config=cfg)
    names, c = np.unique(cats.astype(str), return_inverse=True)
    _, gg = np.unique(pairs[0], return_inverse=True)
    n_groups = int(gg.max()) + 1
    m = sparse.csr_matrix(
        (np.ones(len(c), dtype=np.float64), (gg, c)), shape=(n_groups, len(names))
    )
    m.sum_duplicates()
    m.data[:] = 1.0  # a group counts a category once, however many of its items it holds
    co = (m.T @ m).toarray()
    n = np.diag(co).copy()
    expected = np.outer(n, n) / n_groups
    lift = (co + cfg.smoothing) / (expected + cfg.smoothing)
    np.fill_diagonal(co, 0)
    out: dict[str, tuple[Complement, ...]] = {}
    for a in range(len(names)):
        ok = np.flatnonzero((co[a] >= cfg.min_support) & (lift[a] >= cfg.min_lift))
        if len(ok) == 0:
            continue
        order = ok[np.lexsort((-co[a, ok], -lift[a, ok]))][: cfg.max_per_category]
        out[str(names[a])] = tuple(
            Complement(str(names[b]), round(float(lift[a, b]), 4), int(co[a, b])) for b in order
        )
    _log.info("complements: %d categories with complements from %d groups", len(out), n_groups)
    return Complements(out, n_groups, cfg)
