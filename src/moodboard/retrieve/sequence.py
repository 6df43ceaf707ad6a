"""``sequence``: a self-attentive next-item model (SASRec trained with full cross-entropy).

The user state is the transformer's output at the most recent item of the history; every item
is scored by the dot product of that state with its (tied) item vector. See
:mod:`moodboard.retrieve._sasrec` for the network and the Trainer. torch is imported only when
a model is fitted, loaded or run.

Cold-start policy: history items outside ``0 .. n_items - 1`` are dropped; an empty history
is scored by training popularity and has a zero ``query_embedding``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from moodboard.config import SequenceConfig
from moodboard.errors import InputError, NotFittedError
from moodboard.retrieve.recs import SequenceData

if TYPE_CHECKING:
    from moodboard.retrieve._sasrec import SASRec

_log = logging.getLogger(__name__)

#: ``validation`` of :meth:`SequenceRecommender.fit`: 0-based histories and their next items.
Validation = tuple[Sequence[np.ndarray], np.ndarray]


def attribute_lists(codes: np.ndarray) -> list[np.ndarray]:
    """Per-item attribute ids from categorical codes ``(n, m)`` (``-1``: missing), each
    column's codes offset so that equal codes of different columns stay distinct."""
    codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1)
    width = np.maximum(codes.max(axis=0, initial=-1) + 1, 0)
    ids = codes + np.concatenate([[0], np.cumsum(width)[:-1]]).astype(np.int64)
    return [row[c >= 0] for row, c in zip(ids, codes, strict=True)]


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SequenceRecommender:
    """The ``sequence`` candidate source: next-item scores from a causal transformer.

    Parameters
    ----------
    config
        Model and training parameters; defaults to ``SequenceConfig()``.
    """

    name = "sequence"

    def __init__(self, config: SequenceConfig | None = None) -> None:
        self.config = config if config is not None else SequenceConfig()

    # ---------------------------------------------------------------- fit
    def fit(self, data: SequenceData, validation: Validation | None = None) -> Self:
        """Learn from the training sequences; returns self.

        Parameters
        ----------
        data
            Training sequences (0-based items); ``item_features["attributes"]`` is used when
            ``config.attributes``.
        validation
            Optional 0-based histories and next items for early stopping; without it the last
            item of ``valid_users`` random users is held out of training instead.

        Raises
        ------
        InputError
            If an item is outside ``0 .. n_items - 1``, or attributes are asked for and
            missing.
        """
        from moodboard.retrieve import _sasrec as S

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
        train, valid = self._split(seqs, validation, rng)
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
        with _torch_threads(cfg.threads):
            import torch

            torch.manual_seed(cfg.seed)
            self._model = self._network(attrs)
            trainer = S.SequenceTrainer(self._settings())
            trainer.fit(self._model, [s + 1 for s in train], valid)
        self.history_ = trainer.history
        self.valid_ndcg_ = trainer.best_ndcg
        self.fit_minutes_ = (time.monotonic() - t0) / 60.0
        _log.info(
            "%s fitted in %.1f min, validation NDCG@10 %.4f",
            self.name,
            self.fit_minutes_,
            self.valid_ndcg_,
        )
        return self

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
        from moodboard.retrieve._sasrec import TrainSettings

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
    def _check_fitted(self) -> None:
        if not hasattr(self, "_model"):
            raise NotFittedError(f"{type(self).__name__} isn't fitted, call fit first")

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
        with _torch_threads(self.config.threads), torch.inference_mode():
            for i in range(0, len(hs), batch):
                part = hs[i : i + batch]
                x = torch.from_numpy(left_pad(part, self.config.max_len))
                yield part, self._model.last_state(x)

    def score(self, histories: Sequence[np.ndarray], batch: int = 1024) -> np.ndarray:
        """Scores ``(len(histories), n_items)`` float32 of every item as the next one.

        History items are not masked. An empty history (after dropping unknown items) gets
        the training popularity.

        Raises
        ------
        NotFittedError
            If the source was not fitted or loaded.
        """
        self._check_fitted()
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
        self._check_fitted()
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
        self._check_fitted()
        import torch

        with torch.inference_mode():
            return self._model.items()[1:].numpy().astype(np.float32, copy=True)

    # ---------------------------------------------------------------- artifacts
    def save(self, folder: Path | str) -> None:
        """Write ``model.pt`` (state dict), ``popularity.npy`` and ``sequence.json``.

        Raises
        ------
        NotFittedError
            If the source was not fitted.
        """
        import torch

        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self._model.state_dict(), folder / "model.pt")
        np.save(folder / "popularity.npy", self._popularity)
        meta = {
            "name": self.name,
            "config": self.config.model_dump(),
            "n_items": self.n_items,
            "n_attributes": self._n_attributes,
            "attribute_width": self._attribute_width,
        }
        (folder / "sequence.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path | str) -> SequenceRecommender:
        """Open a saved model (state dict read with ``weights_only=True``).

        Raises
        ------
        InputError
            If a file is missing or the config does not match the weights.
        """
        import torch

        folder = Path(folder)
        try:
            meta = json.loads((folder / "sequence.json").read_text())
            state = torch.load(folder / "model.pt", weights_only=True, map_location="cpu")
            popularity = np.load(folder / "popularity.npy", allow_pickle=False)
        except FileNotFoundError as e:
            raise InputError(f"{cls.name}: no saved model in {folder} ({e.filename})") from e
        self = cls(SequenceConfig.model_validate(meta["config"]))
        self.n_items = int(meta["n_items"])
        self._n_attributes = int(meta["n_attributes"])
        self._attribute_width = int(meta["attribute_width"])
        self._popularity = popularity.astype(np.float32)
        attrs = None
        if self._attribute_width:
            attrs = torch.zeros(self.n_items + 1, self._attribute_width, dtype=torch.long)
        self._model = self._network(attrs)
        try:
            self._model.load_state_dict(state)
        except RuntimeError as e:
            raise InputError(f"{cls.name}: weights in {folder} do not match the config") from e
        self._model.eval()
        return self
