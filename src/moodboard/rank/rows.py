"""The multi-head ranker's rows: the impression's logged retrieval sources and scores as
columns, and the rows as ``MultiHeadInputs``.

A row is one shown item (``pipelines.labels.impression_heads``) with its point-in-time
features (``rank.signals``). The server logs each shown item's ``props`` as
``{"sources": [...], "scores": {name: value}}`` (``serve.pages.page_props``);
``retrieval_columns`` turns them into a ``sources`` list column and one ``score:<name>``
column per score name (null where the item had no such score). ``to_inputs`` makes the
numpy arrays the model reads: the history newest first as catalog indices, and the dense
features by name (counts, scores with a ``has:<name>`` indicator, sources as ``from:<name>``
flags and, given the catalog's ``PersonalFeatures``, the candidate against the row's history:
``rank.personal.PERSONAL_FEATURES``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.data import Candidates, IdMap
from moodboard.data import columns as C
from moodboard.data.records import INTERACTION_WEIGHTS
from moodboard.errors import ConfigError
from moodboard.rank.inputs import ACTION_CODES, HEADS, PAD_ACTION, PAD_ITEM, MultiHeadInputs
from moodboard.rank.personal import PERSONAL_FEATURES, PersonalFeatures
from moodboard.rank.signals import (
    HISTORY_AGES,
    HISTORY_ITEMS,
    HISTORY_TYPES,
    OnlineSignals,
    Signals,
)

_log = logging.getLogger(__name__)

#: The list column of the item's retrieval sources.
SOURCES: Final = "sources"
#: Prefixes of the score columns, of their presence flags and of the source flags.
SCORE: Final = "score:"
HAS: Final = "has:"
FROM: Final = "from:"
#: Scores the rank and blend stages write on a page, logged with it (``p_<head>``, ``utility``,
#: ``ltv``, the slot rules' ``deferred``, the explore columns). The rank stage is called before
#: they exist, so they are never features: a model trained on a ranked page's logs would read
#: its predecessor's outputs and be served without them.
STAGE_SCORES: Final = frozenset(
    {C.UTILITY, "ltv", "deferred", C.PROPENSITY, "explored", "propensity_cascade", "team"}
)
#: The weight of each history action code in the personal features (0: padding and hide).
ACTION_WEIGHTS: Final = np.array([0.0, *(INTERACTION_WEIGHTS.get(h, 0.0) for h in HEADS)])


def is_stage_score(name: str) -> bool:
    """Whether a logged score is a rank or blend stage's output (``STAGE_SCORES``, ``p_*``)."""
    return name in STAGE_SCORES or name.startswith("p_")


def retrieval_columns(rows: pa.Table) -> pa.Table:
    """``rows`` with its ``props`` parsed: ``sources`` and one ``score:<name>`` per name.

    A row whose ``props`` is null, not JSON, or lacks the keys gets no sources and null
    scores (counted in the log); other keys of ``props`` are ignored.

    Returns
    -------
    pa.Table
        ``rows`` without ``props``, plus ``sources`` (list of string) and the float64 score
        columns, in name order.
    """
    parsed, bad = [], 0
    for text in rows.column(C.PROPS).to_pylist() if C.PROPS in rows.column_names else []:
        try:
            p = json.loads(text) if text else {}
        except json.JSONDecodeError:
            p, bad = {}, bad + 1
        p = p if isinstance(p, dict) else {}
        srcs = p.get("sources") if isinstance(p.get("sources"), list) else []
        scores = p.get("scores") if isinstance(p.get("scores"), dict) else {}
        parsed.append(
            (
                [str(s) for s in srcs],
                {str(k): float(v) for k, v in scores.items() if isinstance(v, (int, float))},
            )
        )
    if bad:
        _log.warning("%d impressions have props that are not JSON: no retrieval columns", bad)
    if not parsed:
        parsed = [([], {})] * rows.num_rows
    out = rows.drop_columns([c for c in (C.PROPS,) if c in rows.column_names])
    return _with_retrieval(out, parsed)


def _with_retrieval(rows: pa.Table, parsed: list[tuple[list[str], dict[str, float]]]) -> pa.Table:
    """``rows`` plus ``sources`` and the ``score:<name>`` columns of per-row (sources, scores)."""
    out = rows.append_column(SOURCES, pa.array([s for s, _ in parsed], pa.list_(pa.string())))
    for name in sorted({n for _, sc in parsed for n in sc}):
        values = pa.array([sc.get(name) for _, sc in parsed], pa.float64())
        out = out.append_column(SCORE + name, values)
    return out


