"""Query -> category intent: TF-IDF word and character n-grams, a linear softmax model, and a
temperature fitted on held-out examples so that the probabilities are calibrated.

Training uses scikit-learn; serving needs only the vocabularies, the idf weights, the
coefficients and the temperature, stored as JSON and ``.npy`` (never pickled), and rebuilds the
features with ``CountVectorizer(vocabulary=...)``.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

_log = logging.getLogger(__name__)

_ANALYZERS = {"word": ("word", (1, 2)), "char": ("char_wb", (2, 5))}


def _vectorizer(
    kind: str, vocabulary: Sequence[str] | None = None, **kw: object
) -> CountVectorizer:
    analyzer, ngrams = _ANALYZERS[kind]
    if analyzer == "word":
        kw["token_pattern"] = r"\S+"
    return CountVectorizer(
        analyzer=analyzer,
        ngram_range=ngrams,
        lowercase=False,
        vocabulary=vocabulary,
        dtype=np.float32,
        **kw,  # type: ignore[arg-type]
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class IntentClassifier:
    """Text -> probabilities over category labels.

    Build one with ``IntentClassifier.train`` or ``IntentClassifier.load``; the constructor
    only stores the fitted parameters.

    Parameters
    ----------
    labels
        The category of each row of ``coef``.
    vocabularies
        ``{"word": [...], "char": [...]}``: the n-grams of each feature block, in column order.
    idf
        ``{"word": array, "char": array}``: the idf weight of each n-gram.
    coef, intercept
        The linear model, ``(n_labels, n_features)`` and ``(n_labels,)``.
    temperature
        Logits are divided by it before the softmax.
    """

    def __init__(
        self,
        labels: Sequence[str],
        vocabularies: dict[str, list[str]],
        idf: dict[str, np.ndarray],
        coef: np.ndarray,
        intercept: np.ndarray,
        temperature: float = 1.0,
    ) -> None:
        self.labels = list(labels)
        self.vocabularies = vocabularies
        self.idf = idf
        self.coef = coef
        self.intercept = intercept
        self.temperature = temperature
        self._vectorizers = {k: _vectorizer(k, v) for k, v in vocabularies.items()}
        self._index = {k: {g: j for j, g in enumerate(v)} for k, v in vocabularies.items()}
        self._analyzers = {k: v.build_analyzer() for k, v in self._vectorizers.items()}
        offsets = np.cumsum([0] + [len(v) for v in vocabularies.values()])
        self._offset = dict(zip(vocabularies, offsets[:-1].tolist(), strict=True))

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        weights: Sequence[float] | None = None,
        c: float = 10.0,
        min_df: int = 2,
        max_features: int = 50_000,
        calibration_share: float = 0.15,
        seed: int = 0,
    ) -> IntentClassifier:
        """Fit the classifier on normalized texts and their category labels.

        Parameters
        ----------
        texts, labels
            Training examples (normalized text, category path).
        weights
            Optional weight per example.
        c
            Inverse regularization strength of the logistic regression.
        min_df, max_features
            Pruning of each n-gram vocabulary.
        calibration_share
            Share of the examples held out to fit the temperature (0 keeps 1.0); the final model
            is then refitted on every example.
        seed
            Seed of the held-out split and of the solver.

        Returns
        -------
        IntentClassifier
            The fitted classifier.

        Raises
        ------
        ValueError
            If there are fewer than two distinct labels or ``texts`` and ``labels`` differ in
            length.
        """
        if len(texts) != len(labels):
            raise ValueError(
                "The 'labels' parameter of IntentClassifier.train must have one label per text. "
                f"Got {len(labels)} labels for {len(texts)} texts instead."
            )
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError(
                "The 'labels' parameter of IntentClassifier.train must hold at least 2 distinct "
                f"categories. Got {len(classes)} instead."
            )
        w = np.ones(len(texts)) if weights is None else np.asarray(weights, dtype=np.float64)
        y = np.searchsorted(classes, labels)
        vocabularies: dict[str, list[str]] = {}
        idf: dict[str, np.ndarray] = {}
        for kind in _ANALYZERS:
            vec = _vectorizer(kind, min_df=min(min_df, len(texts)), max_features=max_features)
            counts = vec.fit_transform(texts)
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            vocab = vec.get_feature_names_out().tolist()
            vocabularies[kind] = vocab
            idf[kind] = (np.log((1 + len(texts)) / (1 + df)) + 1).astype(np.float32)
        model = cls(classes, vocabularies, idf, np.zeros((0, 0)), np.zeros(0))
        x = model.features(texts)
        temperature = 1.0
        rng = np.random.default_rng(seed)
        held = rng.random(len(texts)) < calibration_share
        for label in range(len(classes)):  # every label keeps a training example
            rows = np.flatnonzero(y == label)
            if held[rows].all():
                held[rows[0]] = False
        if calibration_share > 0 and held.any():
            lr = cls._fit_lr(x[~held], y[~held], w[~held], c, seed)
            logits = lr.decision_function(x[held])
            if logits.ndim == 1:  # two labels: the binary model's logit d is softmax([0, d])
                logits = np.column_stack([np.zeros_like(logits), logits])
            temperature = cls._fit_temperature(logits, y[held])
        lr = cls._fit_lr(x, y, w, c, seed)
        coef, intercept = lr.coef_, lr.intercept_
        if len(coef) == 1:  # two labels (a small catalog): one row per label, as with more
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros_like(intercept), intercept])
        model.coef = coef.astype(np.float32)
        model.intercept = intercept.astype(np.float32)
        model.temperature = temperature
        _log.info(
            "intent: %d labels, %d features, temperature %.3f",
            len(classes),
            x.shape[1],
            temperature,
        )
        return model

    @staticmethod
    def _fit_lr(
        x: sp.csr_matrix, y: np.ndarray, w: np.ndarray, c: float, seed: int
    ) -> LogisticRegression:
        lr = LogisticRegression(C=c, solver="saga", max_iter=100, tol=1e-2, random_state=seed)
        with warnings.catch_warnings():  # saga stops at max_iter on hard data; that's fine here
            warnings.simplefilter("ignore", ConvergenceWarning)
            return lr.fit(x, y, sample_weight=w)

    @staticmethod
    def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
        def nll(t: float) -> float:
            p = _softmax(logits / t)[np.arange(len(y)), y]
            return float(-np.log(np.clip(p, 1e-12, None)).mean())

        return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The TF-IDF features of normalized texts: word block then character block."""
        blocks = []
        for kind, vec in self._vectorizers.items():
            counts = vec.transform(texts)
            blocks.append(normalize(counts.multiply(self.idf[kind]).tocsr()))
        return sp.hstack(blocks, format="csr")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, ``(len(texts), len(labels))``."""
        logits = self.features(texts) @ self.coef.T + self.intercept
        return _softmax(np.asarray(logits) / self.temperature)

    def _proba_one(self, text: str) -> np.ndarray:
        """``predict_proba([text])[0]`` without sparse matrices: the serving path of one query."""
        logits = self.intercept.astype(np.float64).copy()
        for kind, analyze in self._analyzers.items():
            index = self._index[kind]
            cols = np.array([j for g in analyze(text) if (j := index.get(g)) is not None], int)
            if not len(cols):
                continue
            cols, counts = np.unique(cols, return_counts=True)
            w = counts * self.idf[kind][cols]
            w = w / np.linalg.norm(w)
            logits += self.coef[:, self._offset[kind] + cols] @ w
        return _softmax(logits[None, :] / self.temperature)[0]

    def proba(self, text: str) -> np.ndarray:
        """The probability of each of ``labels`` for one text (uniform for a blank one)."""
        if not text.strip():
            return np.full(len(self.labels), 1.0 / len(self.labels))
        return self._proba_one(text)

    def top(self, text: str, k: int = 3, min_probability: float = 0.0) -> list[tuple[str, float]]:
        """The ``k`` most probable categories of one text with their probabilities."""
        if not text.strip():
            return []
        p = self._proba_one(text)
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.labels[i], float(p[i])) for i in order if p[i] >= min_probability]

    def save(self, folder: Path) -> None:
        """Write ``intent.json`` and ``intent_*.npy`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "labels": self.labels,
            "vocabularies": self.vocabularies,
            "temperature": self.temperature,
        }
        (folder / "intent.json").write_text(json.dumps(meta), encoding="utf-8")
        arrays = {"coef": self.coef, "intercept": self.intercept}
        arrays |= {f"idf_{k}": v for k, v in self.idf.items()}
        for name, arr in arrays.items():
            np.save(folder / f"intent_{name}.npy", arr, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> IntentClassifier:
        """The classifier ``save`` wrote into ``folder``.

        Raises
        ------
        FileNotFoundError
            If a file is missing.
        """
        meta = json.loads((folder / "intent.json").read_text(encoding="utf-8"))

        def arr(name: str) -> np.ndarray:
            return np.load(folder / f"intent_{name}.npy", allow_pickle=False)

        return cls(
            meta["labels"],
            meta["vocabularies"],
            {k: arr(f"idf_{k}") for k in meta["vocabularies"]},
            arr("coef"),
            arr("intercept"),
            float(meta["temperature"]),
        )
