"""The visual head's trainer: multi-task proxy losses, instance and co-engagement InfoNCE.

See ``understand.visual_head`` for the objective. Everything here runs in torch on
precomputed backbone features, so an epoch over ten thousand items takes about a second.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from moodboard.understand.image import DIM

if TYPE_CHECKING:
    from moodboard.understand.visual_head import VisualHeadConfig

_log = logging.getLogger(__name__)


def _numpy_head(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.maximum(x * np.float32(np.sqrt(DIM)) @ weights["w1"].T + weights["b1"], 0)
    z = h @ weights["w2"].T + weights["b2"]
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    z[~x.any(axis=1)] = 0.0
    return z


def _split(
    n: int, usable: np.ndarray, labels: np.ndarray | None, share: float, seed: int
) -> np.ndarray:
    """Which items are held out of training for validation (a seeded share of labelled ones)."""
    valid = np.zeros(n, dtype=bool)
    if labels is None or share <= 0:
        return valid
    cand = np.flatnonzero(usable & (labels >= 0))
    k = int(len(cand) * share)
    if k >= 5:
        valid[np.random.default_rng(seed + 1).choice(cand, k, replace=False)] = True
    return valid


def train(
    clean: np.ndarray,
    views: np.ndarray,
    labels: dict[str, np.ndarray],
    pairs: np.ndarray | None,
    cfg: VisualHeadConfig,
    start: dict[str, np.ndarray] | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The trained weights (``w1, b1, w2, b2`` as float32 numpy) and the training's metrics."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from moodboard.understand.visual_head import nearest_accuracy

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n = len(clean)
    usable = clean.any(axis=1)
    tasks = {}
    for name, y in labels.items():
        y = np.where(usable, np.asarray(y, dtype=np.int64), -1)
        if len(np.unique(y[y >= 0])) >= 2:
            tasks[name] = y
    first = next(iter(tasks.values()), None)
    valid = _split(n, usable, first, cfg.validation, cfg.seed)
    items = np.flatnonzero(usable & ~valid)
    has_view = views.any(axis=2)
    model = nn.Sequential(nn.Linear(DIM, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.dim))
    if start is not None:
        with torch.no_grad():
            for p, k in zip(model.parameters(), ("w1", "b1", "w2", "b2"), strict=True):
                p.copy_(torch.from_numpy(np.asarray(start[k], dtype=np.float32)))
    x_clean = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)) * np.sqrt(DIM)
    x_views = torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32)) * np.sqrt(DIM)
    proxies = nn.ParameterDict()
    with torch.no_grad():
        z0 = F.normalize(model(x_clean), dim=1)
        for name, y in tasks.items():
            classes = int(y.max()) + 1
            p = torch.randn(classes, cfg.dim) * 0.1
            for c in np.unique(y[y >= 0]):
                p[c] += z0[torch.from_numpy(np.flatnonzero(y == c))].mean(0)
            proxies[name] = nn.Parameter(F.normalize(p, dim=1))
    y_t = {k: torch.from_numpy(v) for k, v in tasks.items()}
    if pairs is not None and len(pairs):
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        ok = usable[pairs].all(1) & ~valid[pairs].any(1) & (pairs[:, 0] != pairs[:, 1])
        pairs = pairs[ok]
    n_pairs = 0 if pairs is None else len(pairs)
    opt = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": cfg.learning_rate},
            {"params": proxies.parameters(), "lr": cfg.learning_rate * 10, "weight_decay": 0.0},
        ],
        weight_decay=cfg.weight_decay,
    )
    t0, epochs, losses = time.perf_counter(), 0, []
    arange = np.arange(len(views[0]) if len(views) else 0)
    bs = cfg.batch_size
    for _ in range(cfg.epochs if len(items) >= 2 else 0):
        total, steps = 0.0, 0
        order = rng.permutation(items)
        for s in range(0, len(order) - 1, bs):
            idx = order[s : s + bs]
            pick = np.array(
                [rng.choice(arange[has_view[i]]) if has_view[i].any() else -1 for i in idx]
            )
            t_idx = torch.from_numpy(idx)
            xa = x_views[t_idx, torch.from_numpy(np.maximum(pick, 0))]
            xa[torch.from_numpy(pick < 0)] = x_clean[t_idx[torch.from_numpy(pick < 0)]]
            zc = F.normalize(model(x_clean[t_idx]), dim=1)
            za = F.normalize(model(xa), dim=1)
            loss = torch.zeros(())
            for name, y in y_t.items():
                yb = y[t_idx]
                m = yb >= 0
                if int(m.sum()) == 0:
                    continue
                p = F.normalize(proxies[name], dim=1)
                w = 0.5 if name == "category" else 0.5 * cfg.attribute_weight
                for z in (zc, za):
                    loss = loss + w * F.cross_entropy(cfg.scale * z[m] @ p.T, yb[m])
            if cfg.instance_weight > 0:
                logits = cfg.scale * za @ zc.T
                target = torch.arange(len(idx))
                inst = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
                loss = loss + cfg.instance_weight * 0.5 * inst
            if n_pairs and cfg.engagement_weight > 0:
                pb = torch.from_numpy(pairs[rng.integers(0, n_pairs, min(bs, n_pairs))])
                za_, zb_ = (F.normalize(model(x_clean[pb[:, j]]), dim=1) for j in (0, 1))
                logits = cfg.scale * za_ @ zb_.T
                same = pb[:, 1][None, :] == pb[:, 1][:, None]  # repeated targets are positives too
                logits = logits.masked_fill(same & ~torch.eye(len(pb), dtype=torch.bool), -1e4)
                eng = F.cross_entropy(logits, torch.arange(len(pb)))
                loss = loss + cfg.engagement_weight * eng
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        epochs += 1
        losses.append(total / max(steps, 1))
        if time.perf_counter() - t0 > cfg.max_seconds:
            break
    with torch.no_grad():
        params = [p.detach().numpy().astype(np.float32).copy() for p in model.parameters()]
    weights = dict(zip(("w1", "b1", "w2", "b2"), params, strict=True))
    metrics: dict[str, Any] = {
        "items": len(items),
        "views": int(has_view.sum()),
        "tasks": {k: int(v.max()) + 1 for k, v in tasks.items()},
        "pairs": n_pairs,
        "epochs": epochs,
        "loss_first": round(losses[0], 4) if losses else None,
        "loss": round(losses[-1], 4) if losses else None,
    }
    q = np.flatnonzero(valid & has_view[:, 0])
    if first is not None and len(q):
        metrics["validation_items"] = len(q)
        y = np.where(first >= 0, first, -2 - np.arange(n))  # unknown labels never match
        metrics["val_1nn_backbone"] = round(nearest_accuracy(views[q, 0], clean, q, y), 4)
        if start is not None:
            before = nearest_accuracy(
                _numpy_head(start, views[q, 0]), _numpy_head(start, clean), q, y
            )
            metrics["val_1nn_init"] = round(before, 4)
        after = nearest_accuracy(
            _numpy_head(weights, views[q, 0]), _numpy_head(weights, clean), q, y
        )
        metrics["val_1nn"] = round(after, 4)
    return weights, metrics
