"""``dense/text_image``: text queries searched against the items' images.

A CLIP-style head with a locked image tower (LiT): a linear map from the frozen text
encoder's space (``item_features["text"]``, 384-d MiniLM) into the image space the
``visual/image`` index holds (``item_features["image"]``, whatever those vectors are),
trained with a symmetric InfoNCE loss on the catalog's (text, image) pairs; with
``item_features["title"]`` each pair's text is the item's full text or its title at random
(short queries look like titles: held-out title recall@10 0.26 -> 0.36 on the fashion demo).
A query's text vector goes through the head and searches the image vectors by inner product,
so a text query finds items by how they look, whatever their titles say.

The head is a ``(text_dim, image_dim)`` matrix and a bias (``.npy``); the image vectors are
not copied: with ``index = "visual/image"`` (the default) the source searches that loaded
source's index, linked by ``attach`` once the version's sources are loaded (the build and the
server do it); with ``index = None`` it keeps and saves its own copy (a standalone source).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from moodboard.data import Candidates
from moodboard.errors import ConfigError
from moodboard.retrieve.base import CandidateSource, SourceConfig, SourceQuery, TrainingData
from moodboard.retrieve.dense import DenseSource, VisualIndexConfig, VisualSource

_log = logging.getLogger(__name__)

#: Most held-out pairs whose recall@10 the fit reports.
_MAX_HELD_OUT = 2000


class TextImageConfig(SourceConfig):
    """The head's training (``[retrieve.text_image]``).

    ``index``: the loaded source whose image vectors are searched (None: a private copy).
    ``titles``: the build embeds the titles too, a second text view of each item
    (``item_features["title"]``). ``max_candidates``: the most items one query returns (a
    fused list's tail costs the ranker time and, at a low fusion weight, changes nothing).
    ``held_out``: the share of (text, image) pairs left out of training to measure the
    head's recall@10 (at most 2,000 pairs; none under 50 pairs). Training stops after
    ``epochs`` or ``max_seconds``, whichever comes first.
    """

    index: str | None = "visual/image"
    titles: bool = True
    max_candidates: int = Field(default=50, ge=1, le=10_000)
    epochs: int = Field(default=20, ge=1, le=1000)
    batch_size: int = Field(default=512, ge=2, le=65_536)
    lr: float = Field(default=3e-3, gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    temperature: float = Field(default=0.05, gt=0, le=1)
    max_seconds: float = Field(default=60.0, gt=0)
    held_out: float = Field(default=0.05, ge=0, lt=1)
    seed: int = 0


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 rows of norm 1 (zero rows stay zero)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norm, 1e-12))


class TextImageSource(CandidateSource):
    """Text-space query vectors -> the head -> the nearest item images."""

    kind = "dense/text_image"
    Config = TextImageConfig
    config: TextImageConfig

    weight: np.ndarray
    bias: np.ndarray
    _index: DenseSource | None = None

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: TrainingData) -> None:
        text = data.item_features.get("text")
        image = data.item_features.get("image")
        n = data.n_items
        if text is None or image is None or len(text) != n or len(image) != n:  # type: ignore[arg-type]
            raise ConfigError(
                f"{self.name} needs one text and one image vector per catalog item: "
                f"TrainingData.item_features['text'] and ['image'] of {n} rows each."
            )
        text = unit_rows(text)  # type: ignore[arg-type]
        image = np.ascontiguousarray(np.asarray(image, dtype=np.float32))
        self._has = np.any(image != 0, axis=1)
        views = [text]
        title = data.item_features.get("title")  # optional: a second text view of each item
        if self.config.titles and title is not None and len(title) == n:  # type: ignore[arg-type]
            views.append(unit_rows(title))  # type: ignore[arg-type]
        self.weight, self.bias, self.stats = _train(views, image, self._has, self.config)
        index = VisualSource(VisualIndexConfig(), name=self.name)
        self._index = index.fit(
            TrainingData(n_items=n, item_features={"image": image}, catalog=data.catalog)
        )
        _log.info("%s: %s", self.name, self.stats)

    def attach(self, sources: Mapping[str, CandidateSource]) -> None:
        """Search the image vectors of ``sources[config.index]`` (a loaded ``visual/*``).

        Raises
        ------
        ConfigError
            If that source is not among ``sources`` or its vectors are of another dimension.
        """
        name = self.config.index
        if name is None:
            return
        found = sources.get(name)
        if not isinstance(found, DenseSource):
            raise ConfigError(
                f"{self.name} searches the image vectors of {name!r}, which is not loaded: "
                "rebuild the version with its images."
            )
        if found.dim != self.weight.shape[1]:
            raise ConfigError(
                f"{self.name} maps text into {self.weight.shape[1]}-d image vectors; {name!r} "
                f"holds {found.dim}-d ones: rebuild the version."
            )
        self._index = found
        self._has = np.any(found.item_vectors() != 0, axis=1)

    # ------------------------------------------------------------------ serving
    @property
    def text_dim(self) -> int:
        """The dimension of the text vectors it takes."""
        self.check_fitted()
        return int(self.weight.shape[0])

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Text vectors ``(n, text_dim)`` -> unit vectors ``(n, image_dim)`` in the image space.

        Raises
        ------
        ConfigError
            If the vectors are not ``text_dim``-d.
        """
        self.check_fitted()
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if x.shape[-1] != self.weight.shape[0]:
            raise ConfigError(
                f"{self.name} takes {self.weight.shape[0]}-d text vectors. "
                f"Got {x.shape[-1]}-d instead."
            )
        import torch  # torch's threads, as dense search: a numpy BLAS pool beside them is slow

        with torch.inference_mode():
            out = torch.from_numpy(unit_rows(x)) @ torch.from_numpy(self.weight)
            return unit_rows((out + torch.from_numpy(self.bias)).numpy())

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        if query.vector is None:
            return Candidates.empty()
        if self._index is None:
            raise ConfigError(
                f"{self.name} is not linked to the {self.config.index!r} index: call "
                "attach(sources) with the version's loaded sources."
            )
        mask = self._has if allowed is None else allowed & self._has
        k = min(k, self.config.max_candidates)
        scores, idx = self._index.search(self.project(query.vector), k, mask)
        keep = idx[0] >= 0
        return Candidates.from_scores(idx[0][keep], scores[0][keep], self.name)

    # ------------------------------------------------------------------ artifacts
    def _save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "weight.npy", self.weight)
        np.save(folder / "bias.npy", self.bias)
        if self.config.index is None and self._index is not None:
            np.save(folder / "vectors.npy", self._index.item_vectors())
        return {"text_dim": int(self.weight.shape[0]), "image_dim": int(self.weight.shape[1])}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self.weight = np.load(folder / "weight.npy", allow_pickle=False)
        self.bias = np.load(folder / "bias.npy", allow_pickle=False)
        self._index = None
        if self.config.index is None:
            image = np.load(folder / "vectors.npy", allow_pickle=False)
            self._has = np.any(image != 0, axis=1)
            index = VisualSource(VisualIndexConfig(), name=self.name)
            data = TrainingData(n_items=len(image), item_features={"image": image})
            self._index = index.fit(data)


def _train(
    views: list[np.ndarray], image: np.ndarray, has: np.ndarray, cfg: TextImageConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The head ``(weight, bias)`` trained by symmetric InfoNCE on the items with an image,
    each pair's text drawn at random among the ``views`` (the item's text, its title) at each
    step, and what training measured (pairs, epochs, loss, seconds, held-out recall@10 of the
    first view)."""
    import torch

    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    pairs = rng.permutation(np.flatnonzero(has))
    n_out = min(_MAX_HELD_OUT, int(len(pairs) * cfg.held_out)) if len(pairs) >= 50 else 0
    held, train = pairs[:n_out], pairs[n_out:]
    text = views[0]
    d_text, d_img = text.shape[1], image.shape[1]
    losses: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        head = torch.nn.Linear(d_text, d_img)
        torch.nn.init.normal_(head.weight, std=1.0 / math.sqrt(d_text))
        torch.nn.init.zeros_(head.bias)
        scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        params = [*head.parameters(), scale]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        t_x = torch.from_numpy(np.stack([v[train] for v in views]))
        i_x = torch.from_numpy(image[train])
        epochs = 0
        for _ in range(cfg.epochs if len(train) >= 2 else 0):
            order = torch.randperm(len(train))
            total = 0.0
            for lo in range(0, len(train), cfg.batch_size):
                b = order[lo : lo + cfg.batch_size]
                if len(b) < 2:
                    continue
                view = torch.randint(len(views), (len(b),))
                q = torch.nn.functional.normalize(head(t_x[view, b]), dim=1)
                logits = scale.clamp(max=math.log(100.0)).exp() * (q @ i_x[b].T)
                target = torch.arange(len(b))
                ce = torch.nn.functional.cross_entropy
                loss = (ce(logits, target) + ce(logits.T, target)) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            epochs += 1
            losses.append(total / len(train))
            if time.perf_counter() - t0 > cfg.max_seconds:
                break
        weight = head.weight.detach().numpy().T.copy()
        bias = head.bias.detach().numpy().copy()
    stats: dict[str, Any] = {
        "pairs": len(train),
        "held_out": len(held),
        "epochs": epochs,
        "loss": [round(x, 4) for x in losses],
        "train_seconds": round(time.perf_counter() - t0, 2),
    }
    if len(held):
        stats["held_out_recall@10"] = round(recall_at(text[held] @ weight + bias, image, held), 4)
    return weight, bias, stats


def recall_at(queries: np.ndarray, image: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """The share of ``queries`` (image-space vectors) whose ``targets`` item is among the
    ``k`` nearest of the non-zero rows of ``image`` (ties counted in the target's favour)."""
    has = np.any(image != 0, axis=1)
    hits = 0
    for lo in range(0, len(queries), 256):
        s = unit_rows(queries[lo : lo + 256]) @ image.T
        s[:, ~has] = -np.inf
        own = s[np.arange(len(s)), targets[lo : lo + 256]][:, None]
        hits += int(((s > own).sum(axis=1) < k).sum())
    return hits / max(len(queries), 1)