def candidate_props(cand: Candidates) -> list[dict[str, Any]]:
    """What the server logs in each shown candidate's impression ``props``: its source names
    and its scores rounded to 6 decimals (a NaN score, not given by that source, left out).

    ``serving_rows`` reads the same values, so the retrieval columns a model is trained on
    (``retrieval_columns`` of the logged props) are those it is served.
    """
    sources = cand.sources if len(cand.sources) else np.full(len(cand), "", dtype=object)
    scores = {n: np.asarray(v, dtype=np.float64) for n, v in cand.scores.items()}
    return [
        {
            "sources": [s for s in str(sources[j] or "").split("+") if s],
            "scores": {n: round(float(v[j]), 6) for n, v in scores.items() if not np.isnan(v[j])},
        }
        for j in range(len(cand))
    ]


def serving_rows(
    cand: Candidates,
    ids: IdMap,
    user_id: str,
    ts_us: int,
    online: OnlineSignals,
    recent: Sequence[tuple[int, str, str]] = (),
) -> pa.Table:
    """The rows of one request's candidates at serving time, for ``to_inputs``.

    The same columns as the training rows' features: the point-in-time features of
    ``online`` at ``ts_us`` and the candidates' retrieval sources and scores; ``position``
    is 1 (fixed at serving) and the labels 0.

    Parameters
    ----------
    cand
        The candidates the rank stage scores.
    ids
        The catalog's ids.
    user_id, ts_us
        The request's user and time (microseconds since the epoch).
    online
        The serving-time features over the events the server holds.
    recent
        The user's actions accepted since those events, ``(ts_us, item_id, type)`` oldest
        first (``OnlineSignals.evaluate``).

    Returns
    -------
    pa.Table
        One row per candidate, in candidate order.
    """
    n = len(cand)
    items = ids.external(cand.items)
    feats = online.evaluate([user_id] * n, items, [ts_us] * n, {user_id: recent})
    base = pa.table(
        {
            C.ITEM_ID: pa.array(items, pa.string()),
            C.USER_ID: pa.array([user_id] * n, pa.string()),
            C.POSITION: pa.array(np.ones(n, dtype=np.int32)),
            **{h: pa.array(np.zeros(n, dtype=np.int8)) for h in HEADS},
        }
    )
    for name in feats.column_names:
        base = base.append_column(name, feats.column(name))
    parsed = [(p["sources"], p["scores"]) for p in candidate_props(cand)]
    return _with_retrieval(base, parsed)


def dense_names(rows: pa.Table, signals: Signals) -> tuple[str, ...]:
    """The dense features of ``rows``: the counts, then per retrieval score name
    ``score:<name>`` and ``has:<name>`` (not the stages' own, ``is_stage_score``), then
    ``from:<source>`` per source seen."""
    scores = [c[len(SCORE) :] for c in rows.column_names if c.startswith(SCORE)]
    scores = [n for n in scores if not is_stage_score(n)]
    seen = sorted(pc.unique(_flat(rows, SOURCES)[1]).drop_null().to_pylist())
    return (
        *signals.count_names,
        *(f"{p}{n}" for n in scores for p in (SCORE, HAS)),
        *(FROM + s for s in seen),
    )


