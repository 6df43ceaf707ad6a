"""Seeded synthetic engagement rows for the multi-head ranker's tests and benchmark.

Items belong to categories; their content vectors are the category's centroid plus noise. A
user's recent actions come mostly from one or two categories they like. A shown candidate is
clicked with a probability that rises when its category is among the categories of the user's
last actions (what only a model reading the sequence can know), with the item's own appeal
(its ``popularity`` feature), and falls with the position it was shown at. Saves, add to
carts and purchases follow clicks; hides follow mismatches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moodboard.rank.inputs import ACTION_CODES, MultiHeadInputs

#: The dense features of the synthetic rows.
DENSE = ("popularity", "price", "retrieval_score")


@dataclass(frozen=True)
class SyntheticEngagement:
    """Rows, the catalog's content table and each item's category."""

    inputs: MultiHeadInputs
    content: np.ndarray
    category: np.ndarray
    #: Each row's true click probability (the best any model can do).
    p_click: np.ndarray


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def make_engagement(
    n_rows: int,
    n_items: int = 400,
    n_categories: int = 8,
    history: int = 12,
    content_dim: int = 16,
    seed: int = 0,
) -> SyntheticEngagement:
    """``n_rows`` labelled impressions (in time order) over a catalog of ``n_items``.

    Parameters
    ----------
    n_rows
        Impressions.
    n_items, n_categories, content_dim
        The catalog.
    history
        Actions per user before each impression (``N``; some users have fewer, padded).
    seed
        Everything derives from it.
    """
    rng = np.random.default_rng(seed)
    category = np.arange(n_items) % n_categories
    centroids = rng.normal(size=(n_categories, content_dim))
    content = (centroids[category] + 0.5 * rng.normal(size=(n_items, content_dim))).astype(
        np.float32
    )
    appeal = rng.normal(0, 0.6, n_items)
    by_cat = np.argsort(category, kind="stable")  # items grouped by category
    count = np.bincount(category, minlength=n_categories)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])

    def pick(cats: np.ndarray) -> np.ndarray:
        """A uniform random item of each category in ``cats`` (categories are never empty)."""
        return by_cat[start[cats] + (rng.random(cats.shape) * count[cats]).astype(np.int64)]

    # each row's user likes one or two categories; recent actions mostly come from them
    liked = rng.integers(0, n_categories, (n_rows, 2))
    from_liked = rng.random((n_rows, history)) < 0.85
    which = liked[np.arange(n_rows)[:, None], rng.integers(0, 2, (n_rows, history))]
    cats = np.where(from_liked, which, rng.integers(0, n_categories, (n_rows, history)))
    items = pick(cats).astype(np.int64)
    actions = rng.choice(
        [ACTION_CODES["click"], ACTION_CODES["save"], ACTION_CODES["add_to_cart"]],
        size=(n_rows, history),
        p=[0.7, 0.2, 0.1],
    )
    age = np.sort(np.exp(rng.uniform(np.log(5.0), np.log(3e6), (n_rows, history))), axis=1)
    length = rng.integers(0, history + 1, n_rows)
    pad = np.arange(history)[None, :] >= length[:, None]
    items[pad], actions[pad], age[pad] = -1, 0, 0.0
    # half the candidates come from the liked categories (as a retrieval stage would give)
    cand_cat = np.where(
        rng.random(n_rows) < 0.5, liked[:, 0], rng.integers(0, n_categories, n_rows)
    )
    item = pick(cand_cat).astype(np.int64)
    recent = np.where(pad, -1, category[np.maximum(items, 0)])[:, :6]
    match = (recent == category[item][:, None]).any(axis=1)
    position = rng.integers(1, 31, n_rows)
    p_click = _sigmoid(-2.2 + 2.0 * match + appeal[item] - 0.4 * np.log(position))
    click = rng.random(n_rows) < p_click
    save = click & (rng.random(n_rows) < np.where(match, 0.35, 0.1))
    cart = click & (rng.random(n_rows) < 0.15 + 0.1 * match)
    purchase = cart & (rng.random(n_rows) < 0.4)
    hide = ~click & (rng.random(n_rows) < np.where(match, 0.02, 0.08))
    labels = np.stack([click, save, cart, purchase, hide], axis=1).astype(np.float32)
    dense = np.stack(
        [
            appeal[item] + rng.normal(0, 0.2, n_rows),
            rng.lognormal(3.0, 1.0, n_rows),
            rng.normal(size=n_rows) + 0.3 * match,
        ],
        axis=1,
    ).astype(np.float32)
    inputs = MultiHeadInputs(
        history_items=items,
        history_actions=actions.astype(np.int64),
        history_age_s=age.astype(np.float32),
        item=item,
        dense=dense,
        dense_names=DENSE,
        position=position.astype(np.int64),
        labels=labels,
    )
    return SyntheticEngagement(inputs, content, category, p_click)
