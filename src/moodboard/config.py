"""Settings: defaults, overridden by a ``moodboard.toml`` and then by ``MOODBOARD_*`` variables.

The config file is the one named by ``MOODBOARD_CONFIG``, else ``./moodboard.toml`` when it
exists. Nested keys are set from the environment with a double underscore, e.g.
``MOODBOARD_INGEST__CHUNK_ROWS=50000``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestSettings(_Section):
    """How files are read and stored."""

    chunk_rows: int = Field(default=100_000, ge=1_000)
    check_images: bool = True
    #: Folders an absolute catalog image path must lie under (empty: anywhere).
    media_roots: tuple[str, ...] = ()


class ClickModelSettings(_Section):
    """The simulated shoppers' position-biased click model."""

    position_bias_eta: float = Field(default=0.8, ge=0)
    attraction_scale: float = Field(default=1.0, gt=0)
    attraction_offset: float = Field(default=-4.0)
    p_save: float = Field(default=0.15, ge=0, le=1)
    p_cart: float = Field(default=0.1, ge=0, le=1)
    p_purchase: float = Field(default=0.4, ge=0, le=1)
    p_hide: float = Field(default=0.01, ge=0, le=1)


class SimulateSettings(_Section):
    """Simulated shoppers over a real catalog."""

    users: int = Field(default=2_000, ge=1)
    days: int = Field(default=7, ge=1)
    seed: int = 0
    sessions_per_day: float = Field(default=0.6, gt=0)
    pages_per_session: int = Field(default=2, ge=1)
    page_size: int = Field(default=24, ge=1)
    start: str = "2026-01-05"
    click_model: ClickModelSettings = ClickModelSettings()


class ServeSettings(_Section):
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_upload_mb: float = Field(default=10.0, gt=0)
    max_k: int = Field(default=100, ge=1, le=500)
    watch_interval_s: float = Field(default=2.0, ge=0)
    #: torch threads in the server (None: one per core). 1 is faster: requests run in worker
    #: threads, where a 2-thread intra-op pool costs more than it gains (bench/serve.py).
    torch_threads: int | None = Field(default=1, ge=1)
    #: Largest page offset a ``cursor`` may ask for (deeper pages are refused with a 422).
    max_offset: int = Field(default=1_000, ge=0, le=100_000)
    #: Largest uploaded image, in pixels (width x height), checked before decoding.
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    #: Uploads decoded at once; more wait up to ``decode_wait_s`` then get a 503.
    max_concurrent_decodes: int = Field(default=2, ge=1)
    decode_wait_s: float = Field(default=2.0, ge=0)
    #: Most boards one user may own (POST /boards beyond it is a 422).
    max_boards_per_user: int = Field(default=500, ge=1)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FuseSettings(_Frozen):
    """How a surface fuses its sources (the fields of ``moodboard.retrieve.FuseConfig``)."""

    method: Literal["rrf", "zscore"] = "rrf"
    k: float = Field(default=60.0, ge=0)
    weights: dict[str, float] = Field(default_factory=dict)


class _Chain(_Frozen):
    """A surface's chain: candidate sources by name, fused, then fallback sources by name."""

    sources: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ("popular/trending",)
    per_source: int = Field(default=200, ge=1)
    fuse: FuseSettings = FuseSettings()


class SearchConfig(_Chain):
    """The search surface: text query -> sources -> fuse -> attribute boosts -> fallback."""

    sources: tuple[str, ...] = ("lexical/bm25", "dense/text")
    fuse: FuseSettings = FuseSettings(weights={"lexical/bm25": 1.0, "dense/text": 0.5})
    attribute_boost: float = Field(default=0.25, ge=0)


class ComplementsConfig(_Frozen):
    """How the build learns complementary categories from co-engagement.

    Items clicked (or saved, carted, bought) in the same session, or saved to the same board,
    are co-engaged; category pairs whose co-occurrence lift reaches ``min_lift`` with at least
    ``min_support`` groups are complementary. The lift ``(n(a, b) + smoothing) / (e(a, b) +
    smoothing)`` compares the groups holding both categories with the count expected at random.
    """

    actions: tuple[str, ...] = ("click", "save", "add_to_cart", "purchase")
    session_gap_minutes: float = Field(default=30.0, gt=0)
    min_support: int = Field(default=3, ge=1)
    min_lift: float = Field(default=1.2, gt=0)
    smoothing: float = Field(default=5.0, ge=0)
    max_per_category: int = Field(default=5, ge=1)


