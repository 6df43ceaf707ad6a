"""The web app's files: Jinja2 templates and static assets (JS, CSS), all served locally."""

from pathlib import Path

UI_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "UI_DIR"]
