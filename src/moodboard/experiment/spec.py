"""What an experiment is: its arms, their traffic and overrides, its layer and its window.

An experiment splits its units (shoppers) into arms by hashing ``(salt, user id)`` into
``buckets``; each arm is a set of settings overrides (dotted keys, as ``--set`` takes them)
that the serving chain applies to the requests of the arm's shoppers. Experiments of one
``layer`` are mutually exclusive: each holds a range of the layer's buckets (``traffic``
share of them), so a shopper is in at most one experiment of a layer; experiments of
different layers are independent (different hashes) and must not override the same key.
A global ``holdout`` share of shoppers sees no experiment at all.

Only serving-time parameters may be overridden (``surfaces.*``: a surface's sources, ranker,
fusion, blend weights, diversity, explore, ...); whatever they name must exist in the live
artifact (``experiment.store.check_against``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Names of experiments, arms and layers: what can stand in a file name and a URL.
NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$"
#: Only these sections of the settings can be overridden per request.
SERVING_PREFIXES = ("surfaces.",)
#: The sum of the arms' weights may miss 1 by this much (decimal rounding).
_WEIGHT_TOLERANCE = 1e-6


class ArmSpec(BaseModel):
    """One arm: its name, its share of the experiment's traffic and its settings overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME)
    weight: float = Field(gt=0, le=1)
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _serving_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key.startswith(SERVING_PREFIXES) or any(not p for p in key.split(".")):
                raise ValueError(
                    f"override key {key!r} is not a serving-time setting: an arm may override "
                    f"only keys under {', '.join(SERVING_PREFIXES)} (e.g. "
                    "surfaces.feed.ranker or surfaces.feed.blend.weights)"
                )
        return value


class ExperimentSpec(BaseModel):
    """An experiment.

    ``buckets`` is the range ``[start, end)`` of its layer's buckets it holds (``traffic``
    share of them, allocated by ``experiment.store`` when it is created without one);
    ``control`` names the arm the others are compared with (default: the first). ``start``
    and ``stop`` bound the requests it applies to (the request's time: the simulated clock in
    a simulation); ``status`` ``stopped`` ends it early, with ``stopped_reason``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME)
    salt: str = Field(default="", max_length=100)
    layer: str = Field(default="default", pattern=NAME)
    arms: tuple[ArmSpec, ...] = Field(min_length=2, max_length=10)
    control: str | None = None
    traffic: float = Field(default=1.0, gt=0, le=1)
    buckets: tuple[int, int] | None = None
    start: datetime | None = None
    stop: datetime | None = None
    status: Literal["running", "stopped"] = "running"
    stopped_reason: str | None = Field(default=None, max_length=2000)
    surfaces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    guardrails: tuple[str, ...] = ()
    description: str = Field(default="", max_length=2000)
    #: ``ab``: each shopper sees one arm; ``interleave``: each shopper's pages of the
    #: experiment's surfaces interleave its two arms (team draft), clicks credit the arms.
    kind: Literal["ab", "interleave"] = "ab"

    @field_validator("start", "stop")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be distinct. Got {names}")
        total = sum(a.weight for a in self.arms)
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            shown = ", ".join(f"{a.name}={a.weight:g}" for a in self.arms)
            raise ValueError(
                f"the arms' weights must sum to 1. Got {shown} (sum {total:g}): scale them"
            )
        if self.kind == "interleave" and len(self.arms) != 2:
            raise ValueError(f"an interleaving experiment has exactly two arms. Got {names}")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the arms {names}")
        if self.start and self.stop and self.stop <= self.start:
            raise ValueError(f"stop {self.stop} must be after start {self.start}")
        if self.buckets is not None and not 0 <= self.buckets[0] < self.buckets[1]:
            raise ValueError(
                f"buckets must be a range [start, end) with start < end. Got {self.buckets}"
            )
        return self

    @property
    def control_arm(self) -> str:
        """The name of the control arm."""
        return self.control or self.arms[0].name

    @property
    def hash_salt(self) -> str:
        """The salt the arms are hashed with (default: the name)."""
        return self.salt or self.name

    def override_keys(self) -> set[str]:
        """Every key an arm overrides."""
        return {k for a in self.arms for k in a.overrides}

    def affected_surfaces(self) -> tuple[str, ...]:
        """The surfaces whose pages expose a shopper: ``surfaces`` if given, else the ones
        the arms' overrides name (``surfaces.<name>.*``)."""
        if self.surfaces:
            return self.surfaces
        return tuple(sorted({k.split(".")[1] for k in self.override_keys() if k.count(".") >= 2}))

    def active(self, when: datetime) -> bool:
        """Whether it applies to a request at ``when``."""
        if self.status != "running":
            return False
        if self.start is not None and when < self.start:
            return False
        return self.stop is None or when < self.stop


class ExperimentSettings(BaseModel):
    """The experiment platform's settings (``[experiment]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Buckets per layer: the granularity of traffic shares (10,000: 0.01%).
    buckets: int = Field(default=10_000, ge=100, le=1_000_000)
    #: Share of shoppers held out of every experiment (they see the configured engine).
    holdout: float = Field(default=0.0, ge=0, lt=1)
    holdout_salt: str = Field(default="moodboard-holdout", min_length=1, max_length=100)
    #: How often a server looks for created, changed or stopped experiments (seconds).
    reload_every_s: float = Field(default=2.0, gt=0, le=3600)
    #: How often a server checks the guardrails of running experiments (0: never).
    guardrail_check_every_s: float = Field(default=0.0, ge=0)
    #: Significance level of verdicts, intervals and guardrail bounds.
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    #: SRM check's p-value threshold: below it the verdict is blocked.
    srm_threshold: float = Field(default=0.001, gt=0, lt=0.5)
    #: Days before an experiment's start whose values are CUPED's covariate.
    pre_period_days: int = Field(default=7, ge=0, le=90)
    #: Experiments declared in the config file (``[[experiment.declared]]``).
    declared: tuple[ExperimentSpec, ...] = ()
