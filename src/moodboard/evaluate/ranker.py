"""Per-head evaluation of rankers on logged impressions: AUC, log loss and calibration error.

Every model is trained on the earlier impressions and scored on the later ones (the caller
splits by time) and reports, per head (``click, save, add_to_cart, purchase, hide``), the AUC,
the log loss and the expected calibration error of its probabilities on the later rows. The
baselines of the same run:

- ``lightgbm``: one LightGBM classifier per head on the same rows: the dense features plus a
  summary of the history a tree can read (counts per action type, how recent the newest action
  is, whether and how the candidate itself was acted on);
- ``retrieval_order``: the order the candidates were retrieved in (the logged retrieval scores;
  none logged: a random order), made a probability per head by a logistic fit on the earlier
  rows. The position shown is no ranker's input: it carries the position bias of the clicks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from moodboard.build.layout import PRODUCTS_FILE, part_path, read_manifest
from moodboard.build.rank_rows import workspace_ranker_rows
from moodboard.config import Settings
from moodboard.data import Catalog
from moodboard.errors import InputError, NotFoundError
from moodboard.ingest import Workspace
from moodboard.rank import MultiHeadConfig, MultiHeadRanker, Signals
from moodboard.rank.inputs import ACTION_CODES, HEADS, PAD_ACTION, MultiHeadInputs
from moodboard.rank.metrics import head_metrics
from moodboard.rank.personal import PersonalFeatures
from moodboard.rank.rows import to_inputs

_log = logging.getLogger(__name__)

#: A ranker under evaluation: (earlier rows, later rows) -> probabilities [B_later, 5].
HeadsModel = Callable[[MultiHeadInputs, MultiHeadInputs], np.ndarray]
#: The dense column read as the retrieval order when present.
RETRIEVAL_SCORE = "retrieval_score"
#: The logged per-source retrieval scores (``rank.rows``).
SCORE_PREFIX = "score:"


def history_summary(x: MultiHeadInputs) -> tuple[np.ndarray, tuple[str, ...]]:
    """What a tree model can read of the history, ``[B, 2 * heads + 2]`` and the names.

    Per action type: how many of the last ``N`` actions it is, and whether the candidate was
    its item; the age of the newest action (log seconds, -1 without history); how many past
    actions were on the candidate.
    """
    acted = x.history_actions != PAD_ACTION
    on_candidate = acted & (x.history_items == x.item[:, None])
    cols, names = [], []
    for head, code in ACTION_CODES.items():
        is_code = x.history_actions == code
        cols += [is_code.sum(1), (is_code & on_candidate).any(1)]
        names += [f"history_{head}", f"candidate_{head}"]
    newest = np.where(acted[:, 0], np.log1p(np.maximum(x.history_age_s[:, 0], 0.0)), -1.0)
    cols += [newest, on_candidate.sum(1)]
    names += ["newest_action_log_age", "candidate_actions"]
    return np.column_stack(cols).astype(np.float32), tuple(names)


def tree_features(x: MultiHeadInputs) -> np.ndarray:
    """The dense features and the history summary, side by side."""
    summary, _ = history_summary(x)
    return np.hstack([x.dense, summary])


def _per_head(
    train: MultiHeadInputs, n: int, fit_predict: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``fit_predict(labels of one head) -> n probabilities`` for each head; a head without both
    classes in ``train`` predicts its base rate."""
    out = np.zeros((n, len(HEADS)))
    for h in range(len(HEADS)):
        y = train.labels[:, h]
        both = 0 < y.sum() < len(y)
        out[:, h] = fit_predict(y) if both else (y.mean() if len(y) else 0.0)
    return out


def lightgbm_heads(seed: int = 0, n_estimators: int = 200) -> HeadsModel:
    """One LightGBM classifier per head (a head without both classes predicts its base rate)."""
    import lightgbm as lgb

    def fit_predict(train: MultiHeadInputs, test: MultiHeadInputs) -> np.ndarray:
        xtr, xte = tree_features(train), tree_features(test)

        def head(y: np.ndarray) -> np.ndarray:
            model = lgb.LGBMClassifier(
                n_estimators=n_estimators,
                learning_rate=0.05,
                num_leaves=31,
                min_child_samples=50,
                subsample=0.8,
                subsample_freq=1,
                random_state=seed,
                n_jobs=1,
                verbose=-1,
            )
            return model.fit(xtr, y).predict_proba(xte)[:, 1]

        return _per_head(train, len(test), head)

    return fit_predict


