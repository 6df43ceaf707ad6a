"""Search quality on graded relevance judgments (the Home Depot layout).

Indexes the union of the products of both files, learns only from ``train`` (fusion weights,
the LambdaMART ranker), and ranks every ``test`` query over ALL indexed products: unjudged
items count as gain 0, so this is a real search, not a rerank of the answer key. The sources
are fitted by the build's steps (``build.steps``), as `moodboard build` fits them. Gain is
``relevance - 1``; queries whose judged gains are all 0 are left out and counted.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from moodboard.build.steps import DenseStep, LexicalStep
from moodboard.data import Candidates, Catalog
from moodboard.errors import InputError
from moodboard.rank import (
    FEATURES,
    ItemTexts,
    LambdaMARTConfig,
    LambdaMARTRanker,
    QueryContext,
    SearchFeatures,
)
from moodboard.rank.metrics import mean_metrics
from moodboard.retrieve import (
    CandidateSource,
    FuseConfig,
    Fuser,
    LexicalConfig,
    SourceQuery,
    TrainingData,
)
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.finetune import ContrastiveTrainer, FinetuneConfig
from moodboard.understand.text import TextEncoder, TextEncoderConfig

_log = logging.getLogger(__name__)

COLUMNS = ("id", "product_uid", "product_title", "search_term", "relevance")
Progress = Callable[[str], None]


class SearchEvalConfig(BaseModel):
    """Parameters of the search evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=10, ge=1)
    candidates: int = Field(default=100, ge=10)
    fusion_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5)
    fusion_methods: tuple[str, ...] = ("rrf", "zscore")
    rrf_k: tuple[float, ...] = (10.0, 60.0)
    tune_queries: int = Field(default=2_000, ge=100, description="Train queries for fusion.")
    ltr: LambdaMARTConfig = LambdaMARTConfig(n_estimators=400)
    finetune: FinetuneConfig | None = FinetuneConfig(max_pairs=6_400)
    finetune_min_gain: float = Field(default=1.0, description="Pairs: judged gain >= this.")
    seed: int = 0


def read_judgments(path: Path) -> pd.DataFrame:
    """A judgment file in the Home Depot layout (UTF-8 or latin-1).

    Raises
    ------
    InputError
        If the file is missing or lacks a column.
    """
    if not Path(path).is_file():
        raise InputError(f"{path} does not exist: give a CSV with columns {', '.join(COLUMNS)}.")
    try:
        df = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError:
        df = pd.read_csv(path, encoding="latin-1")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks the column(s) {missing}; the layout is {COLUMNS}.")
    return df


def split_queries(
    df: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A query-level split: every judgment of a query lands on the same side."""
    queries = np.array(sorted(df["search_term"].astype(str).unique()))
    rng = np.random.default_rng(seed)
    test = set(rng.choice(queries, size=round(len(queries) * test_fraction), replace=False))
    is_test = df["search_term"].astype(str).isin(test)
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def qrels_of(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Query -> {product id: gain}, gain = relevance - 1 (the mean over duplicate rows)."""
    g = df.assign(gain=df["relevance"].astype(float) - 1.0, pid=df["product_uid"].astype(str))
    g = g.groupby(["search_term", "pid"], sort=False)["gain"].mean().reset_index()
    out: dict[str, dict[str, float]] = {}
    for q, pid, gain in g.itertuples(index=False):
        out.setdefault(str(q), {})[pid] = float(gain)
    return out


def judged_catalog_rewriter(*frames: pd.DataFrame) -> Callable[[str], str]:
    """Query understanding fitted on the judged products' titles: query -> corrected text.

    Bare number ranges ("10-32") stay model numbers, not prices, in a hardware catalog.
    """
    from moodboard.data import Product
    from moodboard.understand.query import QueryUnderstanding, QueryUnderstandingConfig

    prods = pd.concat(frames).drop_duplicates("product_uid")
    qu = QueryUnderstanding(QueryUnderstandingConfig(bare_price_ranges=False)).fit(
        [
            Product(id=str(u), title=str(t))
            for u, t in zip(prods["product_uid"], prods["product_title"], strict=True)
        ]
    )
    return lambda q: qu(q).text or q


@dataclass
class SearchReport:
    """Per-method metrics on the test queries."""

    methods: dict[str, dict[str, float]]
    queries: int
    left_out: int
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "methods": self.methods,
            "queries": self.queries,
            "left_out": self.left_out,
            "params": self.params,
        }


