"""The held-out split of visual evaluation: products by id, a fixed seed, independent of order.

The general visual head (``scripts/train_visual_head.py``) trains on the other products only,
and ``moodboard evaluate visual`` queries with these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from moodboard.data import Catalog
from moodboard.data import columns as C
from moodboard.datasets._types import CatalogData

#: The share of products held out and the split's seed.
HELDOUT_SHARE = 0.2
SEED = 16


def heldout(ids: Sequence[str], share: float = HELDOUT_SHARE, seed: int = SEED) -> np.ndarray:
    """Which products are held out: ``sha1(f"{seed}:{id}")`` below ``share`` of its range.

    Returns
    -------
    np.ndarray
        Bool, aligned with ``ids``.
    """
    if not 0 <= share <= 1:
        raise ValueError(
            f"The 'share' parameter of heldout must be in [0, 1]. Got {share} instead."
        )
    limit = int(share * 2**32)
    return np.array(
        [int(hashlib.sha1(f"{seed}:{i}".encode()).hexdigest()[:8], 16) < limit for i in ids],
        dtype=bool,
    )


def dataset_catalog(data: CatalogData) -> Catalog:
    """A public dataset's catalog as a workspace holds it: its extra columns as attributes."""
    attrs = data.attribute_columns
    values = data.products.select(attrs).to_pylist()
    js = [json.dumps({k: v for k, v in row.items() if v is not None}) for row in values]
    table = data.products.drop_columns(attrs).append_column(C.ATTRIBUTES, pa.array(js))
    return Catalog.from_table(table)
