"""Each surface's chain, declared by component names (``[surfaces.*]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moodboard.blend.compose import ComposeConfig
from moodboard.config.models import (
    EASEConfig,
    FuseSettings,
    InterestsConfig,
    SequenceConfig,
    TwoTowerConfig,
    WalksConfig,
    _Frozen,
)
from moodboard.understand.categorize import CategoryConfig
from moodboard.understand.detect import DetectorConfig


class _Chain(_Frozen):
    """A surface's chain, by component names: its ``prepare`` step, candidate sources, fusion,
    ``ranker``, ``blend`` step and fallback sources."""

    prepare: str = ""
    ranker: str = "rank/noop"
    blend: str = "blend/none"
    sources: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ("popular/trending",)
    per_source: int = Field(default=200, ge=1)
    fuse: FuseSettings = FuseSettings()

    def chain_sources(self) -> tuple[str, ...]:
        """The sources the chain may ask (``sources``; a surface may add its own)."""
        return self.sources


class SearchModulesConfig(_Frozen):
    """A broad query's page as rows of sub-searches over the grid (``surfaces.search_modules``
    says how a query is found broad and how the rows are chosen).

    A query that names no article type, whose intent distribution has a perplexity of at
    least ``min_categories`` and whose first ``spread_depth`` results hold no category above
    ``max_top_share``, gets up to ``max_modules`` rows of ``per_module`` items: sub-searches
    of the intent's ``candidates`` most probable categories (each at least
    ``min_probability``) and of the top category's ``complements`` (their probability scaled
    by ``complement_weight``), each asking ``depth`` candidates, ordered by expected
    engagement (raised for a known shopper by ``personal_weight`` x the category's share of
    their history) with an epsilon-greedy policy (``epsilon``) whose propensities are logged.
    ``sub_vectors`` is how a row's query vector is made: ``"compose"`` adds the category
    name's vector (kept per category) to the query's and normalizes, so a broad query costs
    no encoding beyond its own; ``"encode"`` encodes each sub-query's text ("summer outfit
    dresses") in one batch. ``fuzzy_rows`` lets a row's lexical sub-search match misspelt
    words as the query's own list does (about 0.25 ms a row): off, as the query was
    spell-corrected before its rows were made.
    """

    enabled: bool = True
    sub_vectors: Literal["compose", "encode"] = "compose"
    fuzzy_rows: bool = False
    min_categories: float = Field(default=4.0, ge=1)
    max_top_share: float = Field(default=0.6, gt=0, le=1)
    spread_depth: int = Field(default=40, ge=1, le=500)
    candidates: int = Field(default=6, ge=1, le=20)
    min_probability: float = Field(default=0.02, ge=0, le=1)
    complements: int = Field(default=2, ge=0, le=10)
    complement_weight: float = Field(default=0.5, ge=0)
    max_modules: int = Field(default=4, ge=1, le=10)
    per_module: int = Field(default=6, ge=1, le=50)
    depth: int = Field(default=24, ge=1, le=200)
    epsilon: float = Field(default=0.1, ge=0, le=1)
    personal_weight: float = Field(default=2.0, ge=0)


class RefinementsConfig(_Frozen):
    """Refinement chips and related searches of a query (``GET /refinements``,
    ``surfaces.refinements``).

    Chips: the search chain's first ``depth`` results for the query are split by each of
    ``facets`` (catalog attributes), by ``price_bands`` price bands (when products have
    prices) and by the ``co_terms`` terms most co-engaged with the query's; a value found in
    at least ``min_support`` results becomes a chip, ranked by its narrowing value (its share
    of the results' engagement mass x the share of the results it leaves out); at most
    ``max_per_facet`` per facet and ``max_chips`` in all. Related searches: ``walkers`` random
    walks of ``walk_steps`` query -> item -> query hops with restart probability ``restart``
    on the query-item graph the build learns from the search log (its ``max_queries`` most
    engaged queries, each at most ``max_query_chars`` long, with their ``max_items``
    most engaged items), seeded by ``seed``; catalog phrases fill up to ``max_related``.
    """

    depth: int = Field(default=200, ge=10, le=1000)
    max_chips: int = Field(default=8, ge=0, le=50)
    max_per_facet: int = Field(default=3, ge=1, le=20)
    min_support: int = Field(default=3, ge=1)
    facets: tuple[str, ...] = ("baseColour", "articleType", "gender", "usage")
    price_bands: int = Field(default=3, ge=0, le=10)
    co_terms: int = Field(default=4, ge=0, le=20)
    max_related: int = Field(default=8, ge=0, le=50)
    walkers: int = Field(default=400, ge=1, le=100_000)
    walk_steps: int = Field(default=4, ge=1, le=100)
    restart: float = Field(default=0.3, ge=0, lt=1)
    seed: int = 0
    max_queries: int = Field(default=50_000, ge=1)
    max_query_chars: int = Field(default=100, ge=1, le=500)
    max_items: int = Field(default=200, ge=1)


class SearchConfig(_Chain):
    """The search surface: text query -> sources -> fuse -> attribute boosts -> fallback.

    ``attribute_first``: items with every colour, gender, article type and usage the query
    names come first (then those that are unisex where it names a gender, then the rest, each
    in the ranked order); ``attribute_probe``: such a query also asks each source for the
    items with all those values (a filtered probe), so the first group fills when the catalog
    has the items. ``main_list_only``: sources asked for the main list only, not for the
    filtered probe or a broad query's rows (``dense/text_image`` scans every image: one scan a
    query).
    """

    prepare: str = "prepare/search"
    #: The ranker the build trains from search engagement (``rank/noop`` until it has one).
    ranker: str = "rank/lambdamart"
    blend: str = "blend/boost"
    sources: tuple[str, ...] = ("lexical/bm25", "dense/text", "dense/text_image")
    fuse: FuseSettings = FuseSettings(
        weights={"lexical/bm25": 1.0, "dense/text": 0.5, "dense/text_image": 0.25}
    )
    attribute_boost: float = Field(default=0.25, ge=0)
    attribute_first: bool = True
    attribute_probe: bool = True
    main_list_only: tuple[str, ...] = ("dense/text_image",)
    modules: SearchModulesConfig = SearchModulesConfig()
    refinements: RefinementsConfig = RefinementsConfig()


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

    prepare: str = "prepare/related"
    blend: str = "blend/complements"
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
    """Visual search: an uploaded photo (optionally cropped) -> image neighbours.

    A composed query (a photo and ``text``, "like this, but red") searches
    ``unit(image vector + w x text_source's projection of the text)``; with
    ``attribute_first`` the colours, genders, article types and usages the text names put the
    items with all of them first (as search does), and ``w`` is ``text_weight_named`` (the
    words only reorder those items: a nudge), else ``text_weight`` (the vector carries them).
    """

    prepare: str = "prepare/visual"
    blend: str = "blend/visual"
    sources: tuple[str, ...] = ("visual/image",)
    per_source: int = Field(default=100, ge=1)
    dedup_source: str = "visual/image"
    dedup_threshold: float | None = Field(default=None, gt=0, le=1)
    text_source: str = "dense/text_image"
    text_weight: float = Field(default=2.0, ge=0, le=100)
    text_weight_named: float = Field(default=0.5, ge=0, le=100)
    attribute_first: bool = True
    #: Items per detected object's row (``objects[].items``).
    object_items: int = Field(default=8, ge=1, le=50)
    detect: DetectorConfig = DetectorConfig()
    category: CategoryConfig = CategoryConfig()


class BoardConfig(_Chain):
    """More ideas for a board: neighbours of the board's centroids, and co-engaged items."""

    prepare: str = "prepare/board"
    blend: str = "blend/dedup"
    sources: tuple[str, ...] = ("dense/text", "visual/image", "graph/walks", "user_interests")
    per_source: int = Field(default=100, ge=1)
    max_centroids: int = Field(default=4, ge=1)
    cohesion: float = Field(default=0.9, ge=-1, le=1)
    dedup_source: str = "visual/image"
    dedup_threshold: float | None = Field(default=0.97, gt=0, le=1)


class PopularChainConfig(_Chain):
    """Popular items (the home page, and every surface's last resort)."""

    prepare: str = "prepare/popular"
    sources: tuple[str, ...] = ("popular/trending",)
    fallback: tuple[str, ...] = ()


class ModulesConfig(_Frozen):
    """The home page as rows of modules over the feed's grid (``blend/modules``).

    With ``enabled`` (or ``GET /feed/{user}?modules=1``), the feed's page starts with up to
    ``max_modules`` rows of ``per_module`` items each, then the grid. The candidate modules of
    a user: "more like your board X" (the neighbours of each of the user's ``max_boards``
    newest boards' items), "because you viewed Y" (of the user's last engaged item),
    "trending in <category>" (popular items of the user's most engaged category) and "new
    arrivals" (the newest products by ``created_at``). Each asks ``depth`` candidates (the
    neighbours from ``sources``); all of them are ranked with the grid in one call of the rank
    stage. A module with fewer than ``per_module`` candidates is left out. The modules shown
    and their order are drawn by an epsilon-greedy policy seeded by (seed, user, request key:
    the ``session``, else the request id): with probability ``1 - epsilon`` the order of the
    ``weights`` of their kinds (higher first), else a uniformly random order; each module
    logs the probability of its kind at its row (``propensity``).
    """

    enabled: bool = False
    max_modules: int = Field(default=3, ge=1, le=10)
    per_module: int = Field(default=6, ge=1, le=50)
    depth: int = Field(default=24, ge=1, le=200)
    epsilon: float = Field(default=0.2, ge=0, le=1)
    max_boards: int = Field(default=2, ge=0, le=10)
    sources: tuple[str, ...] = ("graph/walks", "dense/text", "visual/image")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"board": 1.0, "viewed": 0.8, "trending": 0.6, "new": 0.3}
    )


