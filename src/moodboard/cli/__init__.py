"""The ``moodboard`` command: one verb per stage (typer + rich)."""

from moodboard.cli import (  # noqa: F401 (the verbs)
    analyze,
    commands,
    evaluate,
    evaluate_attrs,
    evaluate_autocomplete,
    evaluate_broad,
    evaluate_objects,
    evaluate_ope,
    evaluate_text_image,
    evaluate_visual,
    experiment,
    experiment_stats,
    simulate,
    tune,
)
from moodboard.cli.commands import main
from moodboard.cli.common import app

__all__ = ["app", "main"]
