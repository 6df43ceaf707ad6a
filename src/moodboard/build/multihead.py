"""``rank/multihead``: the multi-head ranker, trained from the workspace's labelled impressions.

The rows are ``build.rank_rows.ranker_rows`` of the build's event log without the bots'
events (``BuildContext.events``): one row per shown item with its five head labels and its
point-in-time features. The newest ``max_rows`` rows (oldest first) train the ranker, whose
latest ``validation_fraction`` stop its training and calibrate its heads. The item content
vectors are the ``dense/text`` vectors of the version being built. The step saves the ranker
with the actions and definitions its serving-time features read (``rank.multihead_serving``).
Without impressions, or with fewer than ``min_rows`` labelled ones, the manifest entry says
why and the surfaces keep ``rank/noop``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from moodboard.build.context import BuildContext
from moodboard.build.layout import part_path
from moodboard.build.rank_rows import ranker_rows
from moodboard.build.steps import BuildStep
from moodboard.pipelines.labels import head_actions
from moodboard.rank import MULTIHEAD, MultiHeadConfig, MultiHeadRanker, Signals
from moodboard.rank.inputs import HEADS
from moodboard.rank.multihead_serving import ACTION_COLUMNS, save_serving
from moodboard.rank.personal import PersonalFeatures
from moodboard.rank.rows import to_inputs
from moodboard.rank.signals import TS_US

_log = logging.getLogger(__name__)

#: The key of the ranker's rows in ``BuildContext.shared``.
RANKER_ROWS = "rank/multihead:rows"


class MultiHeadStep(BuildStep):
    """``rank/multihead`` from the workspace's labelled impressions, if there are enough.

    Parameters
    ----------
    config
        The ranker's settings; default ``[rank.multihead]``.
    """

    name = MULTIHEAD  # type: ignore[assignment]

    def __init__(self, config: MultiHeadConfig | None = None) -> None:
        self.config = config

    def message(self, ctx: BuildContext) -> str:
        return "training the multi-head ranker on the labelled impressions"

    def _untrained(self, reason: str, rows: int = 0, **extra: Any) -> dict[str, dict[str, Any]]:
        return super()._untrained(reason, rows, component="rank/noop", **extra)

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        settings = ctx.settings.rank
        cfg = self.config or settings.multihead
        if not ctx.has_events:
            return self._untrained("the workspace has no events: the surfaces keep rank/noop")
        signals = Signals.default(settings.signals)
        events = ctx.events()  # without the bots' events
        found = ranker_rows(events, settings.labels, signals)
        ctx.shared[RANKER_ROWS] = found  # the value model (rank/ltv) reads them too
        if found.reason is not None:
            return self._untrained(found.reason)
        rows = found.rows.sort_by([(TS_US, "ascending")])
        if rows.num_rows < cfg.min_rows:
            return self._untrained(
                f"{rows.num_rows} labelled impressions, fewer than rank.multihead.min_rows "
                f"({cfg.min_rows}): the surfaces keep rank/noop until more are logged",
                rows.num_rows,
            )
        if rows.num_rows > cfg.max_rows:
            rows = rows.slice(rows.num_rows - cfg.max_rows)  # the newest
        dense = part_path(out, {"components": ctx.built}, "dense/text")
        content = np.load(dense / "vectors.npy", allow_pickle=False) if dense else None
        personal = None
        if cfg.personal and cfg.sequence:
            personal = PersonalFeatures.fit(ctx.catalog, content)
        x = to_inputs(rows, ctx.catalog.ids, signals, personal=personal)
        ranker = MultiHeadRanker(cfg).fit(x, content, n_items=len(ctx.catalog))
        actions = head_actions(events).select(*ACTION_COLUMNS).to_pyarrow()
        save_serving(out / self.folder, ranker, actions, settings.signals)
        until = pc.max(actions.column(ACTION_COLUMNS[1])).as_py() if actions.num_rows else None
        entry = {
            "path": self.folder,
            "component": self.name,
            "trained": True,
            "rows": rows.num_rows,
            "positives": {h: int(pc.sum(rows.column(h)).as_py() or 0) for h in HEADS},
            "actions": actions.num_rows,
            "actions_until": until.isoformat() if until is not None else None,
            "content": dense is not None,
            "valid_auc": ranker.report.get("valid_auc"),
            "config": cfg.model_dump(),
        }
        return {self.name: entry}
