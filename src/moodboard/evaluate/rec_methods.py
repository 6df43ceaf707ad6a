"""The methods of ``moodboard evaluate recs``: the baselines with their tuning grids and the
learned full-ranking sources of the registry, each as a factory of unfitted configurations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from moodboard.retrieve import CandidateSource
from moodboard.retrieve.registry import BASELINES, full_ranking, source_class

#: A method: returns its candidate configurations as unfitted recommenders (its tuning grid).
Factory = Callable[[], Sequence[CandidateSource]]

#: The baselines' tuning grids (validation picks one point of each).
BASELINE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "popularity": [{}],
    "als": [
        {"factors": f, "regularization": r, "alpha": a}
        for f in (64, 128, 256)
        for r in (0.01, 1.0)
        for a in (10.0, 40.0)
    ],
    "ease": [{"l2": v} for v in (50.0, 200.0, 800.0)],
    "itemknn": [
        {"neighbours": k, "shrink": s} for k in (100, 500, 2000) for s in (10.0, 50.0, 200.0)
    ],
}


def baseline_factories(
    seed: int = 0, grids: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> dict[str, Factory]:
    """``popularity``, ``als``, ``ease``, ``itemknn`` with their tuning grids (seeded).

    Parameters
    ----------
    seed
        Seed of every configuration.
    grids
        Replaces ``BASELINE_GRIDS`` entries, e.g. ``{"ease": [{"l2": 200.0}]}``.
    """
    chosen = {**BASELINE_GRIDS, **(grids or {})}

    def factory(name: str) -> Factory:
        cls = source_class(name)
        return lambda: [cls(cls.Config(**p, seed=seed)) for p in chosen[name]]

    return {name: factory(name) for name in BASELINES}


def learned_factories(seed: int = 0) -> dict[str, Factory]:
    """The learned full-ranking sources of the registry (all but the baselines), each with
    its default config, seeded."""
    return {
        name: _learned_factory(source_class(name), seed)
        for name in full_ranking()
        if name not in BASELINES
    }


def _learned_factory(cls: type[CandidateSource], seed: int) -> Factory:
    def make() -> list[CandidateSource]:
        cfg = cls.Config()
        if "seed" in type(cfg).model_fields:
            cfg = cfg.model_copy(update={"seed": seed})
        return [cls(cfg)]

    return make
