"""``sequence``: a self-attentive next-item model (SASRec trained with full cross-entropy).

The user state is the transformer's output at the most recent item of the history; every item
is scored by the dot product of that state with its (tied) item vector. See
:mod:`moodboard.retrieve._sasrec` for the network and the Trainer. torch is imported only when
a model is fitted, loaded or run.

Cold-start policy: history items outside ``0 .. n_items - 1`` are dropped; an empty history
is scored by training popularity and has a zero ``query_embedding``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import Field, model_validator

from moodboard.errors import InputError
from moodboard.retrieve.base import CandidateSource, SourceConfig, TrainingData

if TYPE_CHECKING:
    from moodboard.retrieve._sasrec import SASRec

_log = logging.getLogger(__name__)

#: ``TrainingData.validation``: 0-based histories and their next items (early stopping).
Validation = tuple[Sequence[np.ndarray], np.ndarray]


class SequenceConfig(SourceConfig):
    """Parameters of the ``sequence`` source.

    Attributes
    ----------
    dim, n_layers, n_heads, inner_mult, dropout
        Item vector size, attention blocks, heads, feed-forward width (x ``dim``), dropout.
    max_len
        Longest history read (the last ``max_len`` items).
    attributes, max_attributes
        Add the mean of learned attribute vectors (``item_features["attributes"]``) to each
        item's vector, keeping at most ``max_attributes`` per item. None: when the data has
        attributes; True: required (an error without them); False: never.
    lr, weight_decay, batch_size, label_smoothing
        AdamW and the cross-entropy loss; a batch is ``batch_size`` user sequences.
    negatives, negative_power
        0: full softmax over all items; k > 0: sampled softmax against k negatives shared by
        the batch (much cheaper on large catalogs), drawn with probability proportional to
        (training count + 1) ** negative_power (0: uniform), with the logQ correction.
    epochs, max_minutes
        Training stops after ``epochs`` or ``max_minutes`` of training, whichever comes first.
    eval_every, patience, valid_users
        Validation NDCG@10 is measured every ``eval_every`` epochs on at most ``valid_users``
        users; the best state is kept and training stops after ``patience`` evaluations
        without improvement. Without explicit validation data, the last item of
        ``valid_users`` random users is held out of training for this (0: no early stopping).
    restarts, lr_decay
        At a plateau (``patience`` evaluations without improvement) go back to the best state
        and multiply the learning rate by ``lr_decay``, at most ``restarts`` times, then stop.
    contrastive, temperature
        Weight of a contrastive loss between two dropout views of each user's state (cosine
        InfoNCE with in-batch negatives at ``temperature``); 0: off.
    threads
        torch CPU threads while fitting and scoring.
    seed
        Seeds initialization, batching and the validation sample.
    """

    dim: int = Field(default=64, ge=8)
    n_layers: int = Field(default=2, ge=1)
    n_heads: int = Field(default=2, ge=1)
    inner_mult: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    max_len: int = Field(default=50, ge=2)
    attributes: bool | None = None
    max_attributes: int = Field(default=16, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.1, ge=0.0)
    batch_size: int = Field(default=256, ge=1)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    negatives: int = Field(default=1024, ge=0)
    negative_power: float = Field(default=0.75, ge=0.0, le=1.0)
    epochs: int = Field(default=200, ge=1)
    max_minutes: float = Field(default=12.0, gt=0.0)
    eval_every: int = Field(default=2, ge=1)
    patience: int = Field(default=4, ge=1)
    restarts: int = Field(default=0, ge=0)
    lr_decay: float = Field(default=0.3, gt=0.0, le=1.0)
    contrastive: float = Field(default=0.0, ge=0.0)
    temperature: float = Field(default=0.2, gt=0.0)
    valid_users: int = Field(default=5000, ge=0)
    threads: int = Field(default=1, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> Self:
        if self.dim % self.n_heads:
            raise ValueError(
                f"The 'n_heads' parameter of SequenceConfig must divide dim={self.dim}. "
                f"Got {self.n_heads} instead."
            )
        return self


def attribute_lists(codes: np.ndarray) -> list[np.ndarray]:
    """Per-item attribute ids from categorical codes ``(n, m)`` (``-1``: missing), each
    column's codes offset so that equal codes of different columns stay distinct."""
    codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1)
    width = np.maximum(codes.max(axis=0, initial=-1) + 1, 0)
    ids = codes + np.concatenate([[0], np.cumsum(width)[:-1]]).astype(np.int64)
    return [row[c >= 0] for row, c in zip(ids, codes, strict=True)]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's process-wide thread count set to ``n`` inside, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SequenceRecommender(CandidateSource):
    """The ``sequence`` candidate source: next-item scores from a causal transformer."""

    kind = "sequence"
    Config = SequenceConfig
    config: SequenceConfig
    full_ranking = True

    # ---------------------------------------------------------------- fit
    def _fit(self, data: TrainingData) -> None:
        """Learn from the training sequences (0-based items).

        ``item_features["attributes"]`` is used when ``config.attributes``;
        ``data.validation`` (0-based histories and next items) drives early stopping, else the
        last item of ``valid_users`` random users is held out of training instead.

        Raises
        ------
        InputError
            If an item is outside ``0 .. n_items - 1``, or attributes are asked for and
            missing.
        """
        from moodboard.retrieve import _sasrec as S
        from moodboard.retrieve._sasrec_train import SequenceTrainer

        cfg = self.config
        self.n_items = int(data.n_items)
        seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
        for s in seqs:
            if len(s) and (s.min() < 0 or s.max() >= self.n_items):
                raise InputError(
                    f"{self.name}: items must be in 0 .. {self.n_items - 1}; got "
                    f"{int(s.min())} .. {int(s.max())}."
                )
        rng = np.random.default_rng(cfg.seed)
        train, valid = self._split(seqs, data.validation, rng)
        counts = np.bincount(np.concatenate([*seqs, np.zeros(0, np.int64)]), minlength=self.n_items)
        self._popularity = counts.astype(np.float32)
        attrs, n_attrs = None, 0
        raw = data.item_features.get("attributes") if cfg.attributes is not False else None
        if raw is not None:
            attrs, n_attrs = S.attribute_index(self.n_items, raw, cfg.max_attributes)  # type: ignore[arg-type]
        elif cfg.attributes:
            raise InputError(
                f"{self.name}: config.attributes is True but data.item_features has no "
                "'attributes'; set it to None to use them only when present."
            )
        self._n_attributes, self._attribute_width = n_attrs, 0 if attrs is None else attrs.shape[1]
        t0 = time.monotonic()
        with torch_threads(cfg.threads):
            import torch

            torch.manual_seed(cfg.seed)
            self._model = self._network(attrs)
            trainer = SequenceTrainer(self._settings())
            trainer.fit(self._model, [s + 1 for s in train], valid)
        self.history_ = trainer.history
        self.valid_ndcg_ = trainer.best_ndcg
        self.fit_minutes_ = (time.monotonic() - t0) / 60.0
        self.stats = {"epochs": len(self.history_), "minutes": round(self.fit_minutes_, 2)}
        _log.info(
            "%s fitted in %.1f min, validation NDCG@10 %.4f",
            self.name,
            self.fit_minutes_,
            self.valid_ndcg_,
        )

    def _split(
        self, seqs: list[np.ndarray], validation: Validation | None, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], tuple[list[np.ndarray], np.ndarray] | None]:
        """Training sequences and 1-based validation histories with 0-based targets."""
        n_valid = self.config.valid_users
        if validation is not None:
            hist, targets = list(validation[0]), np.asarray(validation[1], dtype=np.int64)
            keep = rng.permutation(len(hist))[:n_valid] if n_valid else np.arange(len(hist))
            keep = np.sort(keep)
            return seqs, ([np.asarray(hist[i], np.int64) + 1 for i in keep], targets[keep])
        if n_valid == 0:
            return seqs, None
        eligible = np.flatnonzero([len(s) >= 3 for s in seqs])
        held = np.sort(rng.permutation(eligible)[:n_valid])
        valid = ([seqs[i][:-1] + 1 for i in held], np.array([seqs[i][-1] for i in held]))
        train = list(seqs)
        for i in held:
            train[i] = seqs[i][:-1]
        return train, valid if len(held) else None

    def _settings(self) -> Any:
        from moodboard.retrieve._sasrec_train import TrainSettings

        c = self.config
        return TrainSettings(
            lr=c.lr,
            weight_decay=c.weight_decay,
            batch_size=c.batch_size,
            epochs=c.epochs,
            max_minutes=c.max_minutes,
            eval_every=c.eval_every,
            patience=c.patience,
            label_smoothing=c.label_smoothing,
            negatives=c.negatives,
            negative_power=c.negative_power,
            restarts=c.restarts,
            lr_decay=c.lr_decay,
            contrastive=c.contrastive,
            temperature=c.temperature,
            seed=c.seed,
        )

    def _network(self, attrs: Any = None) -> SASRec:
        from moodboard.retrieve._sasrec import SASRec

        c = self.config
        return SASRec(
            self.n_items,
            c.dim,
            c.n_layers,
            c.n_heads,
            c.inner_mult * c.dim,
            c.dropout,
            c.max_len,
            attrs,
            self._n_attributes,
        )

    # ---------------------------------------------------------------- use
    def _clean(self, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for h in histories:
            h = np.asarray(h, dtype=np.int64).ravel()
            out.append(h[(h >= 0) & (h < self.n_items)] + 1)
        return out

    def _states(self, histories: Sequence[np.ndarray], batch: int) -> Iterator[tuple[Any, Any]]:
        """(1-based cleaned batch, torch states) per batch of histories."""
        import torch

        from moodboard.retrieve._sasrec import left_pad

        hs = self._clean(histories)
        with torch_threads(self.config.threads), torch.inference_mode():
            for i in range(0, len(hs), batch):
                part = hs[i : i + batch]
                x = torch.from_numpy(left_pad(part, self.config.max_len))
                yield part, self._model.last_state(x)

    def _score(
        self,
        histories: Sequence[np.ndarray],
        weights: Sequence[np.ndarray] | None,
        users: Sequence[str | None] | None,
        batch: int = 1024,
    ) -> np.ndarray:
        """Scores ``(len(histories), n_items)`` float32 of every item as the next one.

        History items are not masked. An empty history (after dropping unknown items) gets
        the training popularity.
        """
        out = np.empty((len(histories), self.n_items), dtype=np.float32)
        row = 0
        for part, state in self._states(histories, batch):
            s = self._model.scores(state).numpy()
            for j, h in enumerate(part):
                if not len(h):
                    s[j] = self._popularity
            out[row : row + len(part)] = s
            row += len(part)
        return out

    def query_embedding(self, histories: Sequence[np.ndarray], batch: int = 1024) -> np.ndarray:
        """The user states ``(len(histories), dim)`` float32 (zeros for an empty history).

        ``score`` is ``query_embedding @ item_embeddings().T`` for non-empty histories.

        Raises
        ------
        NotFittedError
            If the source was not fitted or loaded.
        """
        self.check_fitted()
        out = np.zeros((len(histories), self.config.dim), dtype=np.float32)
        row = 0
        for part, state in self._states(histories, batch):
            s = state.numpy()
            empty = [j for j, h in enumerate(part) if not len(h)]
            s[empty] = 0.0
            out[row : row + len(part)] = s
            row += len(part)
        return out

    def item_embeddings(self) -> np.ndarray:
        """The ``(n_items, dim)`` float32 item vectors the scores are dot products with.

        Raises
        ------
        NotFittedError
            If the source was not fitted or loaded.
        """
        self.check_fitted()
        import torch

        with torch.inference_mode():
            return self._model.items()[1:].numpy().astype(np.float32, copy=True)

    # ---------------------------------------------------------------- artifacts
    def _save(self, folder: Path) -> dict[str, Any]:
        """Write ``model.pt`` (a state dict) and ``popularity.npy``."""
        import torch

        torch.save(self._model.state_dict(), folder / "model.pt")
        np.save(folder / "popularity.npy", self._popularity)
        return {"n_attributes": self._n_attributes, "attribute_width": self._attribute_width}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        """The state dict is read with ``weights_only=True``.

        Raises
        ------
        InputError
            If a file is missing or the config does not match the weights.
        """
        import torch

        try:
            weights = torch.load(folder / "model.pt", weights_only=True, map_location="cpu")
            popularity = np.load(folder / "popularity.npy", allow_pickle=False)
        except FileNotFoundError as e:
            raise InputError(f"{self.kind}: no saved model in {folder} ({e.filename})") from e
        self.n_items = self.n_items_
        self._n_attributes = int(state["n_attributes"])
        self._attribute_width = int(state["attribute_width"])
        self._popularity = popularity.astype(np.float32)
        attrs = None
        if self._attribute_width:
            attrs = torch.zeros(self.n_items + 1, self._attribute_width, dtype=torch.long)
        self._model = self._network(attrs)
        try:
            self._model.load_state_dict(weights)
        except RuntimeError as e:
            raise InputError(f"{self.kind}: weights in {folder} do not match the config") from e
        self._model.eval()
