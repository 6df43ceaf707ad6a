"""``python -m moodboard.cli``."""

from moodboard.cli import main

main()
