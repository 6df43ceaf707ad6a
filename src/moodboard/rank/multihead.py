"""``MultiHeadRanker``: calibrated probabilities of click, save, add to cart, purchase and hide.

The network (``_multihead_net``) reads the candidate (id + content vector), the user's recent
actions (TransAct-style) and dense features; ``MultiHeadTrainer`` fits it on the earlier rows
and stops early on the latest ``validation_fraction``, on which each head is then calibrated
(``calibration``). Serving scores every row at position 1. Saved as ``model.pt`` (a state dict,
loaded with ``weights_only=True``) and ``ranker.json`` (config, sizes, dense names,
calibration); the content table is the catalog's and is given again at load.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError, NotFittedError
from moodboard.rank.calibration import CalibrationMethod, Calibrator, fit_calibrator
from moodboard.rank.inputs import HEADS, MultiHeadInputs
from moodboard.rank.personal import PERSONAL_FEATURES

_log = logging.getLogger(__name__)


class MultiHeadConfig(BaseModel):
    """The multi-head ranker's network, training, calibration and utility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Embedding width of items, actions, time gaps and the sequence module.
    dim: int = Field(default=32, ge=4)
    #: Attention heads of the sequence module (divides ``dim``).
    heads: int = Field(default=2, ge=1)
    ff_dim: int = Field(default=64, ge=4)
    #: The newest actions the sequence module reads.
    max_history: int = Field(default=32, ge=1, le=512)
    #: Time-gap buckets ``floor(log2(1 + seconds))``: 24 reach 97 days.
    gap_buckets: int = Field(default=24, ge=1)
    #: False: the ablation without the action sequence (same class, same training; nor the
    #: personal features, which read the sequence).
    sequence: bool = True
    #: Dense features through ``sign(x) * log1p(|x|)`` before standardization (counts are
    #: heavy-tailed): higher offline AUCs, with ``id_dropout`` 0.9, not more purchases online.
    log_dense: bool = False
    #: The candidate's ``rank.personal`` features against the history as dense inputs: its
    #: share of the history's (action-weighted) gender, type, colour, usage and season, the
    #: cosine to the history's mean text vector, and whether the shopper engaged with it.
    personal: bool = True
    experts: int = Field(default=4, ge=1)
    expert_dim: int = Field(default=32, ge=2)
    tower_dim: int = Field(default=16, ge=2)
    #: Positions with their own training-only bias (later positions share the last).
    max_position: int = Field(default=50, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    #: Share of item ids replaced by the out-of-vocabulary row in training (cold items).
    id_dropout: float = Field(default=0.5, ge=0, lt=1)
    #: Weight of each head's binary cross-entropy (heads left out weigh 1).
    loss_weights: dict[str, float] = Field(
        default_factory=lambda: {h: 1.0 for h in HEADS}, validate_default=True
    )
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    batch_size: int = Field(default=512, ge=2)
    epochs: int = Field(default=10, ge=1)
    #: Epochs without a better validation score before training stops.
    patience: int = Field(default=3, ge=1)
    early_stopping: Literal["auc", "loss"] = "auc"
    #: The latest share of the rows: early stopping and calibration.
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    calibration: CalibrationMethod = "platt"
    #: Ranking utility: weighted sum of the calibrated head probabilities.
    utility: dict[str, float] = Field(
        default_factory=lambda: {
            "click": 1.0,
            "save": 2.0,
            "add_to_cart": 4.0,
            "purchase": 8.0,
            "hide": -4.0,
        },
        validate_default=True,
    )
    seed: int = 0
    threads: int = Field(default=1, ge=1)
    #: The build trains the ranker only from at least this many labelled impressions.
    min_rows: int = Field(default=2_000, ge=10)
    #: The build trains on the newest ``max_rows`` labelled impressions.
    max_rows: int = Field(default=40_000, ge=10)
    #: Serving: the stage scores the first ``depth`` candidates of the fused list.
    depth: int = Field(default=100, ge=1, le=5_000)

    def model_post_init(self, context: object) -> None:
        """Check head names and that ``heads`` divides ``dim``.

        Raises
        ------
        ValueError
            On an unknown head name or a ``dim`` not divisible by ``heads``.
        """
        for what in ("loss_weights", "utility"):
            bad = set(getattr(self, what)) - set(HEADS)
            if bad:
                raise ValueError(
                    f"The '{what}' of MultiHeadConfig names heads among {', '.join(HEADS)}. "
                    f"Got {sorted(bad)} instead."
                )
        if self.dim % self.heads:
            raise ValueError(
                f"The 'dim' of MultiHeadConfig must be a multiple of 'heads' ({self.heads}). "
                f"Got {self.dim} instead."
            )


def check_inputs(x: MultiHeadInputs, dense_names: tuple[str, ...] | None = None) -> None:
    """Raise ``ConfigError`` unless ``x``'s action codes are known (``MultiHeadInputs`` checks
    its shapes itself) and its dense features are ``dense_names`` in that order."""
    codes = np.asarray(x.history_actions)
    if codes.size and (codes.min() < 0 or codes.max() > len(HEADS)):
        raise ConfigError(
            f"MultiHeadInputs.history_actions must hold codes 0..{len(HEADS)} (ACTION_CODES, "
            f"0 pad). Got {codes.min()}..{codes.max()} instead."
        )
    if dense_names is not None and tuple(x.dense_names) != tuple(dense_names):
        raise ConfigError(
            f"The dense features must be {list(dense_names)} in this order, as the ranker was "
            f"trained on. Got {list(x.dense_names)} instead."
        )


def _fingerprint(content: np.ndarray | None) -> str:
    if content is None:
        return ""
    return hashlib.blake2b(
        np.ascontiguousarray(content, np.float32).tobytes(), digest_size=8
    ).hexdigest()


class MultiHeadRanker:
    """Calibrated per-action probabilities of candidates, and their utility.

    Parameters
    ----------
    config
        Network, training, calibration and utility settings.
    """

    name = "rank/multihead"

    def __init__(self, config: MultiHeadConfig | None = None) -> None:
        self.config = config or MultiHeadConfig()
        self.net = None
        self.calibrators: dict[str, Calibrator] = {}
        self.report: dict[str, object] = {}

    def _build(self, n_items: int, content_dim: int, dense_names: tuple[str, ...]) -> None:
        import torch

        from moodboard.rank._multihead_net import MultiHeadNet

        c = self.config
        self.n_items, self.content_dim, self.dense_names = n_items, content_dim, dense_names
        with torch.random.fork_rng(devices=[]):  # the same weights for the same seed
            torch.manual_seed(c.seed)
            self.net = MultiHeadNet(
                n_items, content_dim, len(dense_names), c.dim, c.heads, c.ff_dim,
                c.gap_buckets, c.experts, c.expert_dim, c.tower_dim, c.max_position,
                c.sequence, c.dropout, c.id_dropout, c.log_dense,
            )  # fmt: skip

    def fit(
        self,
        inputs: MultiHeadInputs,
        content: np.ndarray | None = None,
        n_items: int | None = None,
    ) -> Self:
        """Train on ``inputs`` (rows in time order) and calibrate each head.

        Parameters
        ----------
        inputs
            Labelled rows, oldest first: the latest ``validation_fraction`` are held out for
            early stopping and calibration.
        content
            ``[n, d]`` fixed content vectors by catalog index (e.g. the text vectors), or None.
        n_items
            Items with an id embedding (default: the content table's rows, else the largest
            index seen + 1).

        Raises
        ------
        ConfigError
            If the inputs disagree in shape or hold too few rows to hold some out.
        """
        import torch

        from moodboard.rank._multihead_net import symlog
        from moodboard.rank._multihead_train import MultiHeadTrainer, head_aucs, score

        check_inputs(inputs)
        if not (self.config.sequence and self.config.personal):
            inputs = inputs.without_dense(PERSONAL_FEATURES)  # the ablation reads no history
        n = len(inputs)
        n_valid = round(n * self.config.validation_fraction)
        if n_valid < 2 or n - n_valid < 2:
            raise ConfigError(
                f"MultiHeadRanker.fit needs at least 2 training and 2 held-out rows "
                f"(validation_fraction {self.config.validation_fraction}). Got {n} rows."
            )
        if n_items is None:
            seen = max(int(np.max(inputs.item)), int(np.max(inputs.history_items, initial=-1)))
            n_items = len(content) if content is not None else seen + 1
        train = inputs.take(np.arange(n - n_valid))
        valid = inputs.take(np.arange(n - n_valid, n))
        self._build(n_items, 0 if content is None else content.shape[1], tuple(inputs.dense_names))
        self.net.items.set_content(content)
        dense = np.asarray(train.dense, dtype=np.float64)
        if self.config.log_dense:
            dense = symlog(torch.as_tensor(dense)).numpy()  # what the network reads
        with torch.no_grad():
            self.net.dense_mean.copy_(
                torch.as_tensor(np.nanmean(dense, 0) if len(dense[0]) else [])
            )
            std = np.nanstd(dense, 0) if len(dense[0]) else np.ones(0)
            self.net.dense_std.copy_(torch.as_tensor(np.where(std > 1e-9, std, 1.0)))
        fitted = MultiHeadTrainer(self.config).fit(self.net, train, valid)
        logits = score(self.net, valid, self.config.max_history, 4096)
        labels = np.asarray(valid.labels)
        self.calibrators = {
            h: fit_calibrator(logits[:, j], labels[:, j], self.config.calibration)
            for j, h in enumerate(HEADS)
        }
        self.content_fingerprint = _fingerprint(content)
        self.report = {"training": fitted.to_json(), "valid_auc": head_aucs(logits, labels)}
        _log.info("trained %s on %d rows: %s", self.name, n, self.report["valid_auc"])
        return self

    def _check(self) -> None:
        if self.net is None:
            raise NotFittedError("MultiHeadRanker isn't fitted, call fit first")

    def predict_logits(self, inputs: MultiHeadInputs) -> np.ndarray:
        """Uncalibrated serving logits ``(B, 5)`` (position fixed at 1)."""
        from moodboard.rank._multihead_train import score

        self._check()
        if not set(PERSONAL_FEATURES) & set(self.dense_names):
            inputs = inputs.without_dense(PERSONAL_FEATURES)
        check_inputs(inputs, self.dense_names)
        return score(self.net, inputs, self.config.max_history, 4096)

    def predict_proba(self, inputs: MultiHeadInputs) -> np.ndarray:
        """Calibrated probabilities ``(B, 5)`` in ``HEADS`` order."""
        z = self.predict_logits(inputs)
        return np.stack([self.calibrators[h](z[:, j]) for j, h in enumerate(HEADS)], axis=1)

    def predict(self, inputs: MultiHeadInputs) -> dict[str, np.ndarray]:
        """Calibrated probabilities by head name."""
        p = self.predict_proba(inputs)
        return {h: p[:, j] for j, h in enumerate(HEADS)}

    def utility(self, probs: np.ndarray, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """The ranking utility of ``predict_proba`` rows: ``sum_h weights[h] * p_h`` (config's
        weights by default; hide weighs negative)."""
        w = self.config.utility if weights is None else weights
        return np.asarray(probs) @ np.asarray([w.get(h, 0.0) for h in HEADS], dtype=np.float64)

    def save(self, folder: Path) -> None:
        """``model.pt`` (state dict) and ``ranker.json`` in ``folder``."""
        import torch

        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), folder / "model.pt")
        meta = {
            "config": self.config.model_dump(),
            "n_items": self.n_items,
            "content_dim": self.content_dim,
            "content_fingerprint": self.content_fingerprint,
            "dense_names": list(self.dense_names),
            "calibration": {h: c.to_json() for h, c in self.calibrators.items()},
            "report": self.report,
        }
        (folder / "ranker.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path, content: np.ndarray | None = None) -> MultiHeadRanker:
        """A saved ranker; ``content`` is the table it was trained with.

        Raises
        ------
        ConfigError
            If ``content`` is missing or differs from the training table.
        """
        import torch

        meta = json.loads((Path(folder) / "ranker.json").read_text())
        r = cls(MultiHeadConfig(**meta["config"]))
        if meta["content_fingerprint"] != _fingerprint(content):
            raise ConfigError(
                f"{folder} was trained with a content table of {meta['content_dim']} columns "
                "(fingerprint " + (meta["content_fingerprint"] or "none") + "): pass the same "
                "table to MultiHeadRanker.load (the version's text vectors), or retrain."
            )
        r._build(meta["n_items"], meta["content_dim"], tuple(meta["dense_names"]))
        state = torch.load(Path(folder) / "model.pt", weights_only=True)
        r.net.load_state_dict(state)
        r.net.items.set_content(content)
        r.net.eval()
        r.calibrators = {h: Calibrator.from_json(c) for h, c in meta["calibration"].items()}
        r.content_fingerprint, r.report = meta["content_fingerprint"], meta["report"]
        return r
