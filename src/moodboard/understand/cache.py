"""A persistent cache of embedding vectors keyed by the content they embed.

The cache lives in ``<folder>/<name>/`` as append-only shards: each ``put`` of new keys writes
one ``shard-*.npz`` (NumPy's open zip-of-``.npy`` format, no pickle) holding ``keys`` (unicode)
and ``vectors`` (float32, ``n x dim``). A shard is written to a temporary file and renamed into
place with ``os.replace``, so a reader never sees half a shard and a crash loses at most the
shard being written. Several processes may append to the same cache: shard names are unique.
When there are more than ``max_shards`` shards, ``put`` merges them into one.

Keys are content hashes (:func:`content_key`): the SHA-1 of a text's UTF-8 bytes or of an
image file's bytes. Name the cache after the encoder and its settings (e.g.
``TextEncoder.cache_name``), since the same content embeds differently under another model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from moodboard.errors import ConfigError, InputError

_log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_META = "cache.json"
_FORMAT = 1


def content_key(data: bytes | str) -> str:
    """The cache key of a content: the SHA-1 hex digest of its bytes (UTF-8 for text).

    Raises
    ------
    TypeError
        If ``data`` is neither ``bytes`` nor ``str``.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"content_key takes bytes or str. Got {type(data).__name__} instead.")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file through ``write(fh)`` into a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class EmbeddingCache:
    """Float32 vectors keyed by content hash, persisted in one folder.

    Parameters
    ----------
    folder
        The parent folder; the cache uses ``folder / name``.
    dim
        The vector dimension (e.g. 384 for the text encoder).
    name
        The cache's name: letters, digits, ``.``, ``_`` and ``-``.
    max_shards
        Merge the shards into one when there are more than this many.

    Notes
    -----
    The constructor stores its parameters; the folder is read on first use and every error
    (a bad parameter, a cache of another dimension) is raised then. Methods are thread-safe.
    """

    def __init__(self, folder: Path | str, dim: int, name: str, max_shards: int = 64) -> None:
        self.folder = folder
        self.dim = dim
        self.name = name
        self.max_shards = max_shards
        self._lock = threading.Lock()
        self._index: dict[str, int] | None = None
        self._blocks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None
        self._shards: list[Path] = []

    @property
    def path(self) -> Path:
        """The folder that holds the shards."""
        return Path(self.folder) / self.name

    def __repr__(self) -> str:
        return f"EmbeddingCache(folder={str(self.folder)!r}, dim={self.dim}, name={self.name!r})"

    def _validate(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 1:
            raise ConfigError(
                f"The 'dim' parameter of {owner} must be an int >= 1. Got {self.dim!r} instead."
            )
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"The 'name' parameter of {owner} must be a str of letters, digits, '.', '_' "
                f"and '-'. Got {self.name!r} instead."
            )
        if not isinstance(self.max_shards, int) or self.max_shards < 1:
            raise ConfigError(
                f"The 'max_shards' parameter of {owner} must be an int >= 1. "
                f"Got {self.max_shards!r} instead."
            )

    def _open(self) -> dict[str, int]:
        """Read every shard once (the caller holds the lock)."""
        if self._index is not None:
            return self._index
        self._validate()
        root = self.path
        root.mkdir(parents=True, exist_ok=True)
        meta = root / _META
        if meta.exists():
            info = json.loads(meta.read_text())
            if info.get("dim") != self.dim:
                raise InputError(
                    f"The cache at {root} holds vectors of dimension {info.get('dim')}, not "
                    f"{self.dim}: use another name or folder for this encoder."
                )
        else:
            text = json.dumps({"format": _FORMAT, "name": self.name, "dim": self.dim}).encode()
            _write_atomic(meta, lambda fh: fh.write(text))
        self._index, self._blocks, self._matrix, self._shards = {}, [], None, []
        for shard in sorted(root.glob("shard-*.npz")):
            self._read_shard(shard)
        _log.debug("cache %s: %d vectors from %d shards", root, len(self._index), len(self._shards))
        return self._index

    def _read_shard(self, shard: Path) -> None:
        assert self._index is not None
        try:
            with np.load(shard, allow_pickle=False) as z:
                keys, vectors = z["keys"], z["vectors"]
        except FileNotFoundError:  # merged away by another process meanwhile
            return
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{shard} is not a readable cache shard: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.dim):
            raise InputError(
                f"{shard} holds vectors of shape {vectors.shape} for {len(keys)} keys; "
                f"expected ({len(keys)}, {self.dim})."
            )
        self._shards.append(shard)
        self._add(keys.tolist(), vectors.astype(np.float32, copy=False))

    def _add(self, keys: list[str], vectors: np.ndarray) -> None:
        assert self._index is not None
        base = sum(len(b) for b in self._blocks)
        seen: set[str] = set()
        fresh = []
        for i, k in enumerate(keys):
            if k not in self._index and k not in seen:
                seen.add(k)
                fresh.append(i)
        if not fresh:
            return
        if len(fresh) < len(keys):
            keys, vectors = [keys[i] for i in fresh], vectors[fresh]
        for i, k in enumerate(keys):
            self._index[k] = base + i
        self._blocks.append(vectors)
        self._matrix = None

    def _all(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = (
                np.concatenate(self._blocks)
                if self._blocks
                else np.empty((0, self.dim), dtype=np.float32)
            )
            self._blocks = [self._matrix]
        return self._matrix

    def __len__(self) -> int:
        with self._lock:
            return len(self._open())

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._open()

    def get(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The cached vectors of ``keys``.

        Returns
        -------
        mask : np.ndarray
            Boolean, shape ``(n,)``: True where the key is cached.
        vectors : np.ndarray
            Float32, shape ``(n, dim)``: the cached vector where ``mask`` is True, zeros
            elsewhere.

        Raises
        ------
        ConfigError
            If a parameter of the cache is invalid.
        InputError
            If the folder holds a cache of another dimension or an unreadable shard.
        """
        with self._lock:
            index = self._open()
            rows = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
            mask = rows >= 0
            out = np.zeros((len(keys), self.dim), dtype=np.float32)
            if mask.any():
                out[mask] = self._all()[rows[mask]]
            return mask, out

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors under their keys; keys already cached are left as they are.

        Raises
        ------
        ConfigError
            If a parameter of the cache is invalid.
        InputError
            If ``vectors`` is not ``(len(keys), dim)`` or holds non-finite values, or a key is
            not a non-empty str.
        """
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.dim):
            raise InputError(
                f"EmbeddingCache.put needs vectors of shape ({len(keys)}, {self.dim}) for "
                f"{len(keys)} keys. Got {vectors.shape} instead."
            )
        if not np.isfinite(vectors).all():
            raise InputError("EmbeddingCache.put got NaN or infinite values; nothing was stored.")
        bad = [k for k in keys if not isinstance(k, str) or not k]
        if bad:
            raise InputError(f"Cache keys must be non-empty str. Got {bad[0]!r} instead.")
        with self._lock:
            index = self._open()
            seen: set[str] = set()
            fresh = []
            for i, k in enumerate(keys):
                if k not in index and k not in seen:
                    seen.add(k)
                    fresh.append(i)
            if not fresh:
                return
            new_keys = [keys[i] for i in fresh]
            new_vectors = np.ascontiguousarray(vectors[fresh], dtype=np.float32)
            shard = self.path / f"shard-{os.getpid()}-{uuid.uuid4().hex[:12]}.npz"
            self._write_shard(shard, new_keys, new_vectors)
            self._shards.append(shard)
            self._add(new_keys, new_vectors)
            if len(self._shards) > self.max_shards:
                self._merge()

    def _write_shard(self, shard: Path, keys: list[str], vectors: np.ndarray) -> None:
        key_array = np.asarray(keys, dtype=np.str_)
        _write_atomic(shard, lambda fh: np.savez(fh, keys=key_array, vectors=vectors))

    def _merge(self) -> None:
        """Rewrite every shard but the largest as one (the caller holds the lock).

        Leaving the largest alone keeps the cost of a merge proportional to what was added since
        the previous one, not to the whole cache.
        """
        sizes = {p: p.stat().st_size if p.exists() else 0 for p in self._shards}
        largest = max(self._shards, key=sizes.__getitem__)
        small = [p for p in self._shards if p != largest]
        keys, vectors = [], []
        for shard in small:
            try:
                with np.load(shard, allow_pickle=False) as z:
                    keys.append(z["keys"])
                    vectors.append(z["vectors"])
            except FileNotFoundError:  # merged by another process meanwhile
                continue
        if not keys:
            self._shards = [largest]
            return
        all_keys = np.concatenate(keys)
        first = np.sort(np.unique(all_keys, return_index=True)[1])
        merged = self.path / f"shard-{os.getpid()}-{uuid.uuid4().hex[:12]}.npz"
        self._write_shard(merged, all_keys[first].tolist(), np.concatenate(vectors)[first])
        for old in small:
            old.unlink(missing_ok=True)
        self._shards = [largest, merged]
        _log.info("cache %s: merged %d shards (%d vectors)", self.path, len(small), len(first))