class FeedConfig(_Chain):
    """The home feed of a user: personalized sources fused, engaged items left out.

    Users with a history get the fused ``sources`` (recommenders by name; missing ones are
    skipped), without the items they engaged with unless ``exclude_engaged`` is off (a store
    whose customers buy the same items again may want them shown); users without one get
    ``cold_sources`` with ``explore_share`` of the page given to a random slice of the
    catalog, seeded per (seed, user, request key). The build keeps each user's last
    ``history_length`` interactions (``pipelines.sequences``) for serving and trains
    ``two_tower``, ``sequence``, ``graph/walks``, ``user_interests`` and ``ease`` (EASE's top
    ``neighbours`` per item) on them (their sections; ``sequence`` stops at ``max_minutes``),
    holding out the last item of
    ``valid_users`` users to measure them and, with ``tune_fusion``, to tune the fusion weights
    and ``k``, which then replace ``fuse`` (see ``build.recommenders``).

    ``blend = "blend/compose"`` composes the page with ``compose`` instead (utility weights,
    diversity, slot rules, explore slots for fresh items; ``surfaces.compose``).
    """

    prepare: str = "prepare/feed"
    blend: str = "blend/explore"
    sources: tuple[str, ...] = (
        "two_tower",
        "sequence",
        "graph/walks",
        "user_interests",
        "ease",
        "popular/trending",
    )
    #: Until a build tunes it, popularity stays out of the personalized feed (weight 0).
    fuse: FuseSettings = FuseSettings(weights={"popular/trending": 0.0})
    per_source: int = Field(default=200, ge=1)
    cold_sources: tuple[str, ...] = ("popular/trending",)
    explore_share: float = Field(default=0.25, ge=0, le=1)
    explore_share_known: float = Field(default=0.0, ge=0, le=1)
    exclude_engaged: bool = True
    history_length: int = Field(default=200, ge=1)
    valid_users: int = Field(default=2000, ge=0)
    visit_gap_minutes: float = Field(default=30.0, gt=0)
    refit: tuple[str, ...] = ("ease",)
    tune_fusion: bool = True
    two_tower: TwoTowerConfig = TwoTowerConfig()
    sequence: SequenceConfig = SequenceConfig(epochs=60, max_minutes=3.0)
    walks: WalksConfig = WalksConfig()
    interests: InterestsConfig = InterestsConfig()
    ease: EASEConfig = EASEConfig(l2=500.0, neighbours=200, threads=1)
    modules: ModulesConfig = ModulesConfig()
    compose: ComposeConfig = ComposeConfig()

    def chain_sources(self) -> tuple[str, ...]:
        """The sources the chain may ask: ``sources``, then the modules' neighbour sources."""
        return (*self.sources, *(n for n in self.modules.sources if n not in self.sources))


class SurfaceConfig(_Chain):
    """A surface declared in config alone: its ``prepare`` step by registry name (required),
    its sources, ranker, blend and fallback, and ``params`` its prepare step reads."""

    prepare: str = Field(min_length=1)
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)


class SurfacesSettings(BaseModel):
    """Each surface's chain, declared by component names.

    Besides the built-in surfaces, any further ``[surfaces.<name>]`` table declares a new
    surface (a ``SurfaceConfig``), served by ``GET /surfaces/<name>``.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, SurfaceConfig] = Field(init=False)

    search: SearchConfig = SearchConfig()
    related: RelatedConfig = RelatedConfig()
    visual: VisualConfig = VisualConfig()
    board: BoardConfig = BoardConfig()
    popular: PopularChainConfig = PopularChainConfig()
    feed: FeedConfig = FeedConfig()

    def declared(self) -> dict[str, _Chain]:
        """Every surface by name: the built-in ones, then those declared in config."""
        built_in = {name: getattr(self, name) for name in type(self).model_fields}
        return built_in | dict(self.__pydantic_extra__ or {})