class SearchEvaluation:
    """Builds the search stack on the judged products and measures each method.

    Parameters
    ----------
    config
        Evaluation parameters (``finetune=None`` skips fine-tuning the text encoder).
    dense
        Whether to run the dense methods at all (they need the text encoder).
    rewrite
        Query text -> the text to search (query understanding: spelling, price phrases);
        None searches the raw query.
    work_dir
        Where the embedding cache and the fine-tuned model go; None: a temporary folder.
    """

    def __init__(
        self,
        config: SearchEvalConfig | None = None,
        dense: bool = True,
        rewrite: Callable[[str], str] | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.config = config or SearchEvalConfig()
        self.use_dense = dense
        self.rewrite = rewrite
        self.work_dir = work_dir

    def _encoder(self, model_path: Path | None) -> Callable[[list[str]], np.ndarray]:
        enc = TextEncoder(TextEncoderConfig(model_path=str(model_path) if model_path else None))
        cache = EmbeddingCache(self._work / "embeddings", enc.dim, enc.cache_name)
        return lambda texts: enc.encode(texts, cache=cache)

    def _index(self, train: pd.DataFrame, test: pd.DataFrame, progress: Progress) -> None:
        prods = pd.concat([train, test])[["product_uid", "product_title"]]
        prods = prods.drop_duplicates("product_uid").sort_values("product_uid")
        self.catalog = Catalog.from_titles(
            prods["product_uid"].astype(str).tolist(), prods["product_title"].astype(str).tolist()
        )
        progress(f"indexing {len(self.catalog):,} products with tantivy")
        lexical = LexicalStep(LexicalConfig(field_boosts={"title": 1.0}))
        self.bm25 = lexical.fit(TrainingData(catalog=self.catalog))
        self.dense: dict[str, CandidateSource] = {}
        self.encoders: dict[str, Callable[[list[str]], np.ndarray]] = {}
        titles = [str(t) for t in self.catalog.title]
        if self.use_dense:
            progress(f"embedding {len(titles):,} titles")
            self.encoders["dense/text"] = self._encoder(None)
            self.dense["dense/text"] = DenseStep().fit(self._texts_of("dense/text", titles))
        if self.use_dense and self.config.finetune is not None:
            pairs = [
                (q, titles[self.catalog.ids.index(p)])
                for q, j in qrels_of(train).items()
                for p, g in j.items()
                if g >= self.config.finetune_min_gain
            ]
            progress(f"fine-tuning the text encoder on {len(pairs):,} training pairs")
            path = ContrastiveTrainer(self.config.finetune).fit(pairs, self._work / "tuned")
            self.encoders["dense/tuned"] = self._encoder(path)
            progress(f"embedding {len(titles):,} titles with the tuned encoder")
            texts = self._texts_of("dense/tuned", titles)
            self.dense["dense/tuned"] = DenseStep().fit(texts, name="dense/tuned")
        self.texts = ItemTexts.from_catalog(self.catalog)

    def _texts_of(self, encoder: str, titles: list[str]) -> TrainingData:
        """The catalog with its titles embedded by one of the encoders."""
        vectors = self.encoders[encoder](titles)
        return TrainingData(catalog=self.catalog, item_features={"text": vectors})

    def _retrieve(self, queries: list[str], progress: Progress) -> dict[str, dict[str, Candidates]]:
        c = self.config.candidates
        texts = [self.rewrite(q) if self.rewrite else q for q in queries]
        self._texts = dict(zip(queries, texts, strict=True))
        out: dict[str, dict[str, Candidates]] = {}
        progress(f"retrieving for {len(queries):,} queries")
        for q, t in zip(queries, texts, strict=True):
            out[q] = {"lexical/bm25": self.bm25(SourceQuery(text=t), c)}
        self._qvec: dict[str, dict[str, np.ndarray]] = {}
        for name, dense in self.dense.items():
            qv = self.encoders[name](texts)
            self._qvec[name] = dict(zip(queries, qv, strict=True))
            for q, cand in zip(queries, dense.search_many(SourceQuery(), qv, c), strict=True):
                out[q][name] = cand
        return out

    def _ids(self, cand: Candidates) -> list[str]:
        return self.catalog.ids.external(cand.items[: self.config.k * 10])

    def _tune_fusion(
        self,
        runs: Mapping[str, Mapping[str, Candidates]],
        qrels: Mapping[str, Mapping[str, float]],
        dense: str,
    ) -> tuple[FuseConfig, float]:
        best: tuple[float, FuseConfig] = (-1.0, FuseConfig())
        rng = np.random.default_rng(self.config.seed)
        sample = sorted(qrels)
        if len(sample) > self.config.tune_queries:
            sample = sorted(rng.choice(sample, self.config.tune_queries, replace=False))
        qrels = {q: qrels[q] for q in sample}
        for method in self.config.fusion_methods:
            for rk in self.config.rrf_k if method == "rrf" else (0.0,):
                for w in self.config.fusion_weights:
                    cfg = FuseConfig(method=method, k=rk, weights={"lexical/bm25": 1.0, dense: w})
                    fuser = Fuser(cfg)
                    ranked = {q: self._ids(fuser(self._pick(runs[q], dense))) for q in qrels}
                    score = mean_metrics(ranked, qrels, self.config.k)[f"ndcg@{self.config.k}"]
                    if score > best[0]:
                        best = (score, cfg)
        return best[1], best[0]

    @staticmethod
    def _pick(run: Mapping[str, Candidates], dense: str) -> dict[str, Candidates]:
        return {n: c for n, c in run.items() if n in ("lexical/bm25", dense)}

    def _features(self, fused: Mapping[str, Candidates], dense: str) -> dict[str, np.ndarray]:
        src = self.dense.get(dense)
        feats = SearchFeatures(
            self.catalog, self.texts, src.item_vectors() if src else None, dense=dense
        )
        qvec = self._qvec.get(dense, {})
        return {
            q: feats(QueryContext(text=self._texts[q], vector=qvec.get(q)), c)
            for q, c in fused.items()
        }

    def run(
        self, train: pd.DataFrame, test: pd.DataFrame, progress: Progress | None = None
    ) -> SearchReport:
        """Index, learn on ``train``, measure on ``test``."""
        say = progress or (lambda m: _log.info(m))
        t0 = time.perf_counter()
        self._work = self.work_dir or Path(tempfile.mkdtemp(prefix="moodboard-eval-"))
        self._index(train, test, say)
        tr_q, te_q = qrels_of(train), qrels_of(test)
        runs = self._retrieve(sorted(set(tr_q) | set(te_q)), say)
        kept = {q: j for q, j in te_q.items() if max(j.values()) > 0}
        k = self.config.k
        methods: dict[str, dict[str, float]] = {}
        methods["bm25"] = mean_metrics(
            {q: self._ids(runs[q]["lexical/bm25"]) for q in kept}, kept, k
        )
        params: dict[str, Any] = {
            "products": len(self.catalog),
            "train_queries": len(tr_q),
            "candidates": self.config.candidates,
        }
        fuse_cfg = FuseConfig(weights={"lexical/bm25": 1.0})
        best_dense = "dense/tuned" if "dense/tuned" in self.dense else "dense/text"
        for name, method in (("dense/text", "dense"), ("dense/tuned", "dense_tuned")):
            if name in self.dense:
                methods[method] = mean_metrics({q: self._ids(runs[q][name]) for q in kept}, kept, k)
        if self.dense:
            say("tuning fusion weights on the training queries")
            fuse_cfg, train_ndcg = self._tune_fusion(runs, tr_q, best_dense)
            fuser = Fuser(fuse_cfg)
            methods["hybrid"] = mean_metrics(
                {q: self._ids(fuser(self._pick(runs[q], best_dense))) for q in kept}, kept, k
            )
            params["fusion"] = fuse_cfg.model_dump() | {"train_ndcg": round(train_ndcg, 4)}
        fuser = Fuser(fuse_cfg)
        fused = {q: fuser(self._pick(runs[q], best_dense)) for q in runs}
        say("computing ranking features")
        X = self._features(fused, best_dense)
        train_q = [q for q in tr_q if len(fused[q])]
        gains = [
            np.array([tr_q[q].get(i, 0.0) for i in self.catalog.ids.external(fused[q].items)])
            for q in train_q
        ]
        say(f"training LambdaMART on {len(train_q):,} queries")
        t1 = time.perf_counter()
        ranker = LambdaMARTRanker(self.config.ltr, FEATURES).fit(
            np.concatenate([X[q] for q in train_q]),
            np.concatenate(gains),
            [len(fused[q]) for q in train_q],
        )
        params["ltr_train_s"] = round(time.perf_counter() - t1, 1)
        methods["ltr"] = mean_metrics({q: self._ids(ranker(fused[q], X[q])) for q in kept}, kept, k)
        params["seconds"] = round(time.perf_counter() - t0, 1)
        params["importance"] = {
            n: round(v, 1) for n, v in sorted(ranker.importance().items(), key=lambda kv: -kv[1])
        }
        self.ranker = ranker
        return SearchReport(
            {m: {n: round(v, 4) for n, v in r.items()} for m, r in methods.items()},
            len(kept),
            len(te_q) - len(kept),
            params,
        )
