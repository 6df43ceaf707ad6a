"""``[autocomplete]``: completions of what a shopper types in the search box."""

from __future__ import annotations

from pydantic import Field

from moodboard.config.models import _Frozen


class AutocompleteModelConfig(_Frozen):
    """The learned ranker of completions (LightGBM lambdarank, saved as its text model)."""

    trees: int = Field(default=80, ge=1, le=2_000)
    leaves: int = Field(default=15, ge=2, le=255)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    #: Logged queries whose prefixes make the training groups (a seeded sample above it).
    max_queries: int = Field(default=6_000, ge=1)
    #: Training groups (prefix, logged query) with a hit needed to train; fewer: prior order.
    min_groups: int = Field(default=50, ge=1)
    #: Prefix lengths (characters) the training groups are made of: 1..this.
    max_prefix_chars: int = Field(default=8, ge=1, le=50)


class AutocompleteConfig(_Frozen):
    """Autocomplete (``surfaces/autocomplete``, ``GET /autocomplete``).

    Candidates are logged queries whose results got engagement (time-decayed popularity),
    their first ``head_words`` words, and catalog phrases (title words and attribute combos);
    a sorted prefix index finds them, a learned model ranks them.
    """

    #: Completions returned when ``k`` is not given, and the most a request may ask.
    k: int = Field(default=8, ge=1)
    max_k: int = Field(default=20, ge=1, le=100)
    #: Longest prefix in characters; a longer one is refused with a 422 that says so.
    max_prefix_chars: int = Field(default=100, ge=1, le=1_000)
    #: A completion holding one of these words or phrases (normalized) is never returned.
    blocked_terms: tuple[str, ...] = ()
    #: Half-life of a logged search's weight, in days (None: no decay).
    half_life_days: float | None = Field(default=14.0, gt=0)
    #: Actions on a search page's items that count as engagement with its query.
    engaged_actions: tuple[str, ...] = ("click", "save", "add_to_cart", "purchase")
    #: Logged queries also make candidates of their first 1..head_words words.
    head_words: int = Field(default=2, ge=0, le=5)
    #: Catalog phrases: 1..title_ngram words anywhere in titles, 1..title_lead_words leading
    #: words, each in at least min_catalog_count titles.
    title_ngram: int = Field(default=2, ge=0, le=4)
    title_lead_words: int = Field(default=3, ge=0, le=6)
    min_catalog_count: int = Field(default=2, ge=1)
    #: Attribute combinations made phrases (e.g. baseColour + articleType: "navy blue shirts").
    combos: tuple[tuple[str, ...], ...] = (("baseColour", "articleType"), ("gender", "articleType"))
    #: Longest candidate text, in characters.
    max_candidate_chars: int = Field(default=60, ge=5, le=200)
    #: Candidates the ranker scores per prefix (the best by prior score).
    candidates: int = Field(default=48, ge=1, le=500)
    #: Prefixes up to this many characters have their candidates precomputed at build time.
    precompute_chars: int = Field(default=2, ge=0, le=4)
    #: Prefixes of at least this many characters that no candidate starts with get the
    #: candidates of their one-edit variants (typo tolerance); 0: off.
    typo_min_chars: int = Field(default=3, ge=0)
    #: Most completions sharing their first two words (1: one per head, more diverse).
    per_head: int = Field(default=1, ge=1)
    model: AutocompleteModelConfig = AutocompleteModelConfig()
    seed: int = 0
