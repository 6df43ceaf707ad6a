"""The multi-head ranker's input rows: one shown (or candidate) item with what preceded it.

``MultiHeadInputs`` holds ``B`` rows as numpy arrays; training rows come from the labelled
impressions (``pipelines``), serving rows from the prepare step's recent actions and the
candidates. Action codes: 1 click, 2 save, 3 add_to_cart, 4 purchase, 5 hide, 0 padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The heads in label-column order.
HEADS: tuple[str, ...] = ("click", "save", "add_to_cart", "purchase", "hide")
#: Action name -> code in ``history_actions`` (0 is padding).
ACTION_CODES: dict[str, int] = {name: i + 1 for i, name in enumerate(HEADS)}


@dataclass(frozen=True)
class MultiHeadInputs:
    """``B`` rows of the multi-head ranker's inputs.

    Attributes
    ----------
    history_items
        ``int64 [B, N]`` catalog indices of the user's last ``N`` actions, newest first, -1 pad.
    history_actions
        ``int64 [B, N]`` action codes (``ACTION_CODES``), 0 pad.
    history_age_s
        ``float32 [B, N]`` seconds between that action and the impression (0 pad).
    item
        ``int64 [B]`` candidate catalog index.
    dense
        ``float32 [B, F]`` named numeric features.
    dense_names
        The ``F`` feature names.
    position
        ``int64 [B]`` 1-based position shown (training only).
    labels
        ``float32 [B, 5]`` click, save, add_to_cart, purchase, hide.
    """

    history_items: np.ndarray
    history_actions: np.ndarray
    history_age_s: np.ndarray
    item: np.ndarray
    dense: np.ndarray
    dense_names: tuple[str, ...]
    position: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.item)
