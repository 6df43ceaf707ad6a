"""One comparison of configurations online: the same shoppers through the engine under each
arm's settings overrides.

An arm is ``NAME=OVERRIDES``: a name (letters, digits, ``_``, ``-``) and a settings override
list (``config.overrides``: ``key=value`` pairs separated by ``;`` or ``,``), e.g.
``shuffled=surfaces.feed.ranker=rank/shuffle;surfaces.search.ranker=rank/shuffle`` or
``control=`` (no override). Each arm runs in its own copy of the workspace (its live artifact
and events; older versions are not copied), with the same shoppers, session plans and
per-decision draws (common random numbers, ``simulate.sessions``), its overrides applying to
the pages served and to its rebuilds. Arms cannot override ``simulate.*``: they share their
shoppers.

The last arm is the control: each other arm is compared with it on each metric of
``engine.METRICS`` by the paired per-user difference (``compare.PairedStats``). ``diff`` is the
first arm minus the control (with two arms, arm 1 - arm 2); ``diffs`` holds every arm minus
the control, keyed ``"<arm> - <control>"``.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides, parse_overrides
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.simulate.compare import PairedStats
from moodboard.simulate.engine import LONG_METRICS, METRICS, EngineRun, simulate_through_engine
from moodboard.simulate.fresh_metrics import growth_report

_log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Arm:
    """An arm: its name and its settings overrides (dotted key -> value)."""

    name: str
    overrides: dict[str, Any]


def parse_arm(text: str) -> Arm:
    """An arm from ``NAME=OVERRIDES`` (see the module docstring).

    Raises
    ------
    ConfigError
        If the name is missing or not made of letters, digits, ``_`` and ``-``, an override
        is malformed, or one overrides ``simulate.*``.
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.fullmatch(name):
        raise ConfigError(
            "An arm must look like NAME=OVERRIDES with a name of letters, digits, '_' or '-' "
            f"(e.g. shuffled=surfaces.feed.ranker=rank/shuffle, or control=). Got {text!r}."
        )
    overrides = parse_overrides(rest)
    shared = [k for k in overrides if k.split(".")[0] == "simulate"]
    if shared:
        raise ConfigError(
            f"Arm {name!r} overrides {shared}: the arms share their shoppers, so simulate.* is "
            "set for all of them (--users, --days, --seed or the config file)."
        )
    return Arm(name, overrides)


def check_arms(arms: Sequence[Arm]) -> None:
    """Check there are at least two arms, with distinct names.

    Raises
    ------
    ConfigError
        If not.
    """
    names = [a.name for a in arms]
    if len(arms) < 2 or len(set(names)) != len(names):
        raise ConfigError(
            f"A comparison needs at least two arms with distinct names. Got {names} instead."
        )


def copy_workspace(ws: Workspace, dest: Path) -> Workspace:
    """A copy of ``ws`` in ``dest`` (database, events, boards, caches, the live artifact; the
    other artifact versions are left out).

    Raises
    ------
    ConfigError
        If ``dest`` exists already.
    """
    if dest.exists():
        raise ConfigError(f"{dest} exists already: give an empty folder for the arms.")
    live = ws.current_artifact()

    def skip(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != ws.artifacts_dir:
            return []
        return [n for n in names if n != live]

    shutil.copytree(ws.root, dest, symlinks=True, ignore=skip)
    return Workspace(dest).init()


@dataclass
class Comparison:
    """Each arm's run and the paired differences with the control (the last arm)."""

    runs: dict[str, EngineRun]

    @property
    def control(self) -> str:
        """The last arm's name."""
        return list(self.runs)[-1]

    def paired(self, arm: str) -> dict[str, PairedStats]:
        """Per metric, the statistics of ``arm`` minus the control, user by user."""
        base = self.runs[self.control].per_user
        return {
            m: PairedStats.of(self.runs[arm].per_user[m], base[m])
            for m in (*METRICS, *LONG_METRICS)
        }

    def as_dict(self) -> dict[str, Any]:
        """``{"arms": {name: {metric: mean}}, "diff": {metric: {"estimate", "ci"}}, "diffs":
        {"<arm> - <control>": ...}, "control", "users", "start", "days"}``, and with
        ``simulate.catalog_growth`` on ``"catalog_growth"`` (``fresh_metrics.growth_report``)."""
        names = list(self.runs)
        diffs = {
            f"{a} - {self.control}": {m: p.as_dict() for m, p in self.paired(a).items()}
            for a in names[:-1]
        }
        first = self.runs[names[0]]
        growth = {a: r.growth for a, r in self.runs.items() if r.growth is not None}
        return {
            "arms": {a: r.metrics() for a, r in self.runs.items()},
            "diff": diffs[f"{names[0]} - {self.control}"],
            "diffs": diffs,
            "control": self.control,
            "users": first.users,
            "start": first.start.date().isoformat(),
            "days": first.days,
            # with simulate.catalog_growth on: the new products and the catalog's coverage
            **({"catalog_growth": growth_report(growth, self.control)} if growth else {}),
        }


def compare_arms(
    ws: Workspace,
    settings: Settings,
    arms: Sequence[Arm],
    folder: Path,
    *,
    randomized_days: int = 0,
    rebuild_every: int | None = None,
    progress: Callable[[int], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> Comparison:
    """Run the same shoppers through a copy of ``ws`` per arm (in ``folder/<arm>``) and
    compare them (see the module docstring).

    Raises
    ------
    ConfigError
        If there are fewer than two arms, two share a name, an arm's overrides are invalid,
        or an arm's folder exists already.
    InputError
        As ``simulate_through_engine``.
    """
    check_arms(arms)
    configured = {a.name: apply_overrides(settings, a.overrides) for a in arms}
    runs = {}
    for arm in arms:
        copy = copy_workspace(ws, folder / arm.name)
        _log.info("arm %s in %s", arm.name, copy.root)
        if say:
            say(f"arm {arm.name}")
        runs[arm.name] = simulate_through_engine(
            copy,
            configured[arm.name],
            randomized_days=randomized_days,
            rebuild_every=rebuild_every,
            progress=progress,
            say=say,
        )
    return Comparison(runs)
