"""``rank/ltv``: the value model, a user's engagement over the days after a page.

The label of a shown item is the value of its user's actions on the ``horizon_days`` days after
the page's day (``pipelines.ltv``: a click counts 1, a purchase 3 by default; the page's own
day is the short-term heads' business and is left out). It is a direct multi-day label rather
than a fitted-Q / TD target: the simulated logs span days, not months, so the horizon fits in
the log, the label needs no bootstrapping from a model of the next state, and its error is
measured directly on later days.

The features are those of the multi-head ranker's rows, the same definitions at training and
at serving (``MultiHeadInputs``): the user's count of each action type and the candidate's
count of positive actions (its dense ``count_names``), and from the user's action history (the
newest actions first) its length, the age of its newest action (how recently the user was
active), the number of categories it spans, whether the candidate is in it, and the share of it
in the candidate's category (more of the same, or something new). A LightGBM regressor
(L2) learns the label; it is saved as LightGBM's text model and a JSON file, nothing pickled.

At serving, the ``rank/multihead`` stage writes its prediction as the ``ltv`` score column of
the candidates, which ``Utility`` weighs like any other (``{"ltv": w}``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError, NotFittedError
from moodboard.rank.inputs import PAD_ITEM, MultiHeadInputs

_log = logging.getLogger(__name__)

#: The registry name of the value model, and the score column it writes.
LTV: Final = "rank/ltv"
LTV_COLUMN: Final = "ltv"
#: The history features, after the count features.
HISTORY_FEATURES: Final = (
    "history_length",
    "history_newest_age_days",
    "history_categories",
    "candidate_in_history",
    "history_share_of_category",
)
_MODEL, _META = "model.txt", "ltv.json"


class LtvConfig(BaseModel):
    """``[rank.ltv]``: the value model's label and its LightGBM regressor.

    Attributes
    ----------
    enabled
        Whether ``moodboard build`` trains it (when the logs are long enough).
    horizon_days
        The label counts the user's actions on this many days after the page's day.
    weights
        Action type -> its value in the label.
    min_rows
        Fewer labelled rows (shown items whose window is wholly logged) than this: not trained.
    max_rows
        At most this many rows, the newest, train it.
    validation_fraction
        The latest share of the rows measures it (R^2 and Spearman in the manifest).
    n_estimators, learning_rate, num_leaves, min_data_in_leaf
        LightGBM's.
    seed, threads
        LightGBM's seed and threads.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    horizon_days: int = Field(default=7, ge=1, le=90)
    weights: dict[str, float] = Field(default_factory=lambda: {"click": 1.0, "purchase": 3.0})
    min_rows: int = Field(default=2_000, ge=1)
    max_rows: int = Field(default=200_000, ge=1)
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    n_estimators: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    num_leaves: int = Field(default=31, ge=2)
    min_data_in_leaf: int = Field(default=100, ge=1)
    seed: int = 0
    threads: int = Field(default=1, ge=1)


def ltv_features(
    x: MultiHeadInputs, category: np.ndarray, count_names: Sequence[str]
) -> np.ndarray:
    """The value model's features of ``x`` (module docstring), ``float32 [B, F]``.

    Parameters
    ----------
    x
        The ranker's inputs of the shown items (training) or the candidates (serving).
    category
        Each catalog item's category code (-1: none).
    count_names
        The dense count features read from ``x`` by name (0 where ``x`` lacks one).
    """
    b = len(x.item)
    have = {n: j for j, n in enumerate(x.dense_names)}
    counts = np.zeros((b, len(count_names)), dtype=np.float32)
    for k, name in enumerate(count_names):
        if name in have:
            counts[:, k] = x.dense[:, have[name]]
    hist = x.history_items
    real = hist != PAD_ITEM
    length = real.sum(axis=1)
    newest = np.where(real[:, 0], x.history_age_s[:, 0] / 86_400.0, -1.0)
    hcat = np.where(real, category[np.where(real, hist, 0)], -2)
    ccat = category[x.item][:, None]
    same = ((hcat == ccat) & real & (ccat >= 0)).sum(axis=1)
    share = np.where(length > 0, same / np.maximum(length, 1), 0.0)
    spans = np.array([len(set(r[r >= 0].tolist())) for r in hcat], dtype=np.float32)
    inside = ((hist == x.item[:, None]) & real).any(axis=1)
    extra = np.stack([length, newest, spans, inside, share], axis=1).astype(np.float32)
    return np.concatenate([counts, extra.reshape(b, len(HISTORY_FEATURES))], axis=1)