class RelatedConfig(_Chain):
    """Related products of one item (the product page): content and co-engagement sources."""

    sources: tuple[str, ...] = ("dense/text", "visual/image", "graph/walks")
    fuse: FuseSettings = FuseSettings(weights={"graph/walks": 2.0})
    per_source: int = Field(default=100, ge=1)
    same_category_boost: float = Field(default=0.5, ge=0)
    complement_share: float = Field(default=0.25, ge=0, le=1)
    complement_categories: int = Field(default=3, ge=1)
    dedup_source: str = "visual/image"
    dedup_threshold: float | None = Field(default=0.97, gt=0, le=1)
    complements: ComplementsConfig = ComplementsConfig()


class VisualConfig(_Chain):
    """Visual search: an uploaded photo (optionally cropped) -> image neighbours."""

    sources: tuple[str, ...] = ("visual/image",)
    per_source: int = Field(default=100, ge=1)
    dedup_source: str = "visual/image"
    dedup_threshold: float | None = Field(default=None, gt=0, le=1)


class BoardConfig(_Chain):
    """More ideas for a board: neighbours of the board's centroids, and co-engaged items."""

    sources: tuple[str, ...] = ("dense/text", "visual/image", "graph/walks", "user_interests")
    per_source: int = Field(default=100, ge=1)
    max_centroids: int = Field(default=4, ge=1)
    cohesion: float = Field(default=0.9, ge=-1, le=1)
    dedup_source: str = "visual/image"
    dedup_threshold: float | None = Field(default=0.97, gt=0, le=1)


class PopularChainConfig(_Chain):
    """Popular items (the home page, and every surface's last resort)."""

    sources: tuple[str, ...] = ("popular/trending",)
    fallback: tuple[str, ...] = ()


class TwoTowerConfig(_Frozen):
    """The ``two_tower`` retrieval model: its towers, negatives and training loop.

    The item tower embeds an item from its id (an out-of-vocabulary row for items never
    engaged with, and for ``id_dropout`` of the training ids) plus its content (text and image
    vectors, categorical attributes); the user tower pools the item-tower outputs of the user's
    last ``max_history`` items (``pooling``) and adds a user id embedding (users unseen in
    training hash into ``user_buckets`` shared rows, which ``user_dropout`` trains). Training
    is next-item prediction with in-batch negatives corrected by the log of each item's
    sampling frequency (``logq``) plus ``random_negatives`` uniform items per batch; logits are
    cosines divided by ``temperature``.
    """

    dim: int = Field(default=64, ge=2)
    hidden: int = Field(default=128, ge=2)
    pooling: Literal["mean", "attention"] = "attention"
    max_history: int = Field(default=30, ge=1)
    user_buckets: int = Field(default=64, ge=1)
    user_dropout: float = Field(default=0.5, ge=0, le=1)
    id_dropout: float = Field(default=0.5, ge=0, le=1)
    min_item_count: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.1, gt=0)
    random_negatives: int = Field(default=128, ge=0)
    logq: bool = True
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    train_threads: int = Field(default=1, ge=1)
    seed: int = 0


