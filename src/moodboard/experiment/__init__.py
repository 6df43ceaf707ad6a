"""Experiments inside the engine: assignment, exposure, metrics, statistics, reports."""
