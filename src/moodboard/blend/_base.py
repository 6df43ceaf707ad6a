"""What the blend components share: the config base and the checks of their inputs."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from moodboard.data import Candidates
from moodboard.errors import ConfigError


class BlendConfig(BaseModel):
    """Base of the blend components' configs: JSON round-trip, unknown keys rejected, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def rows_of(table: np.ndarray, cand: Candidates, what: str, owner: str) -> np.ndarray:
    """The rows of a catalog-wide ``table`` for the candidates' items.

    Raises
    ------
    ConfigError
        If ``table`` has fewer rows than the largest candidate item index needs.
    """
    table = np.asarray(table)
    if len(cand) and int(cand.items.max()) >= len(table):
        raise ConfigError(
            f"The '{what}' of {owner} must have a row per catalog item (at least "
            f"{int(cand.items.max()) + 1}). Got {len(table)} rows instead."
        )
    return table[cand.items]
