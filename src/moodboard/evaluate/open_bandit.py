"""Click prediction on real logs: the Open Bandit Dataset's random-policy pages (ZOZOTOWN).

The three random-policy campaigns (``all``, ``men``, ``women``; 10,000 impressions each, 130
clicks in all) are pooled into one table with one row per shown item: the campaign, the item
(per campaign: the campaigns' items are different products) and its four features, the
shopper's four features, the shopper's affinity to the shown item and to all items, and the
slot (1..3). Each model is cross-validated in ``folds`` stratified folds; its out-of-fold
click probabilities over all rows give one pooled AUC, log loss and calibration error, and a
bootstrap over rows gives the AUC's interval. With so few clicks the intervals are wide: the
table says what each model reaches, not an ordering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from moodboard.datasets import load_open_bandit
from moodboard.rank import MultiHeadConfig, MultiHeadRanker
from moodboard.rank.inputs import HEADS, PAD_ACTION, PAD_ITEM, MultiHeadInputs
from moodboard.rank.metrics import head_metrics

_log = logging.getLogger(__name__)

CAMPAIGNS = ("all", "men", "women")
CATEGORICAL = (
    "campaign",
    "item",
    *(f"item_feature_{i}" for i in (1, 2, 3)),
    *(f"user_feature_{i}" for i in range(4)),
)
NUMERIC = ("item_feature_0", "affinity", "affinity_total", "position")
#: A click model: (training rows, their clicks, rows to score) -> click probabilities.
ClickModel = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], np.ndarray]


class BanditEvalConfig(BaseModel):
    """Parameters of the Open Bandit click evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folds: int = Field(default=5, ge=2)
    bootstrap: int = Field(default=1_000, ge=100, description="Resamples of the AUC interval.")
    seed: int = 0


def bandit_table(root: Path | str | None = None) -> pd.DataFrame:
    """The random-policy impressions of the three campaigns as one feature table (+ ``click``).

    Raises
    ------
    DatasetNotFoundError
        If the dataset is missing.
    """
    frames = []
    for campaign in CAMPAIGNS:
        d = load_open_bandit("random", campaign, root)
        log, ctx = d.log, d.item_context.set_index("item_id")
        shown = log["item_id"].to_numpy()
        aff = log[[f"user-item_affinity_{i}" for i in range(d.n_actions)]].to_numpy(float)
        frame = pd.DataFrame(
            {
                "campaign": campaign,
                "item": [f"{campaign}:{i}" for i in shown],
                **{
                    f"item_feature_{j}": ctx[f"item_feature_{j}"].to_numpy()[shown]
                    for j in range(4)
                },
                **{f"user_feature_{j}": log[f"user_feature_{j}"].to_numpy() for j in range(4)},
                "affinity": aff[np.arange(len(log)), shown],
                "affinity_total": aff.sum(axis=1),
                "position": log["position"].to_numpy(float),
                "click": log["click"].to_numpy(int),
            }
        )
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    for c in CATEGORICAL:
        table[c] = table[c].astype(str).astype("category")
    table["item_feature_0"] = table["item_feature_0"].astype(float)
    return table