class LtvModel:
    """The value model: a LightGBM regressor of the long-term label on ``ltv_features``.

    Parameters
    ----------
    config
        The label and the regressor's settings; ``LtvConfig()`` when None.
    count_names
        The count features of the ranker's rows it reads.
    """

    name = LTV

    def __init__(self, config: LtvConfig | None = None, count_names: Sequence[str] = ()) -> None:
        self.config = config or LtvConfig()
        self.count_names = tuple(count_names)
        self.report: dict[str, float] = {}
        self._booster = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns of its feature matrices."""
        return (*self.count_names, *HISTORY_FEATURES)

    def fit(self, features: np.ndarray, labels: np.ndarray) -> Self:
        """Train on rows in time order; the latest ``validation_fraction`` measure it
        (``report``: ``valid_r2``, ``valid_spearman``, ``valid_rows``), then it is refitted on
        all rows with as many trees.

        Raises
        ------
        ConfigError
            If the shapes disagree with ``feature_names`` or there are fewer than 10 rows.
        """
        import lightgbm as lgb
        from scipy import stats

        x = np.asarray(features, dtype=np.float32)
        y = np.asarray(labels, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names) or len(y) != len(x) or len(y) < 10:
            raise ConfigError(
                f"LtvModel.fit needs at least 10 rows of {len(self.feature_names)} features and "
                f"one label per row. Got {x.shape} and {y.shape} instead."
            )
        cut = int(len(y) * (1 - self.config.validation_fraction))
        valid = self._train(lgb, x[:cut], y[:cut]).predict(x[cut:])
        ss = float(np.sum((y[cut:] - y[cut:].mean()) ** 2))
        r2 = 1 - float(np.sum((y[cut:] - valid) ** 2)) / ss if ss > 0 else 0.0
        rho = stats.spearmanr(valid, y[cut:]).statistic if np.ptp(valid) > 0 else 0.0
        self.report = {
            "valid_r2": round(r2, 4),
            "valid_spearman": round(float(np.nan_to_num(rho)), 4),
            "valid_rows": len(y) - cut,
            "label_mean": round(float(y.mean()), 4),
        }
        self._booster = self._train(lgb, x, y)
        return self

    def _train(self, lgb, x: np.ndarray, y: np.ndarray):
        c = self.config
        params = {
            "objective": "regression",
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_data_in_leaf": c.min_data_in_leaf,
            "seed": c.seed,
            "num_threads": c.threads,
            "deterministic": True,
            "verbosity": -1,
        }
        data = lgb.Dataset(x, y, feature_name=list(self.feature_names), free_raw_data=False)
        return lgb.train(params, data, num_boost_round=c.n_estimators)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The predicted long-term value of each row (float64).

        Raises
        ------
        NotFittedError
            Before ``fit`` or ``load``.
        """
        if self._booster is None:
            raise NotFittedError("LtvModel isn't fitted, call fit first")
        if not len(features):
            return np.zeros(0)
        return np.asarray(self._booster.predict(np.asarray(features, dtype=np.float32)))

    def save(self, folder: Path) -> None:
        """``model.txt`` (LightGBM's text format) and ``ltv.json`` (config, features, report).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        if self._booster is None:
            raise NotFittedError("LtvModel isn't fitted, call fit first")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._booster.save_model(str(folder / _MODEL))
        meta = {
            "config": self.config.model_dump(),
            "count_names": list(self.count_names),
            "report": self.report,
        }
        (folder / _META).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> LtvModel:
        """A saved model.

        Raises
        ------
        OSError, ValueError, KeyError
            If a file is missing or unreadable.
        """
        import lightgbm as lgb

        meta = json.loads((Path(folder) / _META).read_text())
        model = cls(LtvConfig(**meta["config"]), meta["count_names"])
        model.report = meta["report"]
        model._booster = lgb.Booster(model_file=str(Path(folder) / _MODEL))
        return model


class LtvScorer:
    """``MultiHeadInputs -> ltv``: the value model over a catalog's categories, as the rank
    stage calls it.

    Parameters
    ----------
    model
        The fitted value model.
    category
        Each catalog item's category code (-1: none).
    """

    def __init__(self, model: LtvModel, category: np.ndarray) -> None:
        self.model = model
        self.category = np.asarray(category, dtype=np.int64)

    def __call__(self, x: MultiHeadInputs) -> np.ndarray:
        """The predicted long-term value of each row of ``x``."""
        return self.model.predict(ltv_features(x, self.category, self.model.count_names))


def category_codes(categories: Sequence[object]) -> np.ndarray:
    """Integer codes of the items' categories (-1 for none or empty)."""
    keys = np.array([str(v) if v not in (None, "") else "" for v in categories], dtype=object)
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    _, codes = np.unique(keys, return_inverse=True)
    return np.where(keys == "", -1, codes).astype(np.int64)
