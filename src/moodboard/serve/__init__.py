"""Serving: artifact build and registry (the HTTP app arrives with the API)."""
