"""Search quality on graded relevance judgments (the Home Depot layout), measured through the
search chain ``/search`` serves.

Indexes the union of the products of both files, learns only from ``train`` (fusion weights,
the LambdaMART ranker), and ranks every ``test`` query over ALL indexed products: unjudged
items count as gain 0, so this is a real search, not a rerank of the answer key. The sources
are fitted by the build's steps (``build.steps``), as `moodboard build` fits them, and every
method is a search chain declared with ``SearchConfig`` and assembled by ``build_surface``
(``prepare/search -> sources -> fuse -> rank -> blend/boost -> fallback``): a method's ranking
of a query is that chain's page order. The query understanding is the chain's ``understand``
resource. Gain is ``relevance - 1``; queries whose judged gains are all 0 are left out and
counted.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from moodboard.build.steps import DenseStep, LexicalStep
from moodboard.config import SearchConfig
from moodboard.data import Candidates, Catalog, Request
from moodboard.evaluate.judgments import (
    COLUMNS,
    Understand,
    judged_catalog_understanding,
    qrels_of,
    read_judgments,
    sample_queries,
    split_queries,
    verbatim,
)
from moodboard.rank import (
    FEATURES,
    LAMBDAMART,
    ChainCandidates,
    ItemTexts,
    LambdaMARTConfig,
    LambdaMARTRanker,
    SearchFeatures,
    SearchModel,
)
from moodboard.rank.metrics import mean_metrics
from moodboard.retrieve import CandidateSource, FuseConfig, Fuser, LexicalConfig, TrainingData
from moodboard.surfaces import Surface, build_surface
from moodboard.surfaces.search import search_text
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.finetune import ContrastiveTrainer, FinetuneConfig
from moodboard.understand.text import TextEncoder, TextEncoderConfig

_log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "SearchEvalConfig",
    "SearchEvaluation",
    "SearchReport",
    "chain_components",
    "judged_catalog_understanding",
    "qrels_of",
    "read_judgments",
    "sample_queries",
    "split_queries",
]

Progress = Callable[[str], None]
LEXICAL = "lexical/bm25"
#: The dense sources: the packaged encoder's, the fine-tuned one's; and their methods.
DENSE = {"dense/text": "dense", "dense/tuned": "dense_tuned"}


class SearchEvalConfig(BaseModel):
    """Parameters of the search evaluation.

    ``candidates`` is each source's depth (the chain's ``per_source``); ``ltr.depth`` how many
    fused candidates LambdaMART is trained on and re-ranks (200: all of two sources' 100).
    Each method's ranking is scored on its first ``10 * k`` items (NDCG at ``k``, MRR there).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=10, ge=1)
    candidates: int = Field(default=100, ge=10)
    fusion_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5)
    fusion_methods: tuple[str, ...] = ("rrf", "zscore")
    rrf_k: tuple[float, ...] = (10.0, 60.0)
    tune_queries: int = Field(default=2_000, ge=100, description="Train queries for fusion.")
    ltr: LambdaMARTConfig = LambdaMARTConfig(n_estimators=400, depth=200)
    finetune: FinetuneConfig | None = FinetuneConfig(max_pairs=6_400)
    finetune_min_gain: float = Field(default=1.0, description="Pairs: judged gain >= this.")
    seed: int = 0


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


def chain_components(chain: Surface) -> str:
    """A chain's components in order, e.g. ``prepare/search -> lexical/bm25 + dense/text ->
    fuse/rrf -> rank/noop -> blend/boost -> fallback/catalog``."""
    return " -> ".join(
        (
            chain.prepare.name,
            " + ".join(s for s in chain.sources if s in chain.env.sources),
            f"fuse/{chain.fuse.config.method}",
            chain.rank.name,
            chain.blend.name,
            chain.fallback_component,
        )
    )