class SequenceConfig(_Frozen):
    """Parameters of the ``sequence`` source.

    Attributes
    ----------
    dim, n_layers, n_heads, inner_mult, dropout
        Item vector size, attention blocks, heads, feed-forward width (x ``dim``), dropout.
    max_len
        Longest history read (the last ``max_len`` items).
    attributes, max_attributes
        Add the mean of learned attribute vectors (``item_features["attributes"]``) to each
        item's vector, keeping at most ``max_attributes`` per item. None: when the data has
        attributes; True: required (an error without them); False: never.
    lr, weight_decay, batch_size, label_smoothing
        AdamW and the cross-entropy loss; a batch is ``batch_size`` user sequences.
    negatives, negative_power
        0: full softmax over all items; k > 0: sampled softmax against k negatives shared by
        the batch (much cheaper on large catalogs), drawn with probability proportional to
        (training count + 1) ** negative_power (0: uniform), with the logQ correction.
    epochs, max_minutes
        Training stops after ``epochs`` or ``max_minutes`` of training, whichever comes first.
    eval_every, patience, valid_users
        Validation NDCG@10 is measured every ``eval_every`` epochs on at most ``valid_users``
        users; the best state is kept and training stops after ``patience`` evaluations
        without improvement. Without explicit validation data, the last item of
        ``valid_users`` random users is held out of training for this (0: no early stopping).
    restarts, lr_decay
        At a plateau (``patience`` evaluations without improvement) go back to the best state
        and multiply the learning rate by ``lr_decay``, at most ``restarts`` times, then stop.
    contrastive, temperature
        Weight of a contrastive loss between two dropout views of each user's state (cosine
        InfoNCE with in-batch negatives at ``temperature``); 0: off.
    threads
        torch CPU threads while fitting and scoring.
    seed
        Seeds initialization, batching and the validation sample.
    """

    dim: int = Field(default=64, ge=8)
    n_layers: int = Field(default=2, ge=1)
    n_heads: int = Field(default=2, ge=1)
    inner_mult: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    max_len: int = Field(default=50, ge=2)
    attributes: bool | None = None
    max_attributes: int = Field(default=16, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.1, ge=0.0)
    batch_size: int = Field(default=256, ge=1)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    negatives: int = Field(default=1024, ge=0)
    negative_power: float = Field(default=0.75, ge=0.0, le=1.0)
    epochs: int = Field(default=200, ge=1)
    max_minutes: float = Field(default=12.0, gt=0.0)
    eval_every: int = Field(default=2, ge=1)
    patience: int = Field(default=4, ge=1)
    restarts: int = Field(default=0, ge=0)
    lr_decay: float = Field(default=0.3, gt=0.0, le=1.0)
    contrastive: float = Field(default=0.0, ge=0.0)
    temperature: float = Field(default=0.2, gt=0.0)
    valid_users: int = Field(default=5000, ge=0)
    threads: int = Field(default=1, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> Self:
        if self.dim % self.n_heads:
            raise ValueError(
                f"The 'n_heads' parameter of SequenceConfig must divide dim={self.dim}. "
                f"Got {self.n_heads} instead."
            )
        return self


class WalksConfig(_Frozen):
    """Parameters of ``graph/walks`` (defaults tuned on the Amazon validation targets).

    ``n_steps`` is the step budget of one query (a user or an item), shared by its query items
    in proportion to their weights; ``n_walkers`` walkers split it, each walking
    ``n_steps // n_walkers`` steps. ``time_budget_ms`` stops the walkers of a ``related`` call
    or of a ``score`` batch early (then the answer depends on the machine's speed).
    ``popularity_penalty`` divides scores by ``popularity ** penalty`` (RP3beta's beta).
    """

    method: Literal["exact", "walk"] = "exact"
    n_steps: int = Field(default=20_000, ge=1)
    n_walkers: int = Field(default=1_000, ge=1)
    restart: float = Field(default=0.5, gt=0, le=1)
    time_budget_ms: float | None = Field(default=None, gt=0)
    exact_steps: int = Field(default=2, ge=1, le=10)
    board_size: int | None = Field(default=5, ge=1)
    max_board_degree: int | None = Field(default=500, ge=1)
    max_item_degree: int | None = Field(default=2_000, ge=1)
    n_query_items: int = Field(default=10, ge=1)
    recency_decay: float = Field(default=0.3, gt=0, le=1)
    boost: bool = True
    popularity_penalty: float = Field(default=0.0, ge=0, le=1)
    batch_size: int = Field(default=512, ge=1)
    seed: int = Field(default=0, ge=0)


class InterestsConfig(_Frozen):
    """Parameters of ``user_interests`` (defaults tuned on the Amazon validation targets).

    ``weighted_medoid`` picks the member closest to the others weighted by recency, so a
    cluster's query leans to what the user engaged with last (PinnerSage: unweighted).
    """

    embedding_feature: str = "embeddings"
    dim: int = Field(default=256, ge=2)
    window: int = Field(default=5, ge=1)
    eigen_power: float = Field(default=1.0, ge=0, le=1)
    max_history: int = Field(default=50, ge=1)
    max_interests: int = Field(default=5, ge=1)
    clustering: Literal["ward", "kmeans"] = "ward"
    distance_threshold: float = Field(default=1.0, gt=0)
    recency_decay: float = Field(default=0.3, gt=0, le=1)
    weighted_medoid: bool = True
    n_candidates: int = Field(default=200, ge=1)
    batch_size: int = Field(default=512, ge=1)
    seed: int = Field(default=0, ge=0)


class FeedConfig(_Chain):
    """The home feed of a user: personalized sources fused, engaged items left out.

    Users with a history get the fused ``sources`` (recommenders by name; missing ones are
    skipped); users without one get ``cold_sources`` with ``explore_share`` of the page given
    to a random slice of the catalog, seeded per (seed, user, request key). The build keeps
    each user's last ``history_length`` interactions (``pipelines.sequences``) for serving and
    trains ``two_tower``, ``sequence``, ``graph/walks`` and ``user_interests`` on them (their
    sections; ``sequence`` stops at ``max_minutes``), holding out the last item of
    ``valid_users`` users to measure them and, with ``tune_fusion``, to tune the fusion weights
    and ``k``, which then replace ``fuse`` (see ``serve.build_feed``).
    """

    sources: tuple[str, ...] = ("two_tower", "sequence", "graph/walks", "user_interests")
    per_source: int = Field(default=200, ge=1)
    cold_sources: tuple[str, ...] = ("popular/trending",)
    explore_share: float = Field(default=0.25, ge=0, le=1)
    explore_share_known: float = Field(default=0.0, ge=0, le=1)
    history_length: int = Field(default=200, ge=1)
    valid_users: int = Field(default=2000, ge=0)
    tune_fusion: bool = True
    two_tower: TwoTowerConfig = TwoTowerConfig()
    sequence: SequenceConfig = SequenceConfig(epochs=60, max_minutes=3.0)
    walks: WalksConfig = WalksConfig()
    interests: InterestsConfig = InterestsConfig()


class SurfacesSettings(_Section):
    """Each surface's chain, declared by component names."""

    search: SearchConfig = SearchConfig()
    related: RelatedConfig = RelatedConfig()
    visual: VisualConfig = VisualConfig()
    board: BoardConfig = BoardConfig()
    popular: PopularChainConfig = PopularChainConfig()
    feed: FeedConfig = FeedConfig()


class Settings(BaseSettings):
    """All of moodboard's settings.

    Raises
    ------
    pydantic.ValidationError
        If a value in the file or the environment is invalid; the message names the key.
    """

    model_config = SettingsConfigDict(
        env_prefix="MOODBOARD_", env_nested_delimiter="__", extra="forbid"
    )

    workspace: Path = Path("moodboard-workspace")
    datasets: Path | None = None
    seed: int = 0
    ingest: IngestSettings = IngestSettings()
    simulate: SimulateSettings = SimulateSettings()
    serve: ServeSettings = ServeSettings()
    surfaces: SurfacesSettings = SurfacesSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def config_path() -> Path | None:
    """The config file in force: ``$MOODBOARD_CONFIG`` or ``./moodboard.toml``, if any.

    Raises
    ------
    FileNotFoundError
        If ``MOODBOARD_CONFIG`` names a file that does not exist.
    """
    named = os.environ.get("MOODBOARD_CONFIG")
    if named:
        p = Path(named)
        if not p.is_file():
            raise FileNotFoundError(f"MOODBOARD_CONFIG names {p}, which is not a file.")
        return p
    local = Path("moodboard.toml")
    return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    """Settings from the file and environment, with explicit overrides on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
