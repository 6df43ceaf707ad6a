"""The popular surface's step: ``prepare/popular`` (trending items within optional filters,
the home page's first row).

Every other surface ends with the same fallback (``blend.fill_page``), so a page is never
empty while the catalog and the request's filter allow items.
"""

from __future__ import annotations

from moodboard.data import Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.runner import Prepared, Probe, SurfaceEnv
from moodboard.surfaces.steps import register_prepare


@register_prepare("prepare/popular")
def prepare_popular(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Ask every source for the items that pass the filter and are not excluded; one source
    is asked for exactly the page and kept as it is (its popularity is the score), several
    are asked for ``per_source`` and fused."""
    cfg = env.config
    skip = env.indices(request.exclude)
    f = request.item_filter
    query = SourceQuery(item_filter=f, exclude=skip)
    many = len(cfg.sources) > 1  # fused lists need depth; one list needs the page
    return Prepared(
        {name: Probe(query) for name in cfg.sources},
        max(need, cfg.per_source) if many else need,
        item_filter=f,
        exclude=skip,
        rank=rank_query(request, env.resources),
        keep_single=True,
    )
