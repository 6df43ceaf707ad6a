"""Ask a surface for a page with a request given by internal indices (as the tests hold them),
and assemble a surface's declared chain over other sources or another config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from moodboard.data import Request
from moodboard.serve.registry import Engine
from moodboard.surfaces import Surface, SurfaceResult, build_surface


def _ids(surface: Surface, items: Sequence[int] | np.ndarray) -> tuple[str, ...]:
    return tuple(surface.env.catalog.ids.external([int(i) for i in items]))


def ask(
    surface: Surface,
    k: int = 24,
    *,
    item: int | None = None,
    items: Sequence[int] | np.ndarray | None = None,
    exclude: Sequence[int] | np.ndarray | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    **fields: Any,
) -> SurfaceResult:
    """The surface's first page of ``k`` items (the page order cut to ``k``)."""
    req = Request(
        surface=surface.name,
        k=k,
        item_id=None if item is None else _ids(surface, [item])[0],
        items=() if items is None else _ids(surface, items),
        exclude=() if exclude is None else _ids(surface, exclude),
        weights=None if weights is None else tuple(float(w) for w in weights),
        **fields,
    )
    res = surface.run(req)
    return replace(res, candidates=res.candidates.head(k))


def chain(
    name: str,
    engine: Engine,
    sources: Mapping[str, Any] | None = None,
    config: Any = None,
    **resources: Any,
) -> Surface:
    """Surface ``name`` as ``config`` (default: the engine's) declares it, over ``sources``
    (default: the engine's), with the engine's resources unless overridden."""
    served = engine.surfaces[name]
    return build_surface(
        name,
        config if config is not None else served.config,
        engine.catalog,
        engine.sources if sources is None else sources,
        engine.settings.seed,
        {**served.env.resources, **resources},
    )
