"""Contract tests every component must pass, written once (ARCHITECTURE.md, section 4).

``CandidateSourceContract`` is a pytest mixin: a test class that inherits it and provides a
``source_name`` fixture (a registry name) runs every check of the candidate-source contract
on that source, fitted on ``contract_data()``, a small hand-made catalog.
"""

from moodboard.testing.sources import (
    FAST_CONFIGS,
    CandidateSourceContract,
    contract_data,
    contract_query,
    fast_source,
)

__all__ = [
    "FAST_CONFIGS",
    "CandidateSourceContract",
    "contract_data",
    "contract_query",
    "fast_source",
]
