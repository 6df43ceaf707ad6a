"""The ``moodboard`` command: one verb per stage (typer + rich)."""

from moodboard.cli import commands, evaluate, evaluate_ope, simulate, tune  # noqa: F401 (the verbs)
from moodboard.cli.commands import main
from moodboard.cli.common import app

__all__ = ["app", "main"]
