"""Autocomplete quality on judgment files in the Home Depot layout.

The training file's rows are the search log (one logged search whose results got engagement
per row, ``relevance`` its strength; no timestamps, so no decay); the catalog is the union of
both files' product titles (never the test queries). For each distinct test query and each
prefix of 1..``max_prefix`` characters, a completion is a hit when its first words are the
query's first two words (``is_hit``); MRR@k and success@k per prefix length, for ``ours`` (the
``Autocomplete`` the build step fits, asked through ``complete`` as ``GET /autocomplete`` asks
it)
and ``mpc``, the most popular full training queries starting with the prefix.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from moodboard.build.autocomplete import AutocompleteStep
from moodboard.config.autocomplete import AutocompleteConfig
from moodboard.surfaces.autocomplete import is_hit, normalize_prefix
from moodboard.surfaces.autocomplete_candidates import CatalogText, QueryLog, words_of
from moodboard.surfaces.autocomplete_index import PrefixIndex

Complete = Callable[[str, int], list[str]]


def judgment_log(train: pd.DataFrame) -> QueryLog:
    """The training judgments as a search log: one engaged search per row, relevance its
    strength, weight 1 (no timestamps: no decay)."""
    queries = train["search_term"].astype(str).tolist()
    strength = train["relevance"].astype(float).to_numpy()
    return QueryLog(queries, np.ones(len(queries)), strength)


def judged_catalog(*frames: pd.DataFrame) -> CatalogText:
    """The union of the frames' products, by ``product_uid``: titles only."""
    both = pd.concat([f[["product_uid", "product_title"]] for f in frames])
    titles = both.drop_duplicates("product_uid")["product_title"].astype(str).tolist()
    return CatalogText(titles)


class MostPopularCompletion:
    """The MPC baseline: the most often logged full queries starting with the prefix."""

    def __init__(self, queries: Sequence[str]) -> None:
        counts = Counter(" ".join(words_of(q)) for q in queries)
        counts.pop("", None)
        self.texts = sorted(counts)
        self.index = PrefixIndex(self.texts, np.array([counts[t] for t in self.texts]), 2, 16)

    def __call__(self, prefix: str, k: int) -> list[str]:
        p = normalize_prefix(prefix)
        return [self.texts[i] for i in self.index.top(p, k)] if p else []


@dataclass
class AutocompleteReport:
    """MRR@k and success@k per method, overall and per prefix length."""

    k: int
    queries: int
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able values."""
        return {
            "k": self.k,
            "queries": self.queries,
            "methods": self.methods,
            "timings_s": self.timings_s,
            "info": self.info,
        }


def score_method(
    complete: Complete, queries: Sequence[str], k: int, max_prefix: int
) -> dict[str, Any]:
    """MRR@k and success@k of ``complete`` per prefix length 1..``max_prefix`` and their
    means over the lengths (a query shorter than a length does not count for it)."""
    by: dict[str, dict[str, float]] = {}
    for n in range(1, max_prefix + 1):
        rr, hits = [], []
        for q in queries:
            if len(q) < n:
                continue
            got = complete(q[:n], k)
            rank = next((r for r, c in enumerate(got, 1) if is_hit(c, q)), None)
            rr.append(1.0 / rank if rank else 0.0)
            hits.append(1.0 if rank else 0.0)
        by[str(n)] = {
            f"mrr@{k}": float(np.mean(rr)) if rr else 0.0,
            f"success@{k}": float(np.mean(hits)) if hits else 0.0,
            "queries": len(rr),
        }
    return {
        f"mrr@{k}": float(np.mean([b[f"mrr@{k}"] for b in by.values()])),
        f"success@{k}": float(np.mean([b[f"success@{k}"] for b in by.values()])),
        "by_prefix": by,
    }


def evaluate_autocomplete(
    train: pd.DataFrame,
    test: pd.DataFrame,
    config: AutocompleteConfig | None = None,
    k: int = 8,
    max_prefix: int = 5,
) -> AutocompleteReport:
    """Fit ``Autocomplete`` on the training log and score it and MPC on the test queries."""
    cfg = config or AutocompleteConfig()
    t0 = time.perf_counter()
    ac = AutocompleteStep(cfg).fit(judgment_log(train), judged_catalog(train, test))
    fit_s = time.perf_counter() - t0
    mpc = MostPopularCompletion(train["search_term"].astype(str).tolist())
    queries = sorted({q for q in test["search_term"].astype(str) if words_of(q)})
    report = AutocompleteReport(k, len(queries), info=dict(ac.info))

    def ours(prefix: str, n: int) -> list[str]:
        return [c.text for c in ac.complete(prefix, n)]

    for name, method in (("ours", ours), ("mpc", mpc)):
        t0 = time.perf_counter()
        report.methods[name] = score_method(method, queries, k, max_prefix)
        report.timings_s[name] = round(time.perf_counter() - t0, 2)
    report.timings_s["fit"] = round(fit_s, 2)
    return report
