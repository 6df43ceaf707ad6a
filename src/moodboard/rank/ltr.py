"""``ltr/lambdamart``: a LightGBM LambdaMART ranker over ``SearchFeatures``.

Saved as LightGBM's own text model format plus a JSON config: nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Candidates
from moodboard.errors import ConfigError, NotFittedError

_log = logging.getLogger(__name__)


class LambdaMARTConfig(BaseModel):
    """LightGBM lambdarank parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: 100 trees: the most that still helps on engagement labels (simulated search logs,
    #: tests/serve/test_search_ranker.py); ``evaluate search`` on Home Depot sets its own 400.
    n_estimators: int = Field(default=100, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    num_leaves: int = Field(default=31, ge=2)
    min_data_in_leaf: int = Field(default=50, ge=1)
    feature_fraction: float = Field(default=0.9, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    eval_at: int = Field(default=10, ge=1)
    label_levels: int = Field(default=7, ge=2, description="Gains are mapped to 0..levels-1.")
    seed: int = 0
    threads: int = Field(default=2, ge=1)
    #: Trained from engagement only when the logs hold at least this many labelled search
    #: queries (search requests with a clicked or better impression); else ``rank/noop``.
    min_queries: int = Field(default=50, ge=1)
    #: How many of the fused candidates the search ranker is trained on and re-ranks.
    depth: int = Field(default=100, ge=1)
    #: One LambdaMART group per query text (each item's best grade over the query's labelled
    #: requests: demo held-out gain +5.9% vs +4.8% per request, a quarter of the rows), or
    #: one per search request.
    group_by: Literal["request", "query"] = "query"


class LambdaMARTRanker:
    """Learning to rank with LambdaMART.

    Parameters
    ----------
    config
        Training parameters.
    feature_names
        The columns of the feature matrices it is fitted and called with.
    """

    name = "ltr/lambdamart"

    def __init__(
        self, config: LambdaMARTConfig | None = None, feature_names: Sequence[str] = ()
    ) -> None:
        self.config = config or LambdaMARTConfig()
        self.feature_names = tuple(feature_names)
        self._booster = None

    def fit(self, X: np.ndarray, gains: np.ndarray, groups: Sequence[int]) -> Self:
        """Train on graded gains (any non-negative floats, binned to integer labels).

        Parameters
        ----------
        X
            Features, one row per (query, candidate), queries contiguous.
        gains
            Graded relevance per row (e.g. judged relevance - 1, or engagement grade).
        groups
            Rows per query, in order.

        Raises
        ------
        ConfigError
            If the shapes disagree.
        """
        g = np.asarray(gains, dtype=np.float64)
        top = g.max() if len(g) and g.max() > 0 else 1.0
        scale = float((self.config.label_levels - 1) / top)
        self._train(X, np.rint(g * scale).astype(np.int32), groups, "gains")
        self.gain_scale = scale
        return self

    def fit_labels(
        self,
        X: np.ndarray,
        labels: np.ndarray,
        groups: Sequence[int],
        valid: tuple[np.ndarray, np.ndarray, Sequence[int]] | None = None,
        early_stopping: int = 50,
    ) -> Self:
        """Train on integer grades as they are (e.g. engagement labels 0..5), unscaled.

        Parameters
        ----------
        X
            Features, one row per (query, candidate), queries contiguous.
        labels
            Integer grades in ``0 .. label_levels - 1``; the gain of grade ``g`` is ``g``.
        groups
            Rows per query, in order.
        valid
            Held-out ``(X, labels, groups)``: training stops when their NDCG@``eval_at`` has
            not improved for ``early_stopping`` trees, and the best number of trees is kept
            (``best_iteration``).
        early_stopping
            Patience in trees (with ``valid``).

        Raises
        ------
        ConfigError
            If the shapes disagree or a label is outside ``0 .. label_levels - 1``.
        """
        y = np.asarray(labels)
        top = self.config.label_levels - 1
        if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() > top):
            raise ConfigError(
                f"The 'labels' of LambdaMARTRanker.fit_labels must be integers in 0..{top} "
                f"(label_levels - 1). Got {y.dtype} values {y.min()}..{y.max()} instead."
            )
        self._train(X, y.astype(np.int32), groups, "labels", valid, early_stopping)
        self.gain_scale = 1.0
        return self

    def _train(
        self,
        X: np.ndarray,
        labels: np.ndarray,
        groups: Sequence[int],
        what: str,
        valid: tuple[np.ndarray, np.ndarray, Sequence[int]] | None = None,
        early_stopping: int = 50,
    ) -> None:
        import lightgbm as lgb

        X = np.asarray(X, dtype=np.float32)
        for x, y, g in [(X, labels, groups), *([valid] if valid is not None else [])]:
            if len(x) != len(y) or sum(g) != len(x):
                raise ConfigError(
                    f"LambdaMARTRanker.fit needs len(X) == len({what}) == sum(groups). "
                    f"Got {len(x)}, {len(y)}, {sum(g)} instead."
                )
        c = self.config
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [c.eval_at],
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_data_in_leaf": c.min_data_in_leaf,
            "feature_fraction": c.feature_fraction,
            "bagging_fraction": c.bagging_fraction,
            "bagging_freq": 1,
            "seed": c.seed,
            "num_threads": c.threads,
            "verbose": -1,
            "deterministic": True,
            "label_gain": list(range(c.label_levels)),
        }
        names = list(self.feature_names) or None
        ds = lgb.Dataset(X, labels, group=list(groups), feature_name=names or "auto")
        sets, callbacks = [], []
        if valid is not None:
            vx, vy, vg = valid
            sets = [lgb.Dataset(np.asarray(vx, np.float32), vy, group=list(vg), reference=ds)]
            callbacks = [lgb.early_stopping(early_stopping, verbose=False)]
        self._booster = lgb.train(
            params, ds, num_boost_round=c.n_estimators, valid_sets=sets, callbacks=callbacks
        )
        self.best_iteration = int(self._booster.best_iteration or c.n_estimators)
        _log.info(
            "trained LambdaMART on %d rows, %d queries, %d trees",
            len(X),
            len(groups),
            self.best_iteration,
        )

    def _check(self) -> None:
        if self._booster is None:
            raise NotFittedError("LambdaMARTRanker isn't fitted, call fit first")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores of feature rows (higher is better)."""
        self._check()
        return self._booster.predict(np.asarray(X, dtype=np.float32), num_threads=1)

    def __call__(self, cand: Candidates, X: np.ndarray) -> Candidates:
        """The candidates with an ``ltr`` score column, sorted by it."""
        if len(cand) == 0:
            return cand
        return cand.with_score("ltr", self.predict(X)).sort_by("ltr")

    def importance(self) -> dict[str, float]:
        """Total gain per feature."""
        self._check()
        names = self._booster.feature_name()
        gains = self._booster.feature_importance("gain")
        return {n: float(v) for n, v in zip(names, gains, strict=True)}

    def save(self, folder: Path) -> None:
        """``model.txt`` (LightGBM text format) and ``ranker.json``."""
        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._booster.save_model(str(folder / "model.txt"))
        (folder / "ranker.json").write_text(
            json.dumps(
                {
                    "config": self.config.model_dump(),
                    "feature_names": list(self.feature_names),
                    "gain_scale": self.gain_scale,
                }
            )
        )

    @classmethod
    def load(cls, folder: Path) -> LambdaMARTRanker:
        """Load a saved ranker."""
        import lightgbm as lgb

        meta = json.loads((Path(folder) / "ranker.json").read_text())
        r = cls(LambdaMARTConfig(**meta["config"]), meta["feature_names"])
        r._booster = lgb.Booster(model_file=str(Path(folder) / "model.txt"))
        r.gain_scale = meta["gain_scale"]
        return r