def retrieval_order(train: MultiHeadInputs, test: MultiHeadInputs) -> np.ndarray:
    """Each head's probability from the retrieval order alone (a logistic fit on ``train``).

    The order is the sum of the logged retrieval scores (``score:<source>`` columns; RRF-like
    when the sources' scores are ranks). Without any logged score the shown order is no
    retrieval order (the simulator's randomized pages shuffle it; a position also carries the
    click model's position bias, which no ranker is allowed to read), so every row gets the
    same score: the baseline is a random order.
    """
    from sklearn.linear_model import LogisticRegression

    def score(x: MultiHeadInputs) -> np.ndarray:
        cols = [j for j, n in enumerate(x.dense_names) if n.startswith(SCORE_PREFIX)]
        if RETRIEVAL_SCORE in x.dense_names:
            return x.dense_column(RETRIEVAL_SCORE).astype(np.float64)[:, None]
        if cols:
            return x.dense[:, cols].astype(np.float64).sum(1, keepdims=True)
        return np.zeros((len(x), 1))

    def head(y: np.ndarray) -> np.ndarray:
        return LogisticRegression().fit(score(train), y).predict_proba(score(test))[:, 1]

    return _per_head(train, len(test), head)


def heads_report(labels: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """Per head: AUC, log loss and ECE (rounded to 4 places)."""
    return {
        head: {k: round(v, 4) for k, v in head_metrics(labels[:, h], probs[:, h]).items()}
        for h, head in enumerate(HEADS)
    }


def evaluate_rankers(
    train: MultiHeadInputs,
    test: MultiHeadInputs,
    model: HeadsModel,
    baselines: Mapping[str, HeadsModel] | None = None,
) -> dict[str, Any]:
    """``{"heads": {head: metrics}, "baselines": {name: {"heads": ...}}, "rows": ...}``.

    ``baselines`` defaults to ``lightgbm`` and ``retrieval_order``; the caller adds its own
    ablations (e.g. ``no_sequence``).
    """
    if baselines is None:
        baselines = {"lightgbm": lightgbm_heads(), "retrieval_order": retrieval_order}
    report: dict[str, Any] = {"heads": heads_report(test.labels, model(train, test))}
    report["baselines"] = {
        name: {"heads": heads_report(test.labels, fit_predict(train, test))}
        for name, fit_predict in baselines.items()
    }
    positives = {h: int(test.labels[:, i].sum()) for i, h in enumerate(HEADS)}
    report["rows"] = {"train": len(train), "test": len(test), "test_positives": positives}
    _log.info("ranker evaluation on %d later rows: %s", len(test), report["heads"])
    return report


def workspace_ranker_report(
    ws: Workspace,
    settings: Settings,
    test_fraction: float = 0.3,
    max_rows: int | None = None,
) -> dict[str, Any]:
    """The multi-head ranker against its baselines on a workspace's own logs, split by time.

    The rows are the build's (``build.rank_rows``: labelled impressions with point-in-time
    features, bots left out); the earlier ``1 - test_fraction`` train every model (the
    multi-head ranker calibrates on the newest part of those), the later rows score them. The
    item content vectors are the live version's ``dense/text`` vectors.

    Raises
    ------
    NotFoundError
        If the workspace has no live version.
    InputError
        If the logs hold no labelled impressions (the reason says why), or too few.
    """
    version = ws.current_artifact()
    if version is None:
        raise NotFoundError(f"No artifact is live in {ws.root}: run `moodboard build` first.")
    path = ws.version_path(version)
    manifest = read_manifest(path)
    catalog = Catalog.from_table(pq.read_table(path / PRODUCTS_FILE))
    dense = part_path(path, manifest, "dense/text")
    content = np.load(dense / "vectors.npy", allow_pickle=False) if dense else None
    signals = Signals.default(settings.rank.signals)
    found = workspace_ranker_rows(
        ws, labels=settings.rank.labels, signals=signals, bots=settings.bots
    )
    if found.reason is not None:
        raise InputError(f"No ranker rows in {ws.root}: {found.reason}.")
    rows = found.rows.sort_by("ts_us")
    if max_rows is not None and rows.num_rows > max_rows:
        rows = rows.slice(rows.num_rows - max_rows)  # the newest rows
    cfg = settings.rank.multihead
    personal = PersonalFeatures.fit(catalog, content) if cfg.personal else None
    x = to_inputs(rows, catalog.ids, signals, personal=personal)
    cut = round(len(x) * (1 - test_fraction))
    if cut < 100 or len(x) - cut < 100:
        raise InputError(f"{len(x)} labelled impressions are too few to split by time.")
    train, test = x.take(slice(0, cut)), x.take(slice(cut, None))

    def multihead(config: MultiHeadConfig) -> HeadsModel:
        def fit_predict(tr: MultiHeadInputs, te: MultiHeadInputs) -> np.ndarray:
            model = MultiHeadRanker(config).fit(tr, content, n_items=len(catalog))
            return model.predict_proba(te)

        return fit_predict

    baselines = {
        "lightgbm": lightgbm_heads(settings.seed),
        "no_sequence": multihead(cfg.model_copy(update={"sequence": False})),
        "retrieval_order": retrieval_order,
    }
    report = evaluate_rankers(train, test, multihead(cfg), baselines)
    report["artifact"] = version
    return report
