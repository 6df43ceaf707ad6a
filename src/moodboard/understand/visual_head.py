"""The learned visual embedding: a small head on EfficientNet-Lite0 features.

``VisualHead`` maps the backbone's 1280-d unit features to a ``dim``-d unit embedding
(``1280 -> hidden -> dim``, ReLU, L2-normalized) trained for shopping similarity, like
Pinterest's unified visual embedding: a multi-task objective over augmented views of the
catalog's studio shots (``understand.augment``):

- per task (article type, colour, usage, ...: whatever labels are given), a normalized-softmax
  proxy loss: each class has a learned unit proxy, an item's embedding is pulled to its
  class's proxy and pushed from the others (on the clean shot and on its photo-like view);
- an instance loss: the photo-like view of an item must find its own clean shot among the
  batch's (InfoNCE), so a photo matches the catalog shot of the same product;
- co-engaged pairs from the logs, when given, as extra positives (InfoNCE).

The general fashion head ships in the package (``weights/visual_head.safetensors``, fp16,
trained by ``scripts/train_visual_head.py``) with the backbone's tail it was trained with
(``understand.visual_tail``: the last blocks fine-tuned on the same objective, so the features
themselves learn to look past a photo's background); a head's ``image_encoder`` gives the
features it reads. A build adapts the head (not the tail) to the workspace's labels and
engagement (``build.visual``). Weights are safetensors plus a JSON of the config and metrics;
the head runs in numpy at serving (no torch on the request path).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Catalog
from moodboard.errors import InputError, NotFittedError
from moodboard.understand.image import DIM, ImageEncoder, ImageEncoderConfig
from moodboard.understand.visual_tail import TAIL_FILE

_log = logging.getLogger(__name__)

WEIGHTS_FILE = "visual_head.safetensors"
META_FILE = "visual_head.json"
#: The general fashion head shipped in the package.
PACKAGED = Path(__file__).parent / "weights"
_NAMES = ("w1", "b1", "w2", "b2")


class VisualHeadConfig(BaseModel):
    """Parameters of the visual head and of its training.

    Attributes
    ----------
    enabled
        Serve ``head(backbone)`` as the ``visual/image`` vectors; False keeps the ImageNet
        backbone features.
    adapt
        Fine-tune the general head on the workspace's labels and engagement at build time
        (when it has any); False uses the general head as is.
    attributes
        The catalog attributes used as tasks (besides the leaf category); missing ones are
        skipped.
    hidden, dim
        The hidden layer's width and the embedding's dimension (the packaged head's shape).
    views
        Photo-like views per item computed at build time (through the backbone, cached).
    max_items
        Most items whose views are computed and trained on at build time (a random sample;
        5,000 keeps the adaptation within 3 minutes on 2 cores without bfloat16, where the
        views take most of it).
    epochs, max_seconds
        Training length: epochs over the items, stopped after ``max_seconds``.
    batch_size, learning_rate, weight_decay
        AdamW's batch, step size and weight decay.
    scale
        The inverse temperature of every softmax.
    attribute_weight, instance_weight, engagement_weight
        The weights of each attribute task, of the instance loss and of the co-engagement
        loss (the category task weighs 1).
    validation
        The share of labelled items held out of training to measure 1-NN (seeded).
    seed
        Sampling, initialization and augmentation seed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    adapt: bool = True
    attributes: tuple[str, ...] = ("baseColour", "colour", "color", "usage")
    hidden: int = Field(default=256, ge=8, le=4096)
    dim: int = Field(default=128, ge=8, le=1024)
    views: int = Field(default=1, ge=1, le=16)
    max_items: int = Field(default=5_000, ge=10)
    epochs: int = Field(default=10, ge=1, le=1000)
    max_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=256, ge=8)
    learning_rate: float = Field(default=3e-5, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    scale: float = Field(default=16.0, gt=0)
    attribute_weight: float = Field(default=0.2, ge=0)
    instance_weight: float = Field(default=1.0, ge=0)
    engagement_weight: float = Field(default=0.5, ge=0)
    validation: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(n > 0, n, 1)).astype(np.float32)


