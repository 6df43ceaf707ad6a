"""Where pipelines run: one Ibis expression, executed on DuckDB (default) or Spark."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Literal

import ibis

Engine = Literal["duckdb", "spark"]


def connect(engine: Engine = "duckdb", **options: Any) -> ibis.BaseBackend:
    """An Ibis backend.

    Parameters
    ----------
    engine
        ``"duckdb"`` (embedded, in memory) or ``"spark"`` (PySpark; local[2] unless
        ``master=`` is given).

    Raises
    ------
    ImportError
        If Spark is asked for and pyspark is not installed (names the install command).
    ValueError
        If the engine is unknown.
    """
    if engine == "duckdb":
        con = ibis.duckdb.connect(**options)
        con.raw_sql("SET TimeZone = 'UTC'")
        return con
    if engine == "spark":
        try:
            from pyspark.sql import SparkSession
        except ImportError as e:  # pragma: no cover - the extra is installed by make
            raise ImportError("Spark needs the extra: pip install 'moodboard[spark]'") from e
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        spark = (
            SparkSession.builder.master(options.get("master", "local[2]"))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.warehouse.dir", tempfile.mkdtemp())
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel(options.get("log_level", "ERROR"))  # Spark's WARNs are noise
        return ibis.pyspark.connect(spark)
    raise ValueError(
        f"The 'engine' parameter of connect must be one of 'duckdb', 'spark'. "
        f"Got {engine!r} instead."
    )
