"""The visual head's trainer: multi-task proxy losses, instance and co-engagement InfoNCE.

See ``understand.visual_head`` for the objective. Everything here runs in torch on
precomputed backbone features, so an epoch over ten thousand items takes about a second; with
a backbone tail (``front``) on the feature maps entering it, about 40 s on 2 cores.
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
    front: Any = None,
    front_lr: float = 1e-4,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The trained weights (``w1, b1, w2, b2`` as float32 numpy) and the training's metrics.

    With ``front`` (a backbone tail, trained in place at ``front_lr``), ``clean`` and
    ``views`` are the feature maps entering it and the learning rates warm up then decay
    (one cycle), so the pretrained blocks are not knocked off by the first steps.
    """
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
    mlp = nn.Sequential(nn.Linear(DIM, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.dim))

    def model(x: torch.Tensor) -> torch.Tensor:
        return mlp((x if front is None else front(x)) * float(np.sqrt(DIM)))

    def embed_all(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat(
                [F.normalize(model(x[s : s + 1024]), dim=1) for s in range(0, len(x), 1024)]
            )

    if start is not None:
        with torch.no_grad():
            for p, k in zip(mlp.parameters(), ("w1", "b1", "w2", "b2"), strict=True):
                p.copy_(torch.from_numpy(np.asarray(start[k], dtype=np.float32)))
    x_clean = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32))
    x_views = torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32))
    proxies = nn.ParameterDict()
    z0 = embed_all(x_clean)
    with torch.no_grad():
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
    groups = [
        {"params": list(mlp.parameters()), "lr": cfg.learning_rate},
        {"params": list(proxies.parameters()), "lr": cfg.learning_rate * 10, "weight_decay": 0.0},
    ]
    if front is not None:
        groups += front.param_groups(front_lr)
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    t0, epochs, losses = time.perf_counter(), 0, []
    arange = np.arange(len(views[0]) if len(views) else 0)
    bs = cfg.batch_size
    steps = cfg.epochs * len(range(0, len(items) - 1, bs))
    schedule = None
    if front is not None and steps:
        peaks = [g["lr"] for g in groups]
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, peaks, total_steps=steps, pct_start=0.1)
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
            if schedule is not None:
                schedule.step()
            total, steps = total + float(loss.detach()), steps + 1
        epochs += 1
        losses.append(total / max(steps, 1))
        _log.debug(
            "visual head epoch %d: loss %.4f, %.0f s", epochs, losses[-1], time.perf_counter() - t0
        )
        if time.perf_counter() - t0 > cfg.max_seconds:
            break
    with torch.no_grad():
        params = [p.detach().numpy().astype(np.float32).copy() for p in mlp.parameters()]
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
        if front is not None:  # the tail changed: no frozen features to compare with
            vq, vc = embed_all(x_views[q, 0]).numpy(), embed_all(x_clean).numpy()
            vc[~usable] = 0.0
            metrics["val_1nn"] = round(nearest_accuracy(vq, vc, q, y), 4)
            return weights, metrics
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
