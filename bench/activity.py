"""How much real shoppers differ in how often they come: the Gamma shape k of
``simulate.activity_shape``, fitted to UCI Online Retail.

The customers who first bought in December 2010 (the data's first month), and per customer
the days of 2011 on which they bought again (zeros included: all were customers then); k is
the maximum-likelihood negative binomial shape (``moodboard.simulate.world.fit_activity_shape``).
For scale, Poisson counts (all customers alike) would have variance = mean.

Usage: ``python bench/activity.py``. Needs ``MOODBOARD_DATASETS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.simulate.world import fit_activity_shape

QUERY = """
with t as (
    select CustomerID as c, cast(InvoiceDate as date) as d from read_parquet(?)
    where CustomerID is not null and not starts_with(InvoiceNo, 'C')
), firsts as (select c, min(d) as first_day from t group by c)
select count(distinct d) filter (where d >= date '2011-01-01') as repeat_days
from firsts join t using (c) where first_day < date '2011-01-01' group by c
"""


def main() -> None:
    root = os.environ.get("MOODBOARD_DATASETS")
    if not root:
        raise SystemExit("set MOODBOARD_DATASETS to the shared datasets folder")
    path = Path(root) / "online-retail" / "online_retail.parquet"
    counts = duckdb.sql(QUERY, params=[str(path)]).fetchnumpy()["repeat_days"].astype(np.int64)
    k = fit_activity_shape(counts)
    top = np.sort(counts)[::-1]
    row = {
        "customers": len(counts),
        "mean_days": float(counts.mean()),
        "variance": float(counts.var()),
        "none": float((counts == 0).mean()),
        "top_10pct_share": float(top[: len(top) // 10].sum() / top.sum()),
        "k": k,
    }
    report("activity", [row], list(row))
    print(f"simulate.activity_shape = {k:.2f}")


if __name__ == "__main__":
    main()