def logistic_regression(seed: int = 0) -> ClickModel:
    """Logistic regression on one-hot categories and standardized numbers (scikit-learn)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def fit_predict(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
        cols = ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
                ("num", StandardScaler(), list(NUMERIC)),
            ]
        )
        model = make_pipeline(cols, LogisticRegression(C=0.1, max_iter=2_000, random_state=seed))
        return model.fit(train, y).predict_proba(test)[:, 1]

    return fit_predict


def lightgbm_classifier(seed: int = 0) -> ClickModel:
    """LightGBM on the same columns (categories native), small and regularized for ~100 clicks."""
    import lightgbm as lgb

    def fit_predict(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
        model = lgb.LGBMClassifier(
            n_estimators=150,
            learning_rate=0.03,
            num_leaves=4,
            min_child_samples=200,
            reg_lambda=10.0,
            cat_smooth=50.0,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
        cols = [*CATEGORICAL, *NUMERIC]
        return model.fit(train[cols], y).predict_proba(test[cols])[:, 1]

    return fit_predict


def bandit_inputs(rows: pd.DataFrame, y: np.ndarray | None = None) -> MultiHeadInputs:
    """The rows as the multi-head ranker's inputs: the item as its id, the other categories
    one-hot and the numbers as dense features, the slot as the training-only position, the
    clicks as the click head's labels (the other heads are never positive here). The logs hold
    no user ids, so there is no action sequence."""
    cats = [c for c in CATEGORICAL if c != "item"]
    onehot = pd.get_dummies(rows[cats], prefix_sep="=", dtype=np.float32)
    numeric = rows[[c for c in NUMERIC if c != "position"]].to_numpy(np.float32)
    b = len(rows)
    labels = np.zeros((b, len(HEADS)), dtype=np.float32)
    labels[:, 0] = 0 if y is None else y
    return MultiHeadInputs(
        history_items=np.full((b, 1), PAD_ITEM, dtype=np.int64),
        history_actions=np.full((b, 1), PAD_ACTION, dtype=np.int64),
        history_age_s=np.zeros((b, 1), dtype=np.float32),
        item=rows["item"].cat.codes.to_numpy(np.int64),
        dense=np.hstack([onehot.to_numpy(np.float32), numeric]),
        dense_names=(*onehot.columns, *(c for c in NUMERIC if c != "position")),
        position=rows["position"].to_numpy(np.int64),
        labels=labels,
    )


def multihead_click(seed: int = 0, config: MultiHeadConfig | None = None) -> ClickModel:
    """The multi-head ranker's calibrated click head (no sequence: the logs name no users),
    trained on the click loss alone; its held-out slice for early stopping and calibration is a
    seeded random share of the training fold."""
    cfg = config or MultiHeadConfig(
        sequence=False,
        max_history=1,
        dim=16,
        experts=2,
        expert_dim=16,
        tower_dim=8,
        id_dropout=0.2,
        weight_decay=1e-3,
        lr=3e-3,
        epochs=15,
        patience=4,
        loss_weights={"click": 1.0, "save": 0.0, "add_to_cart": 0.0, "purchase": 0.0, "hide": 0.0},
        seed=seed,
    )

    def fit_predict(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
        order = np.random.default_rng(seed).permutation(len(train))
        x = bandit_inputs(train, y).take(order)
        n_items = len(train["item"].cat.categories)
        model = MultiHeadRanker(cfg).fit(x, None, n_items=n_items)
        return model.predict_proba(bandit_inputs(test))[:, HEADS.index("click")]

    return fit_predict


@dataclass
class BanditReport:
    """Pooled out-of-fold metrics per model, with the AUC's bootstrap interval."""

    models: dict[str, dict[str, Any]]
    rows: int
    clicks: int
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``models``, ``rows``, ``clicks``, ``params``."""
        return asdict(self)


def _auc_interval(y: np.ndarray, p: np.ndarray, n: int, seed: int) -> list[float]:
    """The 2.5 and 97.5 percentiles of the AUC over ``n`` bootstrap resamples of the rows."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            aucs.append(roc_auc_score(y[idx], p[idx]))
    return [round(float(x), 4) for x in np.percentile(aucs, [2.5, 97.5])]


def evaluate_click_models(
    table: pd.DataFrame,
    models: dict[str, ClickModel],
    config: BanditEvalConfig | None = None,
) -> BanditReport:
    """Cross-validate each click model on the same folds; pooled out-of-fold metrics.

    Raises
    ------
    ValueError
        If the table has fewer clicks than folds.
    """
    from sklearn.model_selection import StratifiedKFold

    cfg = config or BanditEvalConfig()
    y = table["click"].to_numpy(int)
    if y.sum() < cfg.folds:
        raise ValueError(f"{cfg.folds}-fold cross-validation needs >= {cfg.folds} clicks.")
    folds = list(StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(table, y))
    out: dict[str, dict[str, Any]] = {}
    for name, fit_predict in models.items():
        oof = np.zeros(len(table))
        for train, test in folds:
            oof[test] = fit_predict(table.iloc[train], y[train], table.iloc[test])
        m = head_metrics(y, oof)
        ci = _auc_interval(y, oof, cfg.bootstrap, cfg.seed)
        out[name] = {k: round(v, 4) for k, v in m.items()} | {"auc_ci": ci}
        _log.info("open bandit %s: AUC %.4f %s", name, m["auc"], ci)
    return BanditReport(out, len(table), int(y.sum()), cfg.model_dump())
