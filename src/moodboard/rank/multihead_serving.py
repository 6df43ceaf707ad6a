"""``rank/multihead`` as a version serves it: the saved ranker and its serving-time inputs.

The build saves, beside the ranker (``MultiHeadRanker.save``), the actions its features read
(``actions.parquet``: the first copy of each click, save, add_to_cart, purchase and hide of
the accounts not flagged as bots, as of the build) and the feature definitions
(``signals.json``). ``ServingInputs`` turns a request's candidates into the ranker's inputs
with the same code as the training rows (``rank.rows.serving_rows`` over ``OnlineSignals``),
at the request's time, with the user's actions accepted since the build (``RankQuery.recent``)
added to the sequence.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.data import Candidates, Catalog, IdMap
from moodboard.data import columns as C
from moodboard.rank.inputs import HEADS, MultiHeadInputs
from moodboard.rank.multihead import MultiHeadRanker
from moodboard.rank.multihead_stage import MultiHeadModel
from moodboard.rank.personal import PERSONAL_FEATURES, PersonalFeatures
from moodboard.rank.registry import RankQuery
from moodboard.rank.rows import serving_rows, to_inputs
from moodboard.rank.signals import OnlineSignals, Signals, SignalsConfig

_log = logging.getLogger(__name__)

#: The files of a saved serving model, beside the ranker's own.
ACTIONS_FILE: Final = "actions.parquet"
SIGNALS_FILE: Final = "signals.json"
#: The columns of ``actions.parquet``.
ACTION_COLUMNS: Final = (C.EVENT_ID, C.TS, C.USER_ID, C.ITEM_ID, C.TYPE)


class ServingInputs:
    """``(query, candidates) -> MultiHeadInputs`` at serving time.

    Parameters
    ----------
    ids
        The catalog's ids.
    signals
        The feature definitions the ranker was trained with.
    online
        Those features over the actions the version holds.
    dense_names
        The ranker's dense features, in its order.
    personal
        The catalog's personal features, when ``dense_names`` holds them.
    """

    def __init__(
        self,
        ids: IdMap,
        signals: Signals,
        online: OnlineSignals,
        dense_names: Sequence[str],
        personal: PersonalFeatures | None = None,
    ) -> None:
        self.ids, self.signals, self.online = ids, signals, online
        self.dense_names, self.personal = tuple(dense_names), personal

    def __call__(self, query: RankQuery, cand: Candidates) -> MultiHeadInputs:
        """The inputs of ``cand`` for ``query``'s user at its time (now when it has none)."""
        ts = query.ts_us if query.ts_us is not None else time.time_ns() // 1000
        rows = serving_rows(cand, self.ids, query.user or "", ts, self.online, query.recent)
        return to_inputs(rows, self.ids, self.signals, self.dense_names, self.personal)


def save_serving(
    folder: Path, ranker: MultiHeadRanker, actions: pa.Table, signals: SignalsConfig
) -> None:
    """Save the ranker, the actions its features read and the feature definitions."""
    ranker.save(folder)
    mask = np.isin(actions.column(C.TYPE).to_numpy(zero_copy_only=False), HEADS)
    kept = actions.select(list(ACTION_COLUMNS)).filter(pa.array(mask))
    pq.write_table(kept, Path(folder) / ACTIONS_FILE)
    (Path(folder) / SIGNALS_FILE).write_text(json.dumps(signals.model_dump()))


def load_serving(
    folder: Path, catalog: Catalog, content: np.ndarray | None, depth: int | None = None
) -> MultiHeadModel:
    """The ``MultiHeadModel`` a version saved with ``save_serving``.

    Parameters
    ----------
    folder
        The model's folder.
    catalog
        The version's catalog (its ids, and its attributes when the ranker reads the
        personal features).
    content
        The version's item text vectors (the table the ranker was trained with).
    depth
        Candidates the stage scores (default: the ranker's config).

    Raises
    ------
    ConfigError
        If ``content`` is not the table the ranker was trained with.
    OSError, ValueError, KeyError
        If a file is missing or unreadable.
    """
    folder = Path(folder)
    ranker = MultiHeadRanker.load(folder, content)
    signals = Signals.default(SignalsConfig(**json.loads((folder / SIGNALS_FILE).read_text())))
    online = OnlineSignals(signals, pq.read_table(folder / ACTIONS_FILE))
    personal = None
    if set(PERSONAL_FEATURES) & set(ranker.dense_names):
        personal = PersonalFeatures.fit(catalog, content)
    inputs = ServingInputs(catalog.ids, signals, online, ranker.dense_names, personal)
    return MultiHeadModel(ranker, inputs, depth=depth or ranker.config.depth)
