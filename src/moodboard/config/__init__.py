"""Settings: defaults, overridden by a ``moodboard.toml`` and then by ``MOODBOARD_*`` variables.

The config file is the one named by ``MOODBOARD_CONFIG``, else ``./moodboard.toml`` when it
exists. Nested keys are set from the environment with a double underscore, e.g.
``MOODBOARD_INGEST__CHUNK_ROWS=50000``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from moodboard.config.autocomplete import AutocompleteConfig, AutocompleteModelConfig
from moodboard.config.models import (
    BotsConfig,
    DenseConfig,
    FuseSettings,
    InterestsConfig,
    LabelsConfig,
    LambdaMARTConfig,
    LexicalConfig,
    PopularConfig,
    QueryUnderstandingConfig,
    RankSettings,
    RetrieveSettings,
    SequenceConfig,
    TwoTowerConfig,
    VisualIndexConfig,
    WalksConfig,
)
from moodboard.config.surfaces import (
    BoardConfig,
    ComplementsConfig,
    FeedConfig,
    ModulesConfig,
    PopularChainConfig,
    RefinementsConfig,
    RelatedConfig,
    SearchConfig,
    SurfaceConfig,
    SurfacesSettings,
    VisualConfig,
)
from moodboard.experiment.search_config import SearchAnalyticsConfig
from moodboard.experiment.spec import ExperimentSettings
from moodboard.understand.visual_head import VisualHeadConfig

__all__ = [
    "AutocompleteConfig",
    "AutocompleteModelConfig",
    "BoardConfig",
    "BotsConfig",
    "BuildSettings",
    "CatalogGrowthSettings",
    "ClickModelSettings",
    "ComplementsConfig",
    "DenseConfig",
    "FeedConfig",
    "FuseSettings",
    "IngestSettings",
    "InterestsConfig",
    "LabelsConfig",
    "LambdaMARTConfig",
    "LexicalConfig",
    "ModulesConfig",
    "PopularChainConfig",
    "PopularConfig",
    "QueryUnderstandingConfig",
    "RankSettings",
    "RefinementsConfig",
    "RelatedConfig",
    "RetrieveSettings",
    "ReturnSettings",
    "SearchConfig",
    "SequenceConfig",
    "ServeSettings",
    "Settings",
    "SimulateSettings",
    "SurfaceConfig",
    "SurfacesSettings",
    "TwoTowerConfig",
    "VisualConfig",
    "VisualHeadConfig",
    "VisualIndexConfig",
    "WALConfig",
    "WalksConfig",
    "config_path",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WALConfig(_Section):
    """How the server's event WAL (``ingest.wal.EventWAL``) flushes and compacts
    (``[ingest.wal]``).

    Parameters
    ----------
    flush_interval_ms
        The background flusher fsyncs ``log()`` events at least this often.
    compact_interval_s
        How often closed segments move into the Parquet event log. A compaction costs about
        150 ms of a core whatever it stores (opening the database, the id checks), and the
        requests it overlaps run slower: every 30 s rather than every 5 s took the ``/search``
        p99 from 56-67 ms to 30-32 ms on 2 cores (2026-12-06).
    background
        Run the flusher and compactor threads (off: call ``compact`` yourself; ``log``
        events are then durable at the next ``accept``, ``compact`` or ``close``).
    catalog_refresh_s
        An unknown item id reloads the catalog's ids at most this often.
    chunk_rows
        Rows per batch when compacting.
    seen_days
        Days of stored event ids the compactor keeps in memory between compactions to
        deduplicate against (``ingest.seen.SeenIds``); a batch on another day reads it.
    """

    flush_interval_ms: int = Field(default=200, ge=1)
    compact_interval_s: float = Field(default=30.0, gt=0)
    background: bool = True
    catalog_refresh_s: float = Field(default=1.0, ge=0)
    chunk_rows: int = Field(default=100_000, ge=1)
    seen_days: int = Field(default=8, ge=1)


class IngestSettings(_Section):
    """How files are read and stored."""

    chunk_rows: int = Field(default=100_000, ge=1_000)
    check_images: bool = True
    #: Events dated later than now + this many seconds are refused (a clock off by a day
    #: passes; a year-99999 date that would outweigh every real event does not).
    max_clock_skew_s: float = Field(default=86_400.0, ge=0)
    #: Events dated before this instant are refused (ISO 8601, UTC when no offset is given).
    min_event_ts: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    #: Fields one event may have: its core columns plus the keys of its ``props``.
    max_keys_per_event: int = Field(default=64, ge=1)
    #: Distinct extra field names in one ``POST /events`` batch.
    max_extra_keys_per_batch: int = Field(default=256, ge=1)
    #: Characters in one field value (objects and lists count their JSON text).
    max_value_chars: int = Field(default=4_096, ge=1)
    #: Characters in one field name.
    max_name_chars: int = Field(default=64, ge=1)
    #: The quarantine file of events refused by the API starts afresh past this size (MB) ...
    api_quarantine_max_mb: float = Field(default=64.0, gt=0)
    #: ... keeping at most this many earlier files (the oldest is deleted).
    api_quarantine_files: int = Field(default=4, ge=0)

    @field_validator("min_event_ts")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)

    #: Folders an absolute catalog image path must lie under (empty: anywhere).
    media_roots: tuple[str, ...] = ()
    #: The server's event WAL.
    wal: WALConfig = WALConfig()


class ClickModelSettings(_Section):
    """The simulated shoppers' position-biased click model."""

    position_bias_eta: float = Field(default=0.8, ge=0)
    attraction_scale: float = Field(default=1.0, gt=0)
    attraction_offset: float = Field(default=-4.0)
    p_save: float = Field(default=0.15, ge=0, le=1)
    p_cart: float = Field(default=0.1, ge=0, le=1)
    p_purchase: float = Field(default=0.4, ge=0, le=1)
    p_hide: float = Field(default=0.01, ge=0, le=1)