def to_inputs(
    rows: pa.Table,
    ids: IdMap,
    signals: Signals,
    names: Sequence[str] | None = None,
    personal: PersonalFeatures | None = None,
) -> MultiHeadInputs:
    """The rows as the model's arrays (``MultiHeadInputs``).

    Rows whose candidate is not in the catalog are left out (counted in the log); history
    actions on items not in the catalog are skipped (the rest keep their order). A dense name
    the rows lack (a score no row has) is 0.

    Parameters
    ----------
    rows
        The training rows (``build.rank_rows``): the head labels, ``position``, the counts and
        history of ``signals``, and ``retrieval_columns``.
    ids
        The catalog's ids.
    signals
        The definitions the rows were made with (``history.n`` is ``N``).
    names
        The dense features, in order; default ``dense_names(rows, signals)``, then
        ``PERSONAL_FEATURES`` when ``personal`` is given (at serving time, pass the names the
        model was trained with).
    personal
        The catalog's ``PersonalFeatures``: the ``PERSONAL_FEATURES`` of each candidate against
        the row's history (its actions weighted by ``ACTION_WEIGHTS``).

    Returns
    -------
    MultiHeadInputs
        One row per kept impression, in the rows' order.

    Raises
    ------
    ConfigError
        If ``names`` holds personal features and ``personal`` is None.
    """
    if names is None:
        names = (*dense_names(rows, signals), *(PERSONAL_FEATURES if personal else ()))
    names = tuple(names)
    wanted = [n for n in names if n in PERSONAL_FEATURES]
    if wanted and personal is None:
        raise ConfigError(
            f"The dense features {wanted} need the catalog's PersonalFeatures: pass `personal`."
        )
    item = ids.indices(rows.column(C.ITEM_ID).to_pylist(), missing=-1).astype(np.int64)
    keep = np.flatnonzero(item >= 0)
    if len(keep) < rows.num_rows:
        _log.info("%d rows name items not in the catalog: left out", rows.num_rows - len(keep))
        rows = rows.take(pa.array(keep))
    n = signals.history.n
    b = rows.num_rows
    h_items = np.full((b, n), PAD_ITEM, dtype=np.int64)
    h_actions = np.full((b, n), PAD_ACTION, dtype=np.int64)
    h_ages = np.zeros((b, n), dtype=np.float32)
    row, flat = _flat(rows, HISTORY_ITEMS)
    idx = _indices(ids, flat)
    known = idx >= 0
    row = row[known]
    slot = np.arange(len(row)) - np.searchsorted(row, row, side="left")  # rank within its row
    fits = slot < n
    at = (row[fits], slot[fits])
    h_items[at] = idx[known][fits]
    kinds = pc.index_in(_flat(rows, HISTORY_TYPES)[1], value_set=pa.array(list(ACTION_CODES)))
    codes = np.asarray(list(ACTION_CODES.values()), dtype=np.int64)
    h_actions[at] = codes[kinds.to_numpy(zero_copy_only=False)[known][fits]]
    h_ages[at] = _flat(rows, HISTORY_AGES)[1].to_numpy(zero_copy_only=False)[known][fits]
    dense = np.zeros((b, len(names)), dtype=np.float32)
    mine = personal.rows(item[keep], h_items, ACTION_WEIGHTS[h_actions]) if wanted else None
    for k, name in enumerate(names):
        if name in PERSONAL_FEATURES:
            dense[:, k] = mine[:, PERSONAL_FEATURES.index(name)]
        else:
            dense[:, k] = _dense_column(rows, name)
    labels = np.stack(
        [rows.column(h).to_numpy(zero_copy_only=False) for h in HEADS], axis=1
    ).astype(np.float32)
    return MultiHeadInputs(
        history_items=h_items,
        history_actions=h_actions,
        history_age_s=h_ages,
        item=item[keep],
        dense=dense,
        dense_names=names,
        position=rows.column(C.POSITION).fill_null(0).to_numpy().astype(np.int64),
        labels=labels,
    )


def _flat(rows: pa.Table, name: str) -> tuple[np.ndarray, pa.Array]:
    """A list column flattened: each value's row, and the values (a null list is empty)."""
    col = rows.column(name).combine_chunks()
    lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
    return np.repeat(np.arange(len(lengths)), lengths), pc.list_flatten(col)


def _indices(ids: IdMap, values: pa.Array) -> np.ndarray:
    """Catalog indices of item ids (-1 when not in the catalog), looked up once per distinct id."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    codes = pc.dictionary_encode(values)
    distinct = ids.indices(codes.dictionary.to_pylist(), missing=-1).astype(np.int64)
    return distinct[codes.indices.to_numpy(zero_copy_only=False)]


def _dense_column(rows: pa.Table, name: str) -> np.ndarray:
    """One dense feature of ``rows`` by name (0 where unknown or null)."""
    b = rows.num_rows
    if name.startswith(FROM):
        row, flat = _flat(rows, SOURCES)
        out = np.zeros(b, dtype=np.float32)
        hit = pc.equal(flat, name[len(FROM) :]).to_numpy(zero_copy_only=False)
        out[row[hit]] = 1.0
        return out
    if name.startswith(HAS):
        col = SCORE + name[len(HAS) :]
        if col not in rows.column_names:
            return np.zeros(b, dtype=np.float32)
        return rows.column(col).is_valid().to_numpy(zero_copy_only=False).astype(np.float32)
    if name not in rows.column_names:
        return np.zeros(b, dtype=np.float32)
    return rows.column(name).fill_null(0).to_numpy().astype(np.float32)
