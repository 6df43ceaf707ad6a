"""One router per surface, plus catalog (products, boards) and ops (events, health, metrics)."""
