"""Spelling correction rescues real queries: one edit per query, recall comes back."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.data import Catalog, Product
from moodboard.datasets import load_home_depot
from moodboard.evaluate.search import qrels_of
from moodboard.rank.metrics import recall_at_k
from moodboard.retrieve import BM25Source, LexicalConfig, SourceQuery, TrainingData
from moodboard.understand import QueryUnderstanding, QueryUnderstandingConfig


@pytest.fixture(scope="module")
def world(datasets_root):
    df = load_home_depot()
    prods = df.drop_duplicates("product_uid").sort_values("product_uid")
    ids = prods["product_uid"].astype(str).tolist()
    titles = prods["product_title"].astype(str).tolist()
    catalog = Catalog.from_titles(ids, titles)
    bm25 = BM25Source(LexicalConfig(fuzzy=False, field_boosts={"title": 1.0})).fit(
        TrainingData(catalog=catalog)
    )
    qu = QueryUnderstanding(QueryUnderstandingConfig(bare_price_ranges=False)).fit(
        [Product(id=i, title=t) for i, t in zip(ids, titles, strict=True)]
    )
    return df, catalog, bm25, qu


def _corrupt(word: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, len(word) - 1))
    op = rng.integers(3)
    if op == 0:
        return word[:i] + word[i + 1 :]  # deletion
    if op == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # transposition
    c = "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(26))]
    return word[:i] + c + word[i + 1 :]  # substitution


def test_correction_recovers_recall_of_200_corrupted_queries(world) -> None:
    df, catalog, bm25, qu = world
    vocab = qu.vocabulary
    rng = np.random.default_rng(42)
    qrels = qrels_of(df)
    candidates = sorted(
        q
        for q, j in qrels.items()
        if any(g >= 1.0 for g in j.values())
        and any(len(w) >= 5 and w.isalpha() and w in vocab for w in q.split())
    )
    chosen = [candidates[i] for i in rng.choice(len(candidates), 200, replace=False)]

    def recall(text: str, q: str) -> float:
        found = catalog.ids.external(bm25(SourceQuery(text=text), 10).items)
        return recall_at_k(found, {p for p, g in qrels[q].items() if g >= 1.0}, 10)

    clean, broken, fixed = [], [], []
    for q in chosen:
        words = q.split()
        pos = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w in vocab]
        j = pos[int(rng.integers(len(pos)))]
        words[j] = _corrupt(words[j], rng)
        typo = " ".join(words)
        clean.append(recall(q, q))
        broken.append(recall(typo, q))
        fixed.append(recall(qu(typo).text or typo, q))
    r0, rb, rf = np.mean(clean), np.mean(broken), np.mean(fixed)
    assert rb < 0.8 * r0, "the corruption should hurt recall"
    assert rf >= 0.8 * r0, (r0, rb, rf)
