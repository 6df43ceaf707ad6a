"""The input contract of the multi-head ranker: numpy arrays, one row per shown item.

``MultiHeadInputs`` is what the training rows (``rank.rows``) turn into and what the model
(and its Trainer) reads. Rows are impressions; the user's history is the last ``N`` actions
strictly before the impression, newest first, padded with ``-1`` items, action ``0`` and age
``0``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

#: The heads, in the order of the ``labels`` columns.
HEADS: tuple[str, ...] = ("click", "save", "add_to_cart", "purchase", "hide")
#: The action code of each head in ``history_actions`` (0 is padding).
ACTION_CODES: dict[str, int] = {head: code for code, head in enumerate(HEADS, start=1)}
#: The padding of ``history_items``.
PAD_ITEM = -1
#: The padding of ``history_actions``.
PAD_ACTION = 0

_DTYPES: dict[str, Any] = {
    "history_items": np.int64,
    "history_actions": np.int64,
    "history_age_s": np.float32,
    "item": np.int64,
    "dense": np.float32,
    "position": np.int64,
    "labels": np.float32,
}


@dataclass(frozen=True)
class MultiHeadInputs:
    """A batch of ``B`` impressions for the multi-head ranker.

    Parameters
    ----------
    history_items : numpy.ndarray
        ``int64 [B, N]``: catalog indices of the user's last ``N`` actions before the
        impression, newest first, ``-1`` pad.
    history_actions : numpy.ndarray
        ``int64 [B, N]``: action codes (``ACTION_CODES``: 1 click, 2 save, 3 add_to_cart,
        4 purchase, 5 hide; 0 pad).
    history_age_s : numpy.ndarray
        ``float32 [B, N]``: seconds between that action and the impression (0 pad).
    item : numpy.ndarray
        ``int64 [B]``: the candidate's catalog index.
    dense : numpy.ndarray
        ``float32 [B, F]``: named numeric features.
    dense_names : tuple of str
        The ``F`` names of the ``dense`` columns.
    position : numpy.ndarray
        ``int64 [B]``: 1-based position shown (training only; fixed at serving).
    labels : numpy.ndarray
        ``float32 [B, 5]``: ``click, save, add_to_cart, purchase, hide`` (``HEADS``).

    Raises
    ------
    ValueError
        If an array has the wrong dtype, number of dimensions or size, or the names do not
        match the dense columns.
    """

    history_items: np.ndarray
    history_actions: np.ndarray
    history_age_s: np.ndarray
    item: np.ndarray
    dense: np.ndarray
    dense_names: tuple[str, ...]
    position: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        for name, dtype in _DTYPES.items():
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.dtype != np.dtype(dtype):
                got = getattr(value, "dtype", type(value).__name__)
                raise ValueError(
                    f"The '{name}' field of MultiHeadInputs must be a numpy array of "
                    f"{np.dtype(dtype)}. Got {got} instead."
                )
        rows = self.item.shape[0] if self.item.ndim == 1 else -1
        if rows < 0:
            raise ValueError(
                f"The 'item' field of MultiHeadInputs must be 1-D [B]. Got shape "
                f"{self.item.shape} instead."
            )
        n = self.history_items.shape[1] if self.history_items.ndim == 2 else -1
        expected = {
            "history_items": (rows, n),
            "history_actions": (rows, n),
            "history_age_s": (rows, n),
            "dense": (rows, len(self.dense_names)),
            "position": (rows,),
            "labels": (rows, len(HEADS)),
        }
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape or -1 in shape:
                raise ValueError(
                    f"The '{name}' field of MultiHeadInputs must have shape {shape} "
                    f"(B={rows}, N={n}, F={len(self.dense_names)}). Got {got} instead."
                )
        if len(set(self.dense_names)) != len(self.dense_names):
            raise ValueError(
                f"The 'dense_names' of MultiHeadInputs must be unique. Got {self.dense_names}."
            )

    def __len__(self) -> int:
        return int(self.item.shape[0])

    @property
    def history_length(self) -> int:
        """``N``, the number of history slots per row."""
        return int(self.history_items.shape[1])

    def take(self, index: np.ndarray | slice | list[int]) -> MultiHeadInputs:
        """The rows at ``index`` (integer indices, a boolean mask or a slice), as a new batch.

        Parameters
        ----------
        index : numpy.ndarray or slice or list of int
            Rows to keep, in the order given.

        Returns
        -------
        MultiHeadInputs
            The selected rows; ``dense_names`` unchanged.

        Raises
        ------
        IndexError
            If an index is out of range.
        """
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value if f.name == "dense_names" else value[index]
        return MultiHeadInputs(**values)

    def dense_column(self, name: str) -> np.ndarray:
        """The ``dense`` column called ``name``.

        Raises
        ------
        KeyError
            If no dense column has that name (the message lists the names).
        """
        if name not in self.dense_names:
            raise KeyError(f"No dense feature {name!r}; the names are {self.dense_names}.")
        return self.dense[:, self.dense_names.index(name)]

    def without_dense(self, names: Collection[str]) -> MultiHeadInputs:
        """The same rows without the dense columns called ``names`` (unknown names ignored)."""
        keep = [j for j, n in enumerate(self.dense_names) if n not in names]
        if len(keep) == len(self.dense_names):
            return self
        return dataclasses.replace(
            self,
            dense=np.ascontiguousarray(self.dense[:, keep]),
            dense_names=tuple(self.dense_names[j] for j in keep),
        )
