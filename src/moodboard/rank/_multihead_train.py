"""``MultiHeadTrainer``: the loop of ``rank/multihead``'s network.

Per-task binary cross-entropy on the logits with position (the training-only bias), weighted
per head (config), AdamW, shuffled mini-batches from a fixed seed; after each epoch the
validation rows are scored as at serving (position 1) and the best epoch by mean AUC over the
heads (or by validation loss) is kept; training stops after ``patience`` epochs without gain.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from moodboard.rank._multihead_net import Batch, MultiHeadNet
from moodboard.rank.inputs import HEADS, MultiHeadInputs

if TYPE_CHECKING:
    from moodboard.rank.multihead import MultiHeadConfig

_log = logging.getLogger(__name__)


@dataclass
class TrainReport:
    """What training did: per epoch the training loss and the validation loss and mean AUC."""

    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    valid_auc: list[float] = field(default_factory=list)
    best_epoch: int = 0

    def to_json(self) -> dict[str, object]:
        """Rounded, for the model's JSON and the manifest."""
        return {
            "epochs": len(self.train_loss),
            "best_epoch": self.best_epoch,
            "train_loss": [round(v, 5) for v in self.train_loss],
            "valid_loss": [round(v, 5) for v in self.valid_loss],
            "valid_auc": [round(v, 5) for v in self.valid_auc],
        }


def head_aucs(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ROC AUC per head with both classes among ``labels`` (others are left out)."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for j, h in enumerate(HEADS):
        y = labels[:, j]
        if 0 < y.sum() < len(y):
            out[h] = float(roc_auc_score(y, logits[:, j]))
    return out


def score(net: MultiHeadNet, x: MultiHeadInputs, max_history: int, batch: int) -> np.ndarray:
    """Serving logits ``(B, 5)`` of ``x`` (position fixed at 1), in batches."""
    if net.training:
        net.eval()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(x), batch):
            rows = None if len(x) <= batch else np.arange(lo, min(lo + batch, len(x)))
            out.append(net(Batch.of(x, max_history, rows)).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(HEADS)), dtype=np.float32)


class MultiHeadTrainer:
    """Trains a ``MultiHeadNet`` in place.

    Parameters
    ----------
    config
        Loss weights, optimizer, batch size, epochs, early stopping, seed and threads.
    """

    def __init__(self, config: MultiHeadConfig) -> None:
        self.config = config

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The weighted sum over heads of each head's mean binary cross-entropy."""
        w = torch.tensor([self.config.loss_weights.get(h, 1.0) for h in HEADS])
        per_head = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(0)
        return (per_head * w).sum()

    def fit(self, net: MultiHeadNet, train: MultiHeadInputs, valid: MultiHeadInputs) -> TrainReport:
        """Train ``net`` on ``train``, keeping its best epoch on ``valid``.

        Parameters
        ----------
        net
            The network (dense standardization already set).
        train, valid
            Training and validation rows.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(self.config.threads)  # a small model: more threads contend
        try:
            with torch.random.fork_rng(devices=[]):  # seeded id dropout, caller's RNG kept
                torch.manual_seed(self.config.seed)
                return self._fit(net, train, valid)
        finally:
            torch.set_num_threads(threads)

    def _fit(
        self, net: MultiHeadNet, train: MultiHeadInputs, valid: MultiHeadInputs
    ) -> TrainReport:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        report = TrainReport()
        best, best_state, since = -np.inf, copy.deepcopy(net.state_dict()), 0
        y_valid = np.asarray(valid.labels, dtype=np.float32)
        for epoch in range(cfg.epochs):
            net.train()
            total, n = 0.0, len(train)
            order = rng.permutation(n)
            for lo in range(0, n, cfg.batch_size):
                rows = order[lo : lo + cfg.batch_size]
                batch = Batch.of(train, cfg.max_history, rows)
                loss = self.loss(net(batch, use_position=True), batch.labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(rows)
            logits = score(net, valid, cfg.max_history, 4096)
            v_loss = float(self.loss(torch.as_tensor(logits), torch.as_tensor(y_valid)))
            aucs = head_aucs(logits, y_valid)
            v_auc = float(np.mean(list(aucs.values()))) if aucs else 0.5
            report.train_loss.append(total / max(n, 1))
            report.valid_loss.append(v_loss)
            report.valid_auc.append(v_auc)
            _log.debug(
                "multihead epoch %d: loss %.4f, valid loss %.4f, auc %.4f",
                epoch + 1,
                report.train_loss[-1],
                v_loss,
                v_auc,
            )
            gain = v_auc if cfg.early_stopping == "auc" else -v_loss
            if gain > best + 1e-4:
                best, best_state, since = gain, copy.deepcopy(net.state_dict()), 0
                report.best_epoch = epoch + 1
            else:
                since += 1
                if since >= cfg.patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        return report