class ReturnSettings(_Section):
    """Whether a simulated shopper comes back on the next day (``simulate.returns``).

    Off, every shopper has a Poisson number of sessions every day. On, a shopper visits on
    their first simulated day and on day ``d + 1`` with probability
    ``sigmoid(logit(base) + satisfaction * (S - satisfaction_ref) - repetition * R -
    boredom * B)`` after a visit on day ``d`` (``S``, ``R``, ``B``: see
    ``moodboard.simulate.returns``); after a day away the log-odds move ``recovery`` of the way
    back to ``logit(base)``. A visit has ``1 + Poisson(sessions_per_visit - 1)`` sessions.
    The defaults give about 7 visits in 14 days on the demo catalog with randomized pages
    (where a page's ``S`` has median 1.0 and ``B`` median 0.76).
    """

    enabled: bool = False
    base: float = Field(default=0.7, gt=0, lt=1)
    satisfaction: float = Field(default=0.8, ge=0)
    satisfaction_ref: float = Field(default=1.0, ge=0)
    repetition: float = Field(default=2.0, ge=0)
    boredom: float = Field(default=1.0, ge=0)
    recovery: float = Field(default=0.3, ge=0, le=1)
    sessions_per_visit: float = Field(default=1.5, ge=1)


class CatalogGrowthSettings(_Section):
    """New catalog rows over the simulated days (``simulate.catalog_growth``).

    ``held_out`` (0: off) of the products no event in the workspace names are withheld from
    the workspace when a run through the engine starts (``order``: a seeded random draw, or the
    newest by ``created_at`` then id) and released through ``ingest_catalog`` at the start of
    days ``release_from .. days - 1`` of the run, evenly, with ``created_at`` the release day.
    Shoppers only see products in the catalog; the engine serves a released product from its
    next build (``--rebuild-every``).
    """

    held_out: float = Field(default=0.0, ge=0, lt=1)
    order: Literal["random", "newest"] = "random"
    release_from: int = Field(default=1, ge=0)


