"""Deterministic assignment of shoppers to experiment arms.

A shopper's bucket in a hash space is ``blake2b(salt + ":" + user id) mod buckets``: the same
shopper gets the same bucket in every process, after every restart and rebuild, and two salts
give independent buckets. A layer hashes with ``layer:<name>``: an experiment of the layer
holds a range of those buckets, so experiments of one layer never share a shopper; within the
experiment the arm is chosen by the experiment's own salt against the arms' cumulative
weights, so the arm split does not depend on which layer range the shopper fell in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moodboard.errors import ConfigError
from moodboard.experiment.spec import ExperimentSettings, ExperimentSpec


def bucket(salt: str, unit: str, buckets: int) -> int:
    """The bucket of ``unit`` under ``salt``: a stable hash in ``0 .. buckets - 1``."""
    digest = hashlib.blake2b(f"{salt}:{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def layer_salt(layer: str) -> str:
    """The salt a layer's buckets are hashed with."""
    return f"layer:{layer}"


def arm_of(spec: ExperimentSpec, unit: str, buckets: int) -> str:
    """The arm of ``unit`` in ``spec`` (whether it is in the experiment at all is the
    layer's business: ``Assigner``)."""
    b = bucket(spec.hash_salt, unit, buckets)
    edge = 0.0
    for arm in spec.arms:
        edge += arm.weight * buckets
        if b < edge:
            return arm.name
    return spec.arms[-1].name


def allocate(
    spec: ExperimentSpec, others: Iterable[ExperimentSpec], buckets: int
) -> ExperimentSpec:
    """``spec`` with a bucket range of its layer: its own if it has one (checked against the
    running experiments of the layer), else the first free range of ``traffic`` share.

    Raises
    ------
    ConfigError
        If its range overlaps a running experiment of its layer, or the layer has no free
        range that large.
    """
    taken = sorted(
        o.buckets
        for o in others
        if o.layer == spec.layer and o.name != spec.name and o.status == "running" and o.buckets
    )
    size = max(1, round(spec.traffic * buckets))
    if spec.buckets is not None:
        lo, hi = spec.buckets
        if hi > buckets:
            raise ConfigError(
                f"Experiment {spec.name!r} holds buckets {lo}..{hi} but a layer has {buckets}: "
                f"give a range within 0..{buckets}."
            )
        for a, b in taken:
            if lo < b and a < hi:
                raise ConfigError(_overlap(spec, others, (a, b)))
        return spec
    start = 0
    for a, b in [*taken, (buckets, buckets)]:
        if a - start >= size:
            return spec.model_copy(update={"buckets": (start, start + size)})
        start = max(start, b)
    free = buckets - sum(b - a for a, b in taken)
    raise ConfigError(
        f"Layer {spec.layer!r} has no free range of {size} buckets ({spec.traffic:.2%} of the "
        f"traffic) for experiment {spec.name!r}: {free} of {buckets} are free. Lower its "
        "traffic, stop an experiment of the layer, or put it in another layer."
    )


def _overlap(spec: ExperimentSpec, others: Iterable[ExperimentSpec], rng: tuple[int, int]) -> str:
    who = next(o.name for o in others if o.buckets == rng and o.layer == spec.layer)
    return (
        f"Experiment {spec.name!r} overlaps experiment {who!r} in layer {spec.layer!r} (buckets "
        f"{spec.buckets} and {rng}): experiments of one layer are mutually exclusive. Give it "
        "free buckets, leave `buckets` out to have a free range allocated, or use another layer."
    )


def check_experiments(specs: Sequence[ExperimentSpec], buckets: int) -> None:
    """Check a set of experiments can run together.

    Raises
    ------
    ConfigError
        If two share a name, two running experiments of one layer overlap, a running one has no
        bucket range, or two running experiments of different layers override the same key.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"Experiment names must be unique. {dup} is declared twice.")
    running = [s for s in specs if s.status == "running"]
    for j, s in enumerate(running):
        if s.buckets is None:
            raise ConfigError(
                f"Experiment {s.name!r} has no bucket range: create it with the store."
            )
        for o in running[:j]:
            if o.layer == s.layer and s.buckets[0] < o.buckets[1] and o.buckets[0] < s.buckets[1]:
                raise ConfigError(_overlap(s, [o], o.buckets))
            shared = s.override_keys() & o.override_keys()
            if o.layer != s.layer and shared:
                raise ConfigError(
                    f"Experiments {o.name!r} (layer {o.layer!r}) and {s.name!r} (layer "
                    f"{s.layer!r}) both override {sorted(shared)}: a shopper could be in both. "
                    "Put them in one layer (mutually exclusive) or override different keys."
                )


#: The arm an interleaving experiment's shoppers are logged in.
INTERLEAVED = "interleaved"


@dataclass(frozen=True)
class Assignment:
    """A shopper's arms (``{experiment: arm}``) and the overrides they add up to; ``interleave``:
    the interleaving experiment whose two arms their pages merge (at most one)."""

    arms: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    interleave: ExperimentSpec | None = None

    def key(self) -> tuple[tuple[str, str], ...]:
        """A hashable key of the arms (equal arms: equal overrides)."""
        return tuple(sorted(self.arms.items()))


NONE = Assignment()


class Assigner:
    """Assigns a shopper to the arms of the running experiments.

    Parameters
    ----------
    specs
        The experiments (stopped ones are kept for their reports, never assigned).
    settings
        The platform's settings (buckets, holdout).

    Raises
    ------
    ConfigError
        If the experiments cannot run together (``check_experiments``).
    """

    def __init__(self, specs: Sequence[ExperimentSpec], settings: ExperimentSettings) -> None:
        check_experiments(specs, settings.buckets)
        self.specs = tuple(specs)
        self.settings = settings
        self._running = tuple(s for s in specs if s.status == "running")

    def __call__(self, unit: str | None, when: datetime) -> Assignment:
        """The arms of ``unit`` (a user id) for a request at ``when``; none for an anonymous
        request or a held-out shopper."""
        if unit is None or not self._running:
            return NONE
        n = self.settings.buckets
        if self.settings.holdout and bucket(self.settings.holdout_salt, unit, n) < (
            self.settings.holdout * n
        ):
            return NONE
        arms: dict[str, str] = {}
        overrides: dict[str, Any] = {}
        layers: dict[str, int] = {}
        interleave = None
        for spec in self._running:
            if not spec.active(when):
                continue
            b = layers.get(spec.layer)
            if b is None:
                b = layers[spec.layer] = bucket(layer_salt(spec.layer), unit, n)
            lo, hi = spec.buckets or (0, 0)
            if not lo <= b < hi:
                continue
            if spec.kind == "interleave":
                if interleave is None:
                    interleave, arms[spec.name] = spec, INTERLEAVED
                continue
            name = arm_of(spec, unit, n)
            arms[spec.name] = name
            overrides |= next(a for a in spec.arms if a.name == name).overrides
        return Assignment(arms, overrides, interleave) if arms else NONE
