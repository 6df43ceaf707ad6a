"""Batch jobs written once as Ibis expressions, run on DuckDB (default) or Spark."""

from moodboard.pipelines.engine import Engine, connect
from moodboard.pipelines.popularity import popularity, popularity_table

__all__ = ["Engine", "connect", "popularity", "popularity_table"]