class SimulateSettings(_Section):
    """Simulated shoppers over a real catalog."""

    users: int = Field(default=2_000, ge=1)
    days: int = Field(default=7, ge=1)
    seed: int = 0
    sessions_per_day: float = Field(default=0.6, gt=0)
    #: How shoppers differ in how often they come. 0: all alike. k > 0: each shopper's rate is
    #: ``sessions_per_day`` times a Gamma(k, 1/k) draw (Poisson-Gamma, as in Pareto/NBD); the
    #: repeat purchase days of UCI Online Retail fit k = 0.82 (``bench/activity.py``).
    activity_shape: float = Field(default=0.0, ge=0)
    pages_per_session: int = Field(default=2, ge=1)
    page_size: int = Field(default=24, ge=1)
    start: str = "2026-01-05"
    click_model: ClickModelSettings = ClickModelSettings()
    returns: ReturnSettings = ReturnSettings()
    catalog_growth: CatalogGrowthSettings = CatalogGrowthSettings()
    #: Share of the accounts that are bots (``simulate.bots``); 0: shoppers only.
    bot_share: float = Field(default=0.0, ge=0, le=1)
    #: The kinds of bots, given to the bot accounts in turn.
    bot_kinds: tuple[Literal["click_flood", "save_spam", "query_burst"], ...] = Field(
        default=("click_flood", "save_spam", "query_burst"), min_length=1
    )
    #: The items each kind of bot pushes (one campaign per kind, shared by its bots).
    bot_targets: int = Field(default=3, ge=1)
    #: Share of the sessions on each surface (normalized): a search, the home feed, the
    #: product page of a clicked item (related) or the ideas of one of the shopper's boards.
    surface_mix: dict[Literal["search", "feed", "related", "board"], float] = Field(
        default_factory=lambda: {"search": 0.7, "feed": 0.3, "related": 0.0, "board": 0.0}
    )

    @field_validator("surface_mix")
    @classmethod
    def _some_surface(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(
                "simulate.surface_mix must give each surface a share >= 0, some of them > 0. "
                f"Got {v} instead."
            )
        return v

    @model_validator(mode="after")
    def _one_activity_model(self) -> SimulateSettings:
        if self.activity_shape > 0 and self.returns.enabled:
            raise ValueError(
                "simulate.activity_shape draws how often each shopper comes, and "
                "simulate.returns decides it day by day: set activity_shape = 0 or "
                "returns.enabled = false."
            )
        return self


class ServeSettings(_Section):
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_upload_mb: float = Field(default=10.0, gt=0)
    max_k: int = Field(default=100, ge=1, le=500)
    watch_interval_s: float = Field(default=2.0, ge=0)
    reload_backoff_s: float = Field(default=60.0, gt=0)
    db_wait_s: float = Field(default=1.0, ge=0, le=30)
    #: torch threads in the server (None: one per core). Every request's model work runs on
    #: one thread (``understand.threads.ModelThread``), so one intra-op pool serves them all.
    torch_threads: int | None = Field(default=None, ge=1)
    #: The Arrow memory pool of the server process (``pyarrow.set_memory_pool``; "default":
    #: pyarrow's own choice, mimalloc in pyarrow 26). With mimalloc the model work of every
    #: request ran slower while the event WAL compacted every 5 s (``/visual-search``
    #: ``prepare`` 38 ms against 30 ms, 2 cores, 2026-12-06); with jemalloc it did not.
    arrow_memory_pool: Literal["jemalloc", "mimalloc", "system", "default"] = "jemalloc"
    #: Actions accepted by POST /events since the live build, held per user for the next pages
    #: (the newest ``recent_per_user`` of at most ``recent_users`` users).
    recent_per_user: int = Field(default=50, ge=1, le=1_000)
    recent_users: int = Field(default=100_000, ge=1)
    #: Largest body of a non-upload request (JSON routes), in KiB: 10,000 events take ~3 MB.
    max_body_kb: int = Field(default=4096, ge=1)
    #: Keys sent as ``Authorization: Bearer <key>`` (None: generated into the workspace).
    admin_key: SecretStr | None = None
    write_key: SecretStr | None = None
    public_key: SecretStr | None = None
    #: Signs the web app's shopper cookie (None: generated into the workspace).
    session_secret: SecretStr | None = None
    #: The public key's limits: events per request, requests per minute per client address.
    public_max_events: int = Field(default=100, ge=1)
    public_rate_per_min: int = Field(default=300, ge=1)
    #: Serve /metrics without a key.
    public_metrics: bool = False
    #: Origins allowed to call the API from a browser (CORS); empty: none.
    cors_origins: tuple[str, ...] = ()
    #: Largest page offset a ``cursor`` may ask for (deeper pages are refused with a 422).
    max_offset: int = Field(default=1_000, ge=0, le=100_000)
    #: Largest uploaded image, in pixels (width x height), checked before decoding.
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    #: Uploads decoded at once; more wait up to ``decode_wait_s`` then get a 503.
    max_concurrent_decodes: int = Field(default=2, ge=1)
    decode_wait_s: float = Field(default=2.0, ge=0)
    #: Most boards one user may own (POST /boards beyond it is a 422).
    max_boards_per_user: int = Field(default=500, ge=1)
    #: A demo server (``make demo``): the web app lets a visitor "shop as" one of the
    #: workspace's shoppers (``GET /demo/shoppers``); off, the shopper is the signed-in one.
    demo_mode: bool = False


class BuildSettings(_Section):
    """How ``moodboard build`` publishes artifact versions."""

    keep_versions: int = Field(default=3, ge=1)


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
    build: BuildSettings = BuildSettings()
    retrieve: RetrieveSettings = RetrieveSettings()
    rank: RankSettings = RankSettings()
    bots: BotsConfig = BotsConfig()
    understand: QueryUnderstandingConfig = QueryUnderstandingConfig()
    surfaces: SurfacesSettings = SurfacesSettings()
    autocomplete: AutocompleteConfig = AutocompleteConfig()
    experiment: ExperimentSettings = ExperimentSettings()
    search_analytics: SearchAnalyticsConfig = SearchAnalyticsConfig()
    visual_head: VisualHeadConfig = VisualHeadConfig()

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
