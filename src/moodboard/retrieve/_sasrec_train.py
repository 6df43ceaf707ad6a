"""The Trainer of the ``sequence`` source's SASRec network (``_sasrec``).

It fits the network with full softmax cross-entropy over all items at every position (the
"SASRec+" recipe, much stronger than SASRec's binary loss with one sampled negative), AdamW,
early stopping on validation NDCG@10 and a time budget.

Inside this module item ``0`` is padding and the caller's item ``i`` is row ``i + 1``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from moodboard.retrieve._sasrec import SASRec, left_pad

_log = logging.getLogger(__name__)


def ndcg_hr(
    scores: np.ndarray, histories: Sequence[np.ndarray], targets: np.ndarray, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user NDCG@k and HR@k of ``targets`` (0-based) under ``scores``, history excluded.

    The target's rank is the number of non-history items scoring strictly higher.
    """
    s = scores.astype(np.float32, copy=True)
    for i, h in enumerate(histories):
        s[i, np.asarray(h, dtype=np.int64)] = -np.inf
    t = s[np.arange(len(s)), targets]
    rank = (s > t[:, None]).sum(1)
    hit = (rank < k) & np.isfinite(t)
    return np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0), hit.astype(np.float64)


@dataclass
class TrainSettings:
    """What the Trainer needs from the source's config."""

    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    max_minutes: float
    eval_every: int
    patience: int
    label_smoothing: float
    negatives: int
    negative_power: float
    restarts: int
    lr_decay: float
    contrastive: float
    temperature: float
    seed: int


