"""Content and query understanding: text and image encoders, query parsing, fine-tuning."""

from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.query import (
    ParsedQuery,
    QueryUnderstanding,
    QueryUnderstandingConfig,
    parse_query,
)

__all__ = [
    "EmbeddingCache",
    "ParsedQuery",
    "QueryUnderstanding",
    "QueryUnderstandingConfig",
    "content_key",
    "parse_query",
]
