"""Where experiments live: one JSON file each in the workspace's ``experiments/`` folder.

``moodboard experiment create`` writes a file, ``stop`` rewrites it; a running server looks at
the folder every ``experiment.reload_every_s`` and takes the new set (``signature`` changes),
the way it picks up a new ``CURRENT``. Experiments declared in the config file
(``experiment.declared``) join them. Before an experiment is saved it is checked: its arms'
overrides must give valid settings, name components the live artifact has, and fit its layer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides
from moodboard.errors import ConfigError, NotFoundError
from moodboard.experiment.assign import allocate, check_experiments
from moodboard.experiment.spec import ExperimentSpec
from moodboard.ingest.eventlog import atomic_write_bytes

_log = logging.getLogger(__name__)

#: Rankers that need no trained model (the control rankers).
MODEL_FREE_RANKERS = frozenset({"rank/noop", "rank/shuffle"})
#: The largest experiment file read (a spec is a few KB).
MAX_FILE_BYTES = 256 * 1024


def parse_spec(data: Any, where: str = "the experiment") -> ExperimentSpec:
    """An ``ExperimentSpec`` from JSON data.

    Raises
    ------
    ConfigError
        If it is not a valid experiment (the message names each problem).
    """
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'experiment'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"{where} is not a valid experiment: {problems}.") from None


class ExperimentStore:
    """The experiments of a workspace.

    Parameters
    ----------
    root
        The workspace folder (experiments are in ``root/experiments``).
    declared
        Experiments declared in the config file.
    """

    def __init__(self, root: Path | str, declared: Sequence[ExperimentSpec] = ()) -> None:
        self.root = Path(root)
        self.declared = tuple(declared)

    @property
    def folder(self) -> Path:
        """The folder of the experiment files."""
        return self.root / "experiments"

    def path(self, name: str) -> Path:
        """The file of experiment ``name``."""
        return self.folder / f"{name}.json"

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when an experiment is created, changed or removed."""
        if not self.folder.is_dir():
            return ()
        out = []
        for f in sorted(self.folder.glob("*.json")):
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            out.append((f.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def load(self) -> list[ExperimentSpec]:
        """Every experiment: the declared ones, then the files (a file that does not parse is
        logged and left out, never blocks the others; declared ones win a name clash).

        Raises
        ------
        ConfigError
            If the declared experiments are not a valid set.
        """
        specs = {s.name: s for s in self.declared}
        if self.folder.is_dir():
            for f in sorted(self.folder.glob("*.json")):
                try:
                    spec = self._read(f)
                except (ConfigError, OSError) as exc:
                    _log.error("experiment file %s left out: %s", f, exc)
                    continue
                if spec.name in specs:
                    _log.error(
                        "experiment file %s left out: %r is declared in config", f, spec.name
                    )
                    continue
                specs[spec.name] = spec
        return list(specs.values())

    def _read(self, f: Path) -> ExperimentSpec:
        if f.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{f} is over {MAX_FILE_BYTES} bytes")
        try:
            data = json.loads(f.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{f} is not JSON: {exc}") from None
        spec = parse_spec(data, str(f))
        if f"{spec.name}.json" != f.name:
            raise ConfigError(
                f"{f} holds experiment {spec.name!r}: its file must be {spec.name}.json"
            )
        return spec

    def get(self, name: str) -> ExperimentSpec:
        """Experiment ``name``.

        Raises
        ------
        NotFoundError
            If there is none of that name.
        """
        for spec in self.load():
            if spec.name == name:
                return spec
        known = ", ".join(sorted(s.name for s in self.load())) or "none yet"
        raise NotFoundError(f"No experiment named {name!r}. Experiments: {known}.")

    def create(
        self, spec: ExperimentSpec, settings: Settings, manifest: Mapping[str, Any] | None
    ) -> ExperimentSpec:
        """Check ``spec``, give it a bucket range and save it.

        Raises
        ------
        ConfigError
            If an experiment of that name exists, an arm's overrides are invalid or name what
            the live artifact lacks (``check_against``), or it does not fit its layer.
        """
        existing = self.load()
        if any(s.name == spec.name for s in existing):
            raise ConfigError(
                f"An experiment named {spec.name!r} exists already: pick another name (a "
                "stopped experiment keeps its name and its report)."
            )
        check_against(spec, settings, manifest)
        spec = allocate(spec, existing, settings.experiment.buckets)
        check_experiments([*existing, spec], settings.experiment.buckets)
        self.save(spec)
        return spec

    def save(self, spec: ExperimentSpec) -> None:
        """Write ``spec``'s file atomically (a server sees the old file or the new one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(spec.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.path(spec.name), text.encode())

    def stop(self, name: str, reason: str, when: datetime | None = None) -> ExperimentSpec:
        """Stop experiment ``name`` now (or at ``when``), saying why.

        Raises
        ------
        NotFoundError
            If there is none of that name.
        ConfigError
            If it is declared in the config file (stop it there).
        """
        spec = self.get(name)
        if any(s.name == name for s in self.declared):
            raise ConfigError(
                f"Experiment {name!r} is declared in the config file: set its status there."
            )
        when = when or datetime.now(UTC)
        stop = min(spec.stop, when) if spec.stop else when
        if spec.start and stop <= spec.start:
            stop = spec.start
        update = {"status": "stopped", "stopped_reason": reason[:2000], "stop": stop}
        spec = spec.model_copy(update=update)
        self.save(spec)
        return spec


def check_against(
    spec: ExperimentSpec, settings: Settings, manifest: Mapping[str, Any] | None
) -> None:
    """Check each arm's overrides give valid settings whose components the artifact has.

    Parameters
    ----------
    spec
        The experiment.
    settings
        The settings the overrides apply to.
    manifest
        The live artifact's manifest (None: nothing built yet, only the settings are checked).

    Raises
    ------
    ConfigError
        If an override key is unknown or its value invalid, or an arm names a ranker or a
        source the artifact does not have (the message says which and what it has).
    """
    for arm in spec.arms:
        try:
            configured = apply_overrides(settings, arm.overrides)
        except ConfigError as exc:
            raise ConfigError(f"Arm {arm.name!r} of experiment {spec.name!r}: {exc}") from None
        if manifest is None:
            continue
        built = {n for n, e in manifest["components"].items() if e.get("path") is not None}
        touched = {k.split(".")[1] for k in arm.overrides if k.count(".") >= 2}
        declared, base = configured.surfaces.declared(), settings.surfaces.declared()
        for name in sorted(touched):
            chain = declared.get(name)
            if chain is None:
                raise ConfigError(
                    f"Arm {arm.name!r} overrides surface {name!r}, which is not declared. "
                    f"Surfaces: {', '.join(sorted(declared))}."
                )
            before = base.get(name)
            if before is not None and chain.ranker == before.ranker:
                pass
            elif chain.ranker not in MODEL_FREE_RANKERS and chain.ranker not in built:
                raise ConfigError(
                    f"Arm {arm.name!r} serves {name!r} with ranker {chain.ranker!r}, which the "
                    f"live artifact has not built: use one it has "
                    f"({', '.join(sorted(MODEL_FREE_RANKERS | (built & _rankers(manifest))))})."
                )
            had = set(before.chain_sources()) if before is not None else set()
            missing = [s for s in chain.chain_sources() if s not in built and s not in had]
            if missing:
                raise ConfigError(
                    f"Arm {arm.name!r} asks surface {name!r} for sources {missing}, which the "
                    "live artifact has not built: rebuild with them first."
                )


def _rankers(manifest: Mapping[str, Any]) -> set[str]:
    return {n for n in manifest["components"] if n.startswith("rank/")}
