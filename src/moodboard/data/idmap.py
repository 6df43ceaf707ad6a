"""External ids <-> internal indices, in one place only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from moodboard.errors import NotFoundError


class IdMap:
    """A bijection between external string ids and dense ``int32`` indices.

    Parameters
    ----------
    ids
        External ids in index order; must be unique.

    Raises
    ------
    ValueError
        If ``ids`` has duplicates.
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self._ids = np.asarray([str(i) for i in ids], dtype=object)
        self._index = {i: n for n, i in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("The ids of an IdMap must be unique. Got duplicates instead.")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    @property
    def external_ids(self) -> np.ndarray:
        """All external ids, in index order."""
        return self._ids

    def index(self, external_id: str) -> int:
        """The internal index of one id.

        Raises
        ------
        NotFoundError
            If the id is unknown.
        """
        try:
            return self._index[external_id]
        except KeyError:
            raise NotFoundError(f"Unknown id {external_id!r}.") from None

    def indices(self, external_ids: Iterable[str], missing: int | None = None) -> np.ndarray:
        """Internal indices of many ids.

        Parameters
        ----------
        missing
            The index to give unknown ids; ``None`` raises instead (the cold-id policy is
            the caller's explicit choice).

        Raises
        ------
        NotFoundError
            If an id is unknown and ``missing`` is None.
        """
        out = []
        for e in external_ids:
            i = self._index.get(e)
            if i is None:
                if missing is None:
                    raise NotFoundError(f"Unknown id {e!r}.")
                i = missing
            out.append(i)
        return np.asarray(out, dtype=np.int32)

    def external(self, indices: Iterable[int] | np.ndarray) -> list[str]:
        """External ids of internal indices."""
        return [str(x) for x in self._ids[np.asarray(indices, dtype=np.int64)]]

    def to_list(self) -> list[str]:
        """The ids, for writing into an artifact."""
        return [str(x) for x in self._ids]
