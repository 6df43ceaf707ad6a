"""The exceptions moodboard raises: one root and a few children."""

from __future__ import annotations


class MoodboardError(Exception):
    """Root of every error moodboard raises on purpose."""


class ConfigError(MoodboardError, ValueError):
    """A parameter or a config value is invalid; the message says what to change."""


class InputError(MoodboardError):
    """An input file or request cannot be used at all (missing, unreadable, wrong shape)."""


class NotFittedError(MoodboardError, RuntimeError):
    """A component was used before ``fit``."""


class NotFoundError(MoodboardError, KeyError):
    """An id that is not in the workspace or the artifact."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(MoodboardError, FileNotFoundError):
    """A public dataset is not where ``MOODBOARD_DATASETS`` says it should be."""


class NotBuiltError(MoodboardError):
    """A capability that this version of moodboard does not have yet."""
