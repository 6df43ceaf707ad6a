"""What an image shows: a category classifier over the ``visual/image`` vectors.

Fitted at build time (multinomial logistic regression, scikit-learn) on the catalog's image
vectors and categories, whatever those vectors are (the encoder's or a learned head's), with
``held_out`` of the items kept aside to measure its accuracy (recorded in the manifest).
Saved as ``.npy`` weights and a JSON file of classes and figures; at request time it is a
matrix product and a softmax. Visual search turns a confident prediction into a category
filter, a less confident one into a boost (``surfaces.visual``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import InputError, NotFittedError

_log = logging.getLogger(__name__)

_WEIGHTS, _BIAS, _META = "weights.npy", "bias.npy", "classifier.json"


class CategoryConfig(BaseModel):
    """Parameters of the image category classifier and of how visual search uses it.

    Attributes
    ----------
    enabled
        Fit it at build time (needs categories and image vectors).
    min_items
        Least images a category needs to be predicted.
    held_out
        Share of the images kept aside to measure the accuracy.
    c
        Inverse L2 regularization strength of the logistic regression.
    max_iter
        Most iterations of the solver.
    filter_confidence
        A prediction at least this confident keeps only items of its category (a filter).
    boost_confidence
        A prediction at least this confident (and under ``filter_confidence``) multiplies the
        retrieval score of items of its category by ``1 + boost``.
    boost
        The gain of a boosted category.
    seed
        Seed of the held-out draw.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    min_items: int = Field(default=10, ge=2)
    held_out: float = Field(default=0.2, ge=0, lt=1)
    c: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=200, ge=10)
    filter_confidence: float = Field(default=0.9, gt=0, le=1)
    boost_confidence: float = Field(default=0.5, ge=0, le=1)
    boost: float = Field(default=0.2, ge=0)
    seed: int = 0


class CategoryClassifier:
    """Predicts a category and its probability from ``visual/image`` vectors.

    Parameters
    ----------
    config
        Its parameters; default ``CategoryConfig()``.
    """

    def __init__(self, config: CategoryConfig | None = None) -> None:
        self.config = config if config is not None else CategoryConfig()
        self.classes: list[str] = []
        self.weights: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self.metrics: dict[str, Any] = {}

    def fit(self, vectors: np.ndarray, labels: Sequence[str | None]) -> Self:
        """Fit on the rows of ``vectors`` whose label is a category with ``min_items`` rows.

        Raises
        ------
        InputError
            If ``vectors`` and ``labels`` differ in length, or fewer than two categories have
            ``min_items`` rows.
        """
        from sklearn.linear_model import LogisticRegression

        cfg = self.config
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(labels):
            raise InputError(
                "The 'vectors' parameter of CategoryClassifier.fit must be a 2-d array with "
                f"one row per label ({len(labels)}). Got shape {x.shape} instead."
            )
        counts = Counter(lab for lab in labels if lab)
        classes = sorted(c for c, n in counts.items() if n >= cfg.min_items)
        if len(classes) < 2:
            raise InputError(
                f"CategoryClassifier needs two categories with at least {cfg.min_items} images "
                f"(min_items). Got {len(classes)} instead."
            )
        code = {c: i for i, c in enumerate(classes)}
        rows = np.array([i for i, lab in enumerate(labels) if lab in code], dtype=np.int64)
        rows = rows[np.abs(x[rows]).sum(axis=1) > 0]  # items without an image
        y = np.array([code[labels[i]] for i in rows])  # type: ignore[index]
        rng = np.random.default_rng(cfg.seed)
        test = rng.random(len(rows)) < cfg.held_out
        model = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter)
        model.fit(x[rows[~test]], y[~test])
        self.classes = [classes[i] for i in model.classes_]
        coef, bias = model.coef_, model.intercept_
        if len(coef) == 1:  # two classes: one logit, the second's against a first at zero
            coef, bias = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, bias]
        self.weights, self.bias = coef.T.astype(np.float32), bias.astype(np.float32)
        self.metrics = {
            "classes": len(self.classes),
            "train": int((~test).sum()),
            "held_out": int(test.sum()),
            "accuracy": None,
        }
        if test.any():  # and how often a prediction sure enough to filter is right
            p = model.predict_proba(x[rows[test]])
            right, sure = (
                p.argmax(axis=1) == np.searchsorted(model.classes_, y[test]),
                (p.max(axis=1) >= cfg.filter_confidence),
            )
            self.metrics |= {
                "accuracy": float(right.mean()),
                "filtered_share": float(sure.mean()),
                "filtered_accuracy": float(right[sure].mean()) if sure.any() else None,
            }
        return self

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None or self.bias is None:
            raise NotFittedError("CategoryClassifier isn't fitted, call fit first")
        return self.weights, self.bias

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities, ``(n, len(classes))``, in the order of ``classes``.

        Raises
        ------
        NotFittedError
            If it is not fitted.
        """
        weights, bias = self._fitted()
        logits = np.atleast_2d(np.asarray(vectors, dtype=np.float32)) @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> list[tuple[str, float]]:
        """The most likely category of each row and its probability."""
        p = self.predict_proba(vectors)
        best = p.argmax(axis=1)
        return [(self.classes[b], float(p[i, b])) for i, b in enumerate(best)]

    def save(self, folder: Path | str) -> None:
        """Write ``weights.npy``, ``bias.npy`` and ``classifier.json`` into ``folder``.

        Raises
        ------
        NotFittedError
            If it is not fitted.
        """
        weights, bias = self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / _WEIGHTS, weights)
        np.save(folder / _BIAS, bias)
        meta = {
            "classes": self.classes,
            "metrics": self.metrics,
            "config": self.config.model_dump(),
        }
        (folder / _META).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path | str, config: CategoryConfig | None = None) -> CategoryClassifier:
        """Read a saved classifier (``config``: the serving parameters; default as saved).

        Raises
        ------
        InputError
            If the files are missing or inconsistent.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / _META).read_text())
            weights = np.load(folder / _WEIGHTS, allow_pickle=False)
            bias = np.load(folder / _BIAS, allow_pickle=False)
            saved = CategoryConfig(**meta["config"])
            if weights.shape != (weights.shape[0], len(meta["classes"])) or bias.shape != (
                len(meta["classes"]),
            ):
                raise ValueError("the weights do not match the classes")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"The category classifier in {folder} is unreadable ({exc}): rebuild with "
                "`moodboard build`."
            ) from exc
        out = cls(config or saved)
        out.classes, out.weights, out.bias = list(meta["classes"]), weights, bias
        out.metrics = dict(meta.get("metrics", {}))
        return out