class SequenceTrainer:
    """Fits a :class:`SASRec` with full softmax cross-entropy at every position.

    Parameters
    ----------
    settings
        Optimizer, loop and stopping settings.
    """

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings

    def fit(
        self,
        model: SASRec,
        sequences: Sequence[np.ndarray],
        validation: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    ) -> SASRec:
        """Train ``model`` in place on 1-based ``sequences``; returns it at its best epoch.

        ``validation`` is (1-based histories, 0-based targets); with it, NDCG@10 is measured
        every ``eval_every`` epochs and the best state is kept. After ``patience`` evaluations
        without improvement, training goes back to the best state with the learning rate
        multiplied by ``lr_decay`` (at most ``restarts`` times), then stops; it also stops
        after ``epochs`` or at the time budget.
        """
        st = self.settings
        rng = np.random.default_rng(st.seed)
        torch.manual_seed(st.seed)
        gen = torch.Generator().manual_seed(st.seed)
        inputs, targets = self._examples(sequences, model.max_len)
        counts = np.bincount(targets.ravel(), minlength=model.items.ids.num_embeddings)[1:]
        q = (counts.astype(np.float64) + 1.0) ** st.negative_power
        self._proposal = torch.from_numpy(q / q.sum()).float()
        self._log_q = torch.log(self._proposal * max(st.negatives, 1))
        lr, restarts = st.lr, 0
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=st.weight_decay)
        start, best, best_state, bad = time.monotonic(), -1.0, None, 0
        self.history: list[dict[str, float]] = []
        budget = st.max_minutes * 60.0
        for epoch in range(1, st.epochs + 1):
            model.train()
            total, count = 0.0, 0
            for rows in self._batches(inputs, rng):
                loss = self._step(model, opt, inputs[rows], targets[rows], gen)
                total, count = total + loss, count + 1
                if time.monotonic() - start > budget:
                    break
            out_of_time = time.monotonic() - start > budget
            row = {"epoch": epoch, "loss": total / max(count, 1), "minutes": _mins(start)}
            if validation is not None and (epoch % st.eval_every == 0 or out_of_time):
                row["ndcg@10"] = evaluate(model, *validation)
                if row["ndcg@10"] > best:
                    best, bad = row["ndcg@10"], 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad += 1
            self.history.append(row)
            _log.info("sequence epoch %s", row)
            if out_of_time or (validation is not None and bad >= st.patience):
                if out_of_time or restarts >= st.restarts or best_state is None:
                    break
                # a plateau: go back to the best state and go on with a smaller step
                restarts, bad, lr = restarts + 1, 0, lr * st.lr_decay
                model.load_state_dict(best_state)
                opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=st.weight_decay)
                _log.info("sequence: back to the best state, lr %.2g", lr)
        if best_state is not None:
            model.load_state_dict(best_state)
        self.best_ndcg = best
        model.eval()
        return model

    def _examples(
        self, sequences: Sequence[np.ndarray], max_len: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded inputs ``s[:-1]`` and next-item targets ``s[1:]`` (last ``max_len``)."""
        seqs = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) >= 2]
        return left_pad([s[:-1] for s in seqs], max_len), left_pad([s[1:] for s in seqs], max_len)

    def _batches(self, inputs: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of rows of similar length (less padding), in shuffled order."""
        bs = self.settings.batch_size
        order = rng.permutation(len(inputs))
        lengths = (inputs[order] > 0).sum(1)
        chunk = bs * 50
        batches = []
        for c in range(0, len(order), chunk):
            part = order[c : c + chunk][np.argsort(-lengths[c : c + chunk], kind="stable")]
            batches += [part[i : i + bs] for i in range(0, len(part), bs)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _step(
        self,
        model: SASRec,
        opt: torch.optim.Optimizer,
        x: np.ndarray,
        y: np.ndarray,
        gen: torch.Generator,
    ) -> float:
        w = int((x > 0).sum(1).max())
        x_t, y_t = torch.from_numpy(x[:, -w:]), torch.from_numpy(y[:, -w:])
        keep = y_t > 0
        target = y_t[keep]
        k = self.settings.negatives
        if k and k < model.items.ids.num_embeddings - 1:
            # sampled softmax against k negatives shared by the batch, drawn from ``proposal``;
            # the logQ correction makes it an estimate of the full softmax. Only the rows in
            # use are embedded (attribute means over the whole table are costly).
            neg = torch.multinomial(self._proposal, k, replacement=True, generator=gen) + 1
            used, where = torch.unique(torch.cat([x_t.ravel(), target, neg]), return_inverse=True)
            vec = model.items.rows(used)
            nx, nt = x_t.numel(), len(target)
            x_vec = vec[where[:nx]].view(*x_t.shape, -1)
            states = model(x_t, x_vec)
            h = states[keep]
            pos = (h * vec[where[nx : nx + nt]]).sum(-1, keepdim=True)
            neg_logits = h @ vec[where[nx + nt :]].T - self._log_q[neg - 1][None, :]
            neg_logits = neg_logits.masked_fill(neg[None, :] == target[:, None], float("-inf"))
            logits = torch.cat([pos - self._log_q[target - 1, None], neg_logits], 1)
            target = torch.zeros_like(target)
        else:
            table = model.items()
            x_vec = table[x_t]
            states = model(x_t, x_vec)
            h = states[keep]
            logits, target = h @ table[1:].T, target - 1
        loss = F.cross_entropy(logits, target, label_smoothing=self.settings.label_smoothing)
        if self.settings.contrastive > 0:
            # two dropout views of each user's state should find each other in the batch
            a = F.normalize(states[:, -1], dim=-1)
            b = F.normalize(model(x_t, x_vec)[:, -1], dim=-1)
            sim = a @ b.T / self.settings.temperature
            labels = torch.arange(len(sim))
            cl = F.cross_entropy(sim, labels) + F.cross_entropy(sim.T, labels)
            loss = loss + self.settings.contrastive * cl / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())


def _mins(start: float) -> float:
    return round((time.monotonic() - start) / 60.0, 3)


@torch.no_grad()
def evaluate(
    model: SASRec,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    batch: int = 512,
    k: int = 10,
) -> float:
    """Mean NDCG@k of 0-based ``targets`` given 1-based ``histories``, history excluded."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(histories), batch):
        hs = histories[i : i + batch]
        s = model.scores(model.last_state(torch.from_numpy(left_pad(hs, model.max_len))))
        nd, _ = ndcg_hr(s.numpy(), [np.asarray(h) - 1 for h in hs], targets[i : i + batch], k)
        out.append(nd)
    model.train(was)
    return float(np.concatenate(out).mean()) if out else 0.0
