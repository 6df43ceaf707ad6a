"""The settings of search analytics (``[search_analytics]``): no Ibis here, so the config
loads without the pipelines."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SearchAnalyticsConfig(BaseModel):
    """What ``moodboard analyze search`` and the dashboard's Search page report.

    Parameters
    ----------
    window_days
        Days analysed, ending at the latest search in the log (or ``--until``).
    top_queries
        Rows of each query table (top, zero-result, low-engagement).
    min_volume
        Searches a query needs before it can be called low-engagement.
    low_ctr_ratio
        A query is low-engagement when its CTR is at most this share of the median CTR of
        the queries with ``min_volume`` searches.
    positions
        Positions of the click-through curve (1 .. positions).
    reformulation_s
        A search followed by another search of the same shopper within this many seconds
        counts as reformulated.
    cache_ttl_s
        How long the dashboard keeps a computed analysis (0: recompute on every view).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_days: int = Field(default=28, ge=1, le=3660)
    top_queries: int = Field(default=20, ge=1, le=1000)
    min_volume: int = Field(default=5, ge=1, le=1_000_000)
    low_ctr_ratio: float = Field(default=0.5, gt=0, le=1)
    positions: int = Field(default=20, ge=1, le=200)
    reformulation_s: float = Field(default=60.0, gt=0, le=3600)
    cache_ttl_s: float = Field(default=60.0, ge=0, le=86_400)
