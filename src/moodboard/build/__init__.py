"""The composition root of training: one step per component into a versioned artifact.

``build(ws)`` runs every step (``build.steps``, ``build.recommenders``) and publishes the new
version (``build.artifact``); ``build.layout`` says where each component lives in a version,
for the build and for the server's registry alike. ``build`` is imported on first use, so
the server can read the layout without loading the training code.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build", "build_steps"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from moodboard.build import run

        return getattr(run, name)
    raise AttributeError(f"module 'moodboard.build' has no attribute {name!r}")
