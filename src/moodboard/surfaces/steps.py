"""The surfaces' own steps by name: ``prepare/<surface>`` and ``blend/<kind>``, and the
factory that assembles a declared chain (``build_surface``).

A new surface is a config entry naming its prepare step, plus that step registered here with
``@register_prepare("prepare/<name>")``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from moodboard.data import Catalog
from moodboard.errors import ConfigError
from moodboard.rank import make_ranker
from moodboard.retrieve import CandidateSource, Fuser
from moodboard.surfaces.runner import BlendFn, PrepareFn, Retrieved, Step, Surface, SurfaceEnv

_log = logging.getLogger(__name__)

#: Registry name -> prepare step.
PREPARES: dict[str, PrepareFn] = {}
#: Registry name -> blend step.
BLENDS: dict[str, BlendFn] = {}
#: ``(env, ranker name) -> None``: checks a blend step's config against the chain when the
#: chain is built (an engine load), raising ``ConfigError``, and may prepare its state.
BlendSetup = Callable[[SurfaceEnv, str], None]
#: Registry name -> the blend step's setup, for the steps that have one.
BLEND_SETUPS: dict[str, BlendSetup] = {}


def _register(table: dict, prefix: str, name: str) -> Callable[[Any], Any]:
    if not name.startswith(prefix):
        raise ConfigError(f"A step's name must start with {prefix!r}. Got {name!r} instead.")

    def add(fn: Any) -> Any:
        table[name] = fn
        return fn

    return add


def register_prepare(name: str) -> Callable[[PrepareFn], PrepareFn]:
    """A decorator registering a prepare step as ``name`` (``prepare/<surface>``).

    Raises
    ------
    ConfigError
        If ``name`` does not start with ``prepare/``.
    """
    return _register(PREPARES, "prepare/", name)


def register_blend(name: str, setup: BlendSetup | None = None) -> Callable[[BlendFn], BlendFn]:
    """A decorator registering a blend step as ``name`` (``blend/<kind>``), with the
    ``setup`` that ``build_surface`` runs on a chain declaring it.

    Raises
    ------
    ConfigError
        If ``name`` does not start with ``blend/``.
    """
    if setup is not None:
        BLEND_SETUPS[name] = setup
    return _register(BLENDS, "blend/", name)


@register_blend("blend/none")
def no_blend(retrieved: Retrieved, prepared: Any, need: int, env: SurfaceEnv) -> Any:
    """The ranked list as it is."""
    return retrieved.main


def _step(table: Mapping[str, Any], name: str, what: str) -> Step:
    try:
        return Step(name, table[name])
    except KeyError:
        raise ConfigError(
            f"Unknown {what} step {name!r}: choose among {', '.join(sorted(table))}."
        ) from None


def build_surface(
    name: str,
    config: Any,
    catalog: Catalog,
    sources: Mapping[str, CandidateSource],
    seed: int = 0,
    resources: Mapping[str, Any] | None = None,
) -> Surface:
    """The chain ``config`` declares for surface ``name``.

    Parameters
    ----------
    name
        The surface's name.
    config
        Its section of ``[surfaces]`` (``prepare``, ``sources``, ``fuse``, ``ranker``,
        ``blend``, ``fallback`` and the surface's own settings).
    catalog, sources
        The items and the loaded sources (names not loaded are skipped).
    seed
        Seeds the stochastic steps (exploration, ``rank/shuffle``) with user and request.
    resources
        Named extras the surface's steps use (``understand``, ``encode``, ``complements``,
        ``encode_upload``, ``histories``).

    Raises
    ------
    ConfigError
        If a step or ranker name is not registered, or the blend step's setup refuses the
        chain (e.g. ``blend/compose`` weighing scores its ranker does not write).
    """
    resources = dict(resources or {})
    env = SurfaceEnv(catalog, dict(sources), config, seed, resources)
    ranker = make_ranker(config.ranker, seed, resources)
    blend = _step(BLENDS, config.blend, "blend")
    if blend.name in BLEND_SETUPS:
        BLEND_SETUPS[blend.name](env, ranker.name)
    return Surface(
        name,
        _step(PREPARES, config.prepare or f"prepare/{name}", "prepare"),
        config.chain_sources(),
        Fuser(config.fuse),
        ranker,
        blend,
        config.fallback,
        env,
    )
