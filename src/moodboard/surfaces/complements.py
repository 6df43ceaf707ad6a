"""Complementary categories (what goes with a shirt: jeans, belts), as the related surface
serves them: per category, its complements by lift, read from the artifact's JSON.

The build learns them from co-engagement (sessions and boards; ``build.complements`` says how).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodboard.config import ComplementsConfig
from moodboard.errors import InputError

_log = logging.getLogger(__name__)

_FORMAT = 1


@dataclass(frozen=True)
class Complement:
    """One complementary category of another, with its lift and support (groups)."""

    category: str
    lift: float
    support: int


@dataclass(frozen=True)
class Complements:
    """Per category path, its complementary categories, best lift first.

    Attributes
    ----------
    pairs
        Category -> complements.
    groups
        The number of co-engagement groups (sessions and boards with two or more items).
    config
        The parameters they were learned with.
    """

    pairs: dict[str, tuple[Complement, ...]] = field(default_factory=dict)
    groups: int = 0
    config: ComplementsConfig = field(default_factory=ComplementsConfig)

    def of(self, category: str | None, limit: int | None = None) -> tuple[Complement, ...]:
        """The complements of one category (none for an unknown or missing one)."""
        found = self.pairs.get(category, ()) if category else ()
        return found if limit is None else found[:limit]

    def to_json(self) -> str:
        """The JSON stored in the artifact."""
        return json.dumps(
            {
                "format": _FORMAT,
                "groups": self.groups,
                "config": self.config.model_dump(mode="json"),
                "complements": {
                    a: [{"category": c.category, "lift": c.lift, "support": c.support} for c in cs]
                    for a, cs in self.pairs.items()
                },
            },
            indent=1,
        )

    def save(self, path: Path) -> None:
        """Write the JSON file (creating its folder)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> Complements:
        """Read a saved file.

        Raises
        ------
        InputError
            If the file is not a complements file of a known format.
        """
        try:
            raw: dict[str, Any] = json.loads(Path(path).read_text())
            if raw.get("format") != _FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {_FORMAT}")
            pairs = {
                a: tuple(Complement(c["category"], float(c["lift"]), int(c["support"])) for c in cs)
                for a, cs in raw["complements"].items()
            }
            cfg = ComplementsConfig.model_validate(raw["config"])
            return cls(pairs, int(raw["groups"]), cfg)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path} is not a readable complements file ({exc}): rebuild the artifact."
            ) from exc