class SearchEvaluation:
    """Builds the search chains on the judged products and measures each method.

    Parameters
    ----------
    config
        Evaluation parameters (``finetune=None`` skips fine-tuning the text encoder).
    dense
        Whether to run the dense methods at all (they need the text encoder).
    understand
        Query text -> the query understood, the chains' ``understand`` resource (spelling;
        ``judged_catalog_understanding``); None searches the query as typed. Price phrases are
        no filter on a catalog without prices.
    work_dir
        Where the embedding cache and the fine-tuned model go; None: a temporary folder.

    Attributes
    ----------
    chains
        After ``run``: method -> the ``Surface`` that ranked its test queries.
    rankings
        After ``run``: method -> test query -> the product ids it ranked, best first.
    qrels
        After ``run``: the scored test queries' judged gains.
    """

    def __init__(
        self,
        config: SearchEvalConfig | None = None,
        dense: bool = True,
        understand: Understand | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.config = config or SearchEvalConfig()
        self.use_dense = dense
        self.understand = understand
        self.work_dir = work_dir
        self.chains: dict[str, Surface] = {}
        self.rankings: dict[str, dict[str, list[str]]] = {}
        self.qrels: dict[str, dict[str, float]] = {}

    def _encoder(self, model_path: Path | None) -> Callable[[list[str]], np.ndarray]:
        enc = TextEncoder(TextEncoderConfig(model_path=str(model_path) if model_path else None))
        store = EmbeddingCache(self._work / "embeddings", enc.dim, enc.cache_name)
        return lambda texts: enc.encode(list(texts), cache=store)

    def _index(self, train: pd.DataFrame, test: pd.DataFrame, progress: Progress) -> None:
        prods = pd.concat([train, test])[["product_uid", "product_title"]]
        prods = prods.drop_duplicates("product_uid").sort_values("product_uid")
        self.catalog = Catalog.from_titles(
            prods["product_uid"].astype(str).tolist(), prods["product_title"].astype(str).tolist()
        )
        progress(f"indexing {len(self.catalog):,} products with tantivy")
        lexical = LexicalStep(LexicalConfig(field_boosts={"title": 1.0}))
        self.sources: dict[str, CandidateSource] = {
            LEXICAL: lexical.fit(TrainingData(catalog=self.catalog))
        }
        self.encoders: dict[str, Callable[[list[str]], np.ndarray]] = {}
        titles = [str(t) for t in self.catalog.title]
        if self.use_dense:
            progress(f"embedding {len(titles):,} titles")
            self.encoders["dense/text"] = self._encoder(None)
            self.sources["dense/text"] = DenseStep().fit(self._texts_of("dense/text", titles))
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
            self.sources["dense/tuned"] = DenseStep().fit(texts, name="dense/tuned")
        self.texts = ItemTexts.from_catalog(self.catalog)
        self._understood = cache(self.understand or verbatim)

    def _texts_of(self, encoder: str, titles: list[str]) -> TrainingData:
        """The catalog with its titles embedded by one of the encoders."""
        vectors = self.encoders[encoder](titles)
        return TrainingData(catalog=self.catalog, item_features={"text": vectors})

    def _warm(self, queries: list[str], progress: Progress) -> None:
        """Understand every query once and embed the searched texts in batches, so the chains'
        per-request ``encode`` calls are cache hits."""
        progress(f"understanding and embedding {len(queries):,} queries")
        parsed = [self._understood(q) for q in queries]
        texts = [search_text(p, q) for p, q in zip(parsed, queries, strict=True)]
        for encode in self.encoders.values():
            encode(texts)

    def _chain(
        self,
        sources: Iterable[str],
        fuse: FuseConfig | None = None,
        model: SearchModel | None = None,
    ) -> Surface:
        """The search chain of ``sources``, declared as ``/search`` declares its own."""
        sources = tuple(sources)
        cfg = SearchConfig(
            sources=sources,
            fuse=fuse or FuseConfig(),
            per_source=self.config.candidates,
            ranker=LAMBDAMART if model is not None else "rank/noop",
        )
        resources: dict[str, Any] = {"understand": self._understood}
        dense = [s for s in sources if s in self.encoders]
        if dense:
            resources["encode"] = self.encoders[dense[0]]
        if model is not None:
            resources[LAMBDAMART] = model
        loaded = {s: self.sources[s] for s in sources}
        return build_surface("search", cfg, self.catalog, loaded, self.config.seed, resources)

    def _ids(self, cand: Candidates) -> list[str]:
        return self.catalog.ids.external(cand.items[: self.config.k * 10])

    def _rank(self, chain: Surface, queries: Iterable[str]) -> dict[str, list[str]]:
        """Each query's ranking: the chain's page order for a page of ``10 * k`` items."""
        n = self.config.k * 10
        return {
            q: self._ids(chain.run(Request(surface="search", query=q, k=n)).candidates)
            for q in queries
        }

    def _source_runs(self, chain: Surface, queries: list[str]) -> dict[str, dict[str, Candidates]]:
        """Each query's per-source lists as ``chain`` retrieves them before fusing: its own
        prepare step's probes, asked of its sources at its depth."""
        out: dict[str, dict[str, Candidates]] = {}
        k = self.config.k
        for q in queries:
            prepared = chain.prepare.fn(Request(surface="search", query=q, k=k), k, chain.env)
            out[q] = {
                name: chain.env.sources[name](probe.query, prepared.depth)
                for name, probe in prepared.probes.items()
                if name in chain.sources
            }
        return out

    def _tune_fusion(
        self, chain: Surface, qrels: Mapping[str, Mapping[str, float]]
    ) -> tuple[FuseConfig, float]:
        """The fusion of ``chain``'s two sources best on (a sample of) the training queries."""
        best: tuple[float, FuseConfig] = (-1.0, FuseConfig())
        rng = np.random.default_rng(self.config.seed)
        sample = sorted(qrels)
        if len(sample) > self.config.tune_queries:
            sample = sorted(rng.choice(sample, self.config.tune_queries, replace=False))
        qrels = {q: qrels[q] for q in sample}
        runs = self._source_runs(chain, sample)
        lexical, dense = chain.sources
        for method in self.config.fusion_methods:
            for rk in self.config.rrf_k if method == "rrf" else (0.0,):
                for w in self.config.fusion_weights:
                    cfg = FuseConfig(method=method, k=rk, weights={lexical: 1.0, dense: w})
                    fuser = Fuser(cfg)
                    ranked = {q: self._ids(fuser(runs[q])) for q in qrels}
                    score = mean_metrics(ranked, qrels, self.config.k)[f"ndcg@{self.config.k}"]
                    if score > best[0]:
                        best = (score, cfg)
        return best[1], best[0]

    def _train_ltr(
        self, chain: Surface, qrels: Mapping[str, Mapping[str, float]], say: Progress
    ) -> SearchModel:
        """LambdaMART on what ``chain``'s rank stage is given for the training queries
        (``ChainCandidates``), graded by the judged gains (unjudged: 0)."""
        depth = self.config.ltr.depth
        dense = next((s for s in chain.sources if s in DENSE), "dense/text")
        src = self.sources.get(dense)
        feats = SearchFeatures(
            self.catalog, self.texts, src.item_vectors() if src else None, dense=dense
        )
        retrieve = ChainCandidates(chain, depth)
        say("computing ranking features")
        X, gains, groups = [], [], []
        for q, judged in qrels.items():
            ctx, cand = retrieve(q)
            if len(cand):
                X.append(feats(ctx, cand))
                gains.append(
                    np.array([judged.get(i, 0.0) for i in self.catalog.ids.external(cand.items)])
                )
                groups.append(len(cand))
        say(f"training LambdaMART on {len(groups):,} queries")
        ranker = LambdaMARTRanker(self.config.ltr, FEATURES).fit(
            np.concatenate(X), np.concatenate(gains), groups
        )
        return SearchModel(ranker, feats, depth)

    def run(
        self, train: pd.DataFrame, test: pd.DataFrame, progress: Progress | None = None
    ) -> SearchReport:
        """Index, learn on ``train``, measure on ``test`` through each method's chain."""
        say = progress or (lambda m: _log.info(m))
        t0 = time.perf_counter()
        self._work = self.work_dir or Path(tempfile.mkdtemp(prefix="moodboard-eval-"))
        self._index(train, test, say)
        tr_q, te_q = qrels_of(train), qrels_of(test)
        kept = {q: j for q, j in te_q.items() if max(j.values()) > 0}
        self._warm(sorted(set(tr_q) | set(te_q)), say)
        chains = {"bm25": self._chain((LEXICAL,))}
        chains |= {m: self._chain((s,)) for s, m in DENSE.items() if s in self.sources}
        params: dict[str, Any] = {
            "products": len(self.catalog),
            "train_queries": len(tr_q),
            "candidates": self.config.candidates,
        }
        base = chains["bm25"]
        dense = [s for s in DENSE if s in self.sources]
        if dense:
            say("tuning fusion weights on the training queries")
            pair = (LEXICAL, dense[-1])  # the tuned encoder when there is one
            fuse, train_ndcg = self._tune_fusion(self._chain(pair), tr_q)
            base = chains["hybrid"] = self._chain(pair, fuse)
            params["fusion"] = fuse.model_dump() | {"train_ndcg": round(train_ndcg, 4)}
        t1 = time.perf_counter()
        model = self._train_ltr(base, tr_q, say)
        params["ltr_train_s"] = round(time.perf_counter() - t1, 1)
        chains["ltr"] = self._chain(base.sources, base.fuse.config, model)
        say(f"ranking {len(kept):,} test queries through each method's search chain")
        self.chains, self.qrels = chains, kept
        self.rankings = {m: self._rank(c, sorted(kept)) for m, c in chains.items()}
        k = self.config.k
        methods = {m: mean_metrics(r, kept, k) for m, r in self.rankings.items()}
        params["chains"] = {m: chain_components(c) for m, c in chains.items()}
        params["seconds"] = round(time.perf_counter() - t0, 1)
        params["importance"] = {
            n: round(v, 1)
            for n, v in sorted(model.ranker.importance().items(), key=lambda kv: -kv[1])
        }
        self.ranker = model.ranker
        return SearchReport(
            {m: {n: round(v, 4) for n, v in r.items()} for m, r in methods.items()},
            len(kept),
            len(te_q) - len(kept),
            params,
        )
