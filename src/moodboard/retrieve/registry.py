"""Every candidate source by name: the one registry the build, the server and evaluation use.

``SOURCES`` maps a registry name (the ``kind`` a source's candidates and its saved
``source.json`` carry) to its class; ``load_source`` opens any saved source by the kind its
folder names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from moodboard.data import Catalog
from moodboard.errors import ConfigError
from moodboard.retrieve.base import CandidateSource, read_meta
from moodboard.retrieve.baselines import ALS, EASE, ItemKNN, Popularity
from moodboard.retrieve.dense import DenseSource, VisualSource
from moodboard.retrieve.interests import UserInterests
from moodboard.retrieve.lexical import BM25Source
from moodboard.retrieve.popular import PopularSource
from moodboard.retrieve.sequence import SequenceRecommender
from moodboard.retrieve.text_image import TextImageSource
from moodboard.retrieve.two_tower import TwoTower
from moodboard.retrieve.walks import GraphWalks

#: Registry name -> source class.
SOURCES: dict[str, type[CandidateSource]] = {
    cls.kind: cls
    for cls in (
        BM25Source,
        DenseSource,
        VisualSource,
        TextImageSource,
        PopularSource,
        SequenceRecommender,
        GraphWalks,
        TwoTower,
        UserInterests,
        Popularity,
        ALS,
        EASE,
        ItemKNN,
    )
}

#: The baselines of the offline protocol (``moodboard evaluate recs``).
BASELINES = ("popularity", "als", "ease", "itemknn")


def source_class(name: str) -> type[CandidateSource]:
    """The class registered under ``name``.

    Raises
    ------
    ConfigError
        If no source has that name.
    """
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(
            f"Unknown candidate source {name!r}: choose among {', '.join(SOURCES)}."
        ) from None


def full_ranking() -> list[str]:
    """The names of the sources that score the whole catalog for histories."""
    return [name for name, cls in SOURCES.items() if cls.full_ranking]


def load_source(folder: Path | str, catalog: Catalog | None = None) -> CandidateSource:
    """Open the saved source in ``folder``, whatever its kind.

    Raises
    ------
    InputError
        If the folder holds no saved source.
    ConfigError
        If its kind is not registered.
    """
    return source_class(read_meta(Path(folder))["kind"]).load(folder, catalog)


def attach_all(sources: Mapping[str, CandidateSource]) -> None:
    """Link each loaded source to the others it searches (``CandidateSource.attach``).

    Raises
    ------
    ConfigError
        If a source needs one that is not among ``sources``.
    """
    for source in sources.values():
        source.attach(sources)
