"""Item features as the two-tower model reads them, and the stable hash of user ids.

Dense content vectors (2-D float arrays such as ``"text"`` ``(n, 384)``), categorical
attribute codes (integers, -1 for missing) and per-item bags of attribute ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from moodboard.errors import ConfigError


def user_hash(user: str | None) -> int:
    """A stable 63-bit hash of a user id (None hashes like the empty id)."""
    digest = hashlib.blake2b((user or "").encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def attribute_codes(columns: Sequence[np.ndarray], max_vocab: int = 1000) -> np.ndarray:
    """Integer codes ``(n, m)`` of categorical columns (None/empty: missing, code -1).

    Columns with a single value or more than ``max_vocab`` values carry no usable signal and
    are left out, so ``m`` may be smaller than ``len(columns)``.
    """
    out = []
    for col in columns:
        values = np.asarray([v if v not in (None, "") else "" for v in col], dtype=str)
        vocab, codes = np.unique(values, return_inverse=True)
        real = vocab[vocab != ""]
        if not 2 <= len(real) <= max_vocab:
            continue
        codes = codes.ravel().astype(np.int32)
        if "" in vocab:
            gap = int(np.flatnonzero(vocab == "")[0])
            codes = np.where(codes == gap, -1, codes - (codes > gap))
        out.append(codes)
    n = len(columns[0]) if len(columns) else 0
    return np.stack(out, axis=1) if out else np.empty((n, 0), dtype=np.int32)


def _is_bag(value: object, n: int) -> bool:
    """A list of ``n`` int sequences of varying lengths (per-item attribute ids)."""
    if not isinstance(value, list | tuple) or len(value) != n or n == 0:
        return False
    lengths = {len(v) for v in value if hasattr(v, "__len__")}
    return len(lengths) > 1 and all(np.asarray(v).dtype.kind in "iu" for v in value if len(v))


def bag_vectors(bags: Sequence[Sequence[int]]) -> np.ndarray:
    """Per-item bags of attribute ids (any ints) as ``(n, vocab)`` float32 rows that average
    the item's ids (a linear layer over them is a mean of attribute embeddings)."""
    vocab = {a: j for j, a in enumerate(sorted({int(a) for b in bags for a in b}))}
    out = np.zeros((len(bags), max(len(vocab), 1)), dtype=np.float32)
    for i, b in enumerate(bags):
        if len(b):
            out[i, [vocab[int(a)] for a in b]] = 1.0 / len(b)
    return out


def split_features(
    features: Mapping[str, object], n: int
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Dense features (2-D float) by name and the attribute codes ``(n, m)`` (all integer
    features side by side), each checked to have ``n`` rows. A list of per-item attribute-id
    bags of varying lengths becomes a dense feature (``bag_vectors``).

    Raises
    ------
    ConfigError
        If a feature has the wrong number of rows or is neither float 2-D nor integer.
    """
    dense: dict[str, np.ndarray] = {}
    codes: list[np.ndarray] = []
    for name, value in features.items():
        if _is_bag(value, n):
            dense[name] = bag_vectors(value)  # type: ignore[arg-type]
            continue
        parts = list(value) if isinstance(value, list | tuple) else [value]
        for part in parts:
            arr = np.asarray(part)
            if len(arr) != n:
                raise ConfigError(
                    f"The item feature {name!r} of two_tower must have one row per item ({n}). "
                    f"Got {len(arr)} rows instead."
                )
            if arr.dtype.kind in "iu":
                codes.append(arr.reshape(n, -1).astype(np.int64))
            elif arr.dtype.kind == "f" and arr.ndim == 2 and len(parts) == 1:
                dense[name] = np.ascontiguousarray(arr, dtype=np.float32)
            else:
                raise ConfigError(
                    f"The item feature {name!r} of two_tower must be a 2-D float array (content "
                    f"vectors) or integer codes (attributes). Got {arr.dtype} {arr.shape} instead."
                )
    attrs = np.concatenate(codes, axis=1) if codes else None
    return dense, attrs
