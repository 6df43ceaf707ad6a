"""``rank/ltv``: the value model, trained from the workspace's shown items and the days after.

The rows are the multi-head ranker's (``build.rank_rows.ranker_rows`` of the log without the
bots, shared by ``MultiHeadStep``): one per shown item with its point-in-time features. Each
row's label is its user's engagement on the ``rank.ltv.horizon_days`` days after the page's
day (``pipelines.ltv.future_value``); rows whose window is not wholly logged are left out, so a
log of fewer than ``horizon_days + 1`` days trains nothing and the manifest says why. The
newest ``max_rows`` rows (oldest first) train the LightGBM regressor (``rank.ltv``), whose
latest ``validation_fraction`` measure it (``valid_r2``, ``valid_spearman`` in the manifest).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.build.context import BuildContext
from moodboard.build.multihead import RANKER_ROWS
from moodboard.build.rank_rows import ranker_rows
from moodboard.build.steps import BuildStep
from moodboard.data import columns as C
from moodboard.pipelines.ltv import DAY, FUTURE_VALUE, future_value_table
from moodboard.rank import LTV, LtvConfig, LtvModel, Signals, to_inputs
from moodboard.rank.ltv import category_codes, ltv_features
from moodboard.rank.signals import TS_US

_log = logging.getLogger(__name__)
_DAY_US = 86_400_000_000


def labelled_rows(rows: pa.Table, labels: pa.Table) -> pa.Table:
    """``rows`` whose (user, UTC day) has a long-term label, with it as ``future_value``,
    oldest first (by ``ts_us``)."""
    days = pc.divide(rows.column(TS_US).cast(pa.int64()), _DAY_US)
    keys = pa.table(
        {
            C.USER_ID: rows.column(C.USER_ID),
            DAY: days,
            "_row": pa.array(np.arange(rows.num_rows, dtype=np.int64)),
        }
    )
    joined = keys.join(labels, [C.USER_ID, DAY], join_type="inner")
    order = joined.column("_row").to_numpy()
    out = rows.take(pa.array(order)).append_column(FUTURE_VALUE, joined.column(FUTURE_VALUE))
    return out.sort_by([(TS_US, "ascending")])


class LtvStep(BuildStep):
    """``rank/ltv`` from the workspace's shown items, if the logs are long enough.

    Parameters
    ----------
    config
        The model's settings; default ``[rank.ltv]``.
    """

    name = LTV  # type: ignore[assignment]

    def __init__(self, config: LtvConfig | None = None) -> None:
        self.config = config

    def message(self, ctx: BuildContext) -> str:
        return "training the value model on the days after each page"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        cfg = self.config or ctx.settings.rank.ltv
        if not cfg.enabled:
            return self._untrained("rank.ltv.enabled is false")
        if not ctx.has_events:
            return self._untrained("the workspace has no events")
        settings = ctx.settings.rank
        signals = Signals.default(settings.signals)
        events = ctx.events()
        found = ctx.shared.get(RANKER_ROWS) or ranker_rows(events, settings.labels, signals)
        if found.reason is not None:
            return self._untrained(found.reason)
        labels = future_value_table(events, cfg.horizon_days, cfg.weights)
        rows = labelled_rows(found.rows, labels)
        known = ctx.catalog.ids.indices(rows.column(C.ITEM_ID).to_pylist(), missing=-1) >= 0
        rows = rows.filter(pa.array(known))
        if rows.num_rows < cfg.min_rows:
            return self._untrained(
                f"{rows.num_rows} shown items have their {cfg.horizon_days} following days "
                f"logged, fewer than rank.ltv.min_rows ({cfg.min_rows}): the logs are too "
                f"short (they need more than {cfg.horizon_days} days)",
                rows.num_rows,
            )
        if rows.num_rows > cfg.max_rows:
            rows = rows.slice(rows.num_rows - cfg.max_rows)  # the newest
        x = to_inputs(rows, ctx.catalog.ids, signals)
        features = ltv_features(x, category_codes(ctx.catalog.category), signals.count_names)
        y = rows.column(FUTURE_VALUE).to_numpy()
        model = LtvModel(cfg, signals.count_names).fit(features, y)
        model.save(out / self.folder)
        return {
            self.name: {
                "path": self.folder,
                "component": self.name,
                "trained": True,
                "rows": rows.num_rows,
                "label": f"value of the user's actions on the {cfg.horizon_days} days after",
                **model.report,
                "config": cfg.model_dump(),
            }
        }