class VisualHead:
    """Backbone features -> the learned visual embedding.

    Parameters
    ----------
    config
        Its shape and training; default ``VisualHeadConfig()``.

    Attributes
    ----------
    metrics
        What its training measured (losses, items, views, seconds, validation 1-NN).
    tail
        The backbone tail file its features come from (``understand.visual_tail``), or None
        for the ImageNet features.
    """

    def __init__(self, config: VisualHeadConfig | None = None) -> None:
        self.config = config if config is not None else VisualHeadConfig()
        self.metrics: dict[str, Any] = {}
        self.tail: Path | None = None
        self._weights: dict[str, np.ndarray] | None = None
        self._front: Any = None  # a tail trained with the head, written by ``save``

    def image_encoder(self) -> ImageEncoder:
        """The image encoder whose features this head reads (with its tail, if any)."""
        return ImageEncoder(ImageEncoderConfig(tail=self.tail))

    @property
    def dim(self) -> int:
        """The embedding's dimension."""
        return self.config.dim

    @property
    def fitted(self) -> bool:
        """Whether it has weights."""
        return self._weights is not None

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Embed backbone features: ``(n, 1280)`` -> float32 ``(n, dim)`` unit rows.

        All-zero rows (items without an image) stay zero.

        Raises
        ------
        NotFittedError
            If it has no weights.
        InputError
            If ``features`` is not ``(n, 1280)``.
        """
        if self._weights is None:
            raise NotFittedError("VisualHead isn't fitted, call fit first")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != DIM:
            raise InputError(
                f"The 'features' of VisualHead must have shape (n, {DIM}). Got {x.shape} instead."
            )
        w = self._weights
        h = _relu(x * np.float32(np.sqrt(DIM)) @ w["w1"].T + w["b1"])
        out = _unit(h @ w["w2"].T + w["b2"])
        out[~x.any(axis=1)] = 0.0
        return out

    def fit(
        self,
        clean: np.ndarray,
        views: np.ndarray,
        labels: dict[str, np.ndarray],
        pairs: np.ndarray | None = None,
        init: VisualHead | None = None,
        front: Any = None,
        front_lr: float = 1e-4,
    ) -> Self:
        """Train on the items' clean features, their augmented views and labels.

        Parameters
        ----------
        clean
            ``(n, 1280)`` backbone features of the catalog shots.
        views
            ``(n, v, 1280)`` backbone features of photo-like views (zero rows: missing).
        labels
            Per task, ``(n,)`` int class ids, -1 where unknown.
        pairs
            ``(m, 2)`` item positions engaged together (extra positives), or None.
        init
            A fitted head to start from (the general head when adapting); None: random.
        front
            A backbone tail (``visual_tail.tail_net``) trained with the head at learning rate
            ``front_lr``; ``clean`` and ``views`` are then the flattened maps entering it
            (``ImageEncoderConfig.maps_before``), and ``save`` writes it as the head's tail.

        Raises
        ------
        InputError
            If the shapes disagree or ``init`` has another shape.
        """
        from moodboard.understand._visual_train import train

        n = len(clean)
        d = DIM if front is None else clean.shape[1]
        if clean.shape != (n, d) or views.shape[0] != n or views.shape[2] != d:
            raise InputError(
                f"VisualHead.fit needs clean (n, {d}) and views (n, v, {d}). "
                f"Got {clean.shape} and {views.shape} instead."
            )
        for task, y in labels.items():
            if np.shape(y) != (n,):
                raise InputError(f"The labels of task {task!r} must have shape ({n},).")
        start = None
        if init is not None:
            if init._weights is None or (init.config.hidden, init.dim) != (
                self.config.hidden,
                self.dim,
            ):
                raise InputError(
                    "The 'init' head of VisualHead.fit must be fitted with the same hidden and "
                    f"dim ({self.config.hidden}, {self.dim})."
                )
            start = init._weights
        t0 = time.perf_counter()
        self._weights, self.metrics = train(
            clean, views, labels, pairs, self.config, start, front, front_lr
        )
        self._front = front
        self.metrics["seconds"] = round(time.perf_counter() - t0, 2)
        _log.info("visual head trained: %s", self.metrics)
        return self

    def save(self, folder: Path | str, fp16: bool = False, int8: bool = False) -> None:
        """Write ``visual_head.safetensors`` (fp16 if asked; with ``int8`` its matrices as
        int8 rows with an fp16 scale each, half the size again), ``visual_head.json`` and the
        head's tail (``visual_tail.safetensors``), if it has one."""
        from safetensors.numpy import save_file

        if self._weights is None:
            raise NotFittedError("VisualHead isn't fitted, call fit first")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        dtype = np.float16 if fp16 or int8 else np.float32
        state = {k: self._weights[k].astype(dtype) for k in _NAMES}
        for k in ("w1", "w2") if int8 else ():
            scale = np.abs(self._weights[k]).max(axis=1) / 127.0
            scale = np.maximum(scale, np.finfo(np.float16).tiny).astype(np.float16)
            state[k] = np.rint(self._weights[k] / scale[:, None].astype(np.float32))
            state[k] = np.clip(state[k], -127, 127).astype(np.int8)
            state[f"{k}.scale"] = scale
        save_file(state, folder / WEIGHTS_FILE)
        if self._front is not None:
            self._front.save(folder / TAIL_FILE)
            self.tail, self._front = folder / TAIL_FILE, None
        elif self.tail is not None and self.tail.resolve() != (folder / TAIL_FILE).resolve():
            shutil.copyfile(self.tail, folder / TAIL_FILE)
        meta = {"config": self.config.model_dump(mode="json"), "metrics": self.metrics}
        (folder / META_FILE).write_text(json.dumps(meta, indent=1, default=float))

    @classmethod
    def load(cls, folder: Path | str) -> VisualHead:
        """Read a saved head (float32 in memory).

        Raises
        ------
        InputError
            If the files are missing, unreadable or have the wrong shapes.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text())
            head = cls(VisualHeadConfig(**meta["config"]))
            raw = load_file(folder / WEIGHTS_FILE)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise InputError(f"{folder} holds no readable visual head ({exc}): rebuild.") from exc
        c = head.config
        shapes = {"w1": (c.hidden, DIM), "b1": (c.hidden,), "w2": (c.dim, c.hidden), "b2": (c.dim,)}
        scales = {k: raw.pop(f"{k}.scale") for k in ("w1", "w2") if f"{k}.scale" in raw}
        if {k: tuple(raw[k].shape) for k in raw} != shapes or any(
            v.shape != (len(raw[k]),) for k, v in scales.items()
        ):
            raise InputError(f"The visual head in {folder} does not have the shapes {shapes}.")
        for k, scale in scales.items():  # int8 rows times their scale
            raw[k] = raw[k].astype(np.float32) * scale.astype(np.float32)[:, None]
        head._weights = {k: raw[k].astype(np.float32) for k in _NAMES}
        head.metrics = meta.get("metrics", {})
        head.tail = folder / TAIL_FILE if (folder / TAIL_FILE).is_file() else None
        return head

    @classmethod
    def general(cls) -> VisualHead:
        """The general fashion head shipped in the package."""
        return cls.load(PACKAGED)


def nearest_accuracy(
    queries: np.ndarray, index: np.ndarray, query_rows: np.ndarray, labels: np.ndarray
) -> float:
    """1-NN label accuracy: each query's nearest index row other than its own, same label?

    Parameters
    ----------
    queries
        ``(q, d)`` unit vectors.
    index
        ``(n, d)`` unit vectors (zero rows never match).
    query_rows
        ``(q,)`` the row of ``index`` each query comes from (excluded from its neighbours).
    labels
        ``(n,)`` int labels of the index rows.
    """
    if len(queries) == 0:
        return float("nan")
    sims = queries @ index.T
    sims[np.arange(len(queries)), query_rows] = -np.inf
    sims[:, ~index.any(axis=1)] = -np.inf
    nearest = sims.argmax(axis=1)
    return float(np.mean(labels[nearest] == labels[query_rows]))


def catalog_labels(catalog: Catalog, attributes: Sequence[str]) -> dict[str, np.ndarray]:
    """The head's tasks from a catalog: its leaf category and the named attributes.

    Returns
    -------
    dict
        Task name -> ``(n,)`` int class ids (-1 where missing or for a value held by a single
        item); tasks with fewer than two classes are left out.
    """
    columns = {"category": catalog.leaf_category()}
    columns |= {a: catalog.attributes[a] for a in attributes if a in catalog.attributes}
    out: dict[str, np.ndarray] = {}
    for name, col in columns.items():
        values = [None if v is None or v == "" else str(v) for v in col.tolist()]
        counts: dict[str, int] = {}
        for v in values:
            if v is not None:
                counts[v] = counts.get(v, 0) + 1
        kept = sorted(v for v, c in counts.items() if c >= 2)
        code = {v: i for i, v in enumerate(kept)}
        y = np.array([code.get(v, -1) if v is not None else -1 for v in values], dtype=np.int64)
        if len(kept) >= 2:
            out[name] = y
    return out
