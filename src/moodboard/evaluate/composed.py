"""Composed queries: does "this photo, but in <colour>" find that article in that colour?

Protocol (``moodboard evaluate composed``): pairs of products A and B of the live catalog
with the same article type and gender and another colour (B stands for the at least
``min_items`` products of that type, gender and colour); a seeded sample of ``pairs`` of them.
Each pair asks, through the served chains (``Engine.visual``, ``Engine.search``), for 10
products:

- ``image``: A's catalog photo alone (``/visual-search``);
- ``text``: B's colour alone ("navy blue", ``/search``);
- ``composed``: A's photo with B's colour as ``text`` (``/visual-search?text=``), as served;
- ``composed, vector only``: the same with ``attribute_first`` off (the composed vector alone);
- ``composed, words only``: the same with ``text_weight_named`` 0 (the colour word as a
  must-match, the photo's own vector).

``precision@10``: the share of the 10 with A's article type and B's colour; ``type@10`` and
``colour@10`` each alone.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Request
from moodboard.errors import InputError
from moodboard.surfaces import Surface, build_surface

_log = logging.getLogger(__name__)

__all__ = ["ComposedEvalConfig", "ComposedReport", "colour_pairs", "composed_precision"]


class ComposedEvalConfig(BaseModel):
    """How many pairs, how many products each target needs, the cut-off and the seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: int = Field(default=200, ge=1, le=10_000)
    min_items: int = Field(default=10, ge=1)
    k: int = Field(default=10, ge=1, le=100)
    seed: int = 0


@dataclass
class ComposedReport:
    """Per method: ``precision@k``, ``type@k``, ``colour@k`` and milliseconds per query."""

    pairs: int
    k: int
    methods: dict[str, dict[str, float]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"pairs": self.pairs, "k": self.k, "methods": self.methods, "params": self.params}


def colour_pairs(engine: Any, cfg: ComposedEvalConfig) -> list[tuple[int, str]]:
    """A seeded sample of (product A with an image, another colour of its type and gender
    that at least ``min_items`` products have).

    Raises
    ------
    InputError
        If the catalog has no such pair (no colours, types or images).
    """
    cat = engine.catalog
    types, genders = cat.attribute("articleType"), cat.attribute("gender")
    colours = cat.attribute("baseColour")
    has = engine.has_images()
    counts = Counter(zip(types, genders, colours, strict=True))
    by_group: dict[tuple[Any, Any], list[str]] = {}
    for (t, g, c), n in counts.items():
        if t and g and c and n >= cfg.min_items:
            by_group.setdefault((t, g), []).append(c)
    pool = [
        i
        for i in np.flatnonzero(has)
        if colours[i]
        and len(set(by_group.get((types[i], genders[i]), ())) - {colours[i]})
        and cat.image[i]
        and Path(cat.image[i]).is_file()
    ]
    if not pool:
        raise InputError(
            "Composed evaluation needs products with an image, a colour, an article type and a "
            f"gender, and other colours of the same type with {cfg.min_items}+ products."
        )
    rng = np.random.default_rng(cfg.seed)
    picked = rng.choice(pool, size=min(cfg.pairs, len(pool)), replace=False)
    out = []
    for i in picked:
        others = sorted(set(by_group[(types[i], genders[i])]) - {colours[i]})
        out.append((int(i), str(others[int(rng.integers(len(others)))])))
    return out


def _variants(engine: Any) -> dict[str, Surface]:
    """The served visual chain and its two halves."""
    visual = engine.visual
    env = visual.env
    out = {"composed": visual}
    for name, change in (
        ("composed, vector only", {"attribute_first": False}),
        ("composed, words only", {"text_weight_named": 0.0}),
    ):
        cfg = env.config.model_copy(update=change)
        out[name] = build_surface(
            "visual", cfg, env.catalog, env.sources, env.seed, env.resources
        ).with_rank(visual.rank)
    return out


def composed_precision(
    engine: Any,
    cfg: ComposedEvalConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> ComposedReport:
    """Precision@k of image alone, text alone and composed queries over colour pairs.

    Parameters
    ----------
    engine
        A loaded ``serve.registry.Engine`` whose catalog has images and colours.
    cfg
        The sample and cut-off.
    progress
        Receives a message per method.

    Raises
    ------
    InputError
        If the catalog has no pair (``colour_pairs``).
    """
    cfg = cfg or ComposedEvalConfig()
    say = progress or (lambda m: _log.info(m))
    pairs = colour_pairs(engine, cfg)
    cat = engine.catalog
    types = np.asarray(cat.attribute("articleType"), dtype=object)
    colours = np.asarray(cat.attribute("baseColour"), dtype=object)
    photos = {i: Path(cat.image[i]).read_bytes() for i, _ in pairs}
    variants = _variants(engine)

    def ask(method: str, i: int, colour: str) -> np.ndarray:
        if method == "image":
            req = Request(surface="visual", image=photos[i], k=cfg.k)
            return engine.visual.run(req).candidates.items[: cfg.k]
        if method == "text":
            req = Request(surface="search", query=colour.lower(), k=cfg.k)
            return engine.search.run(req).candidates.items[: cfg.k]
        req = Request(surface="visual", image=photos[i], query=colour.lower(), k=cfg.k)
        return variants[method].run(req).candidates.items[: cfg.k]

    report = ComposedReport(len(pairs), cfg.k)
    for method in ("image", "text", *variants):
        say(f"{method}: {len(pairs)} pairs")
        t0 = time.perf_counter()
        both, same_type, same_colour = [], [], []
        for i, colour in pairs:
            items = ask(method, i, colour)
            t, c = types[items] == types[i], colours[items] == colour
            both.append((t & c).sum() / cfg.k)
            same_type.append(t.sum() / cfg.k)
            same_colour.append(c.sum() / cfg.k)
        report.methods[method] = {
            f"precision@{cfg.k}": round(float(np.mean(both)), 4),
            f"type@{cfg.k}": round(float(np.mean(same_type)), 4),
            f"colour@{cfg.k}": round(float(np.mean(same_colour)), 4),
            "ms_per_query": round((time.perf_counter() - t0) * 1e3 / len(pairs), 2),
        }
    report.params = {
        "seed": cfg.seed,
        "min_items": cfg.min_items,
        "text_weight": engine.visual.config.text_weight,
        "text_weight_named": engine.visual.config.text_weight_named,
        "head": "dense/text_image" in engine.sources,
    }
    return report
