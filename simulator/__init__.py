"""Faithful simulator of the Claude Compliance API (deterministic data + HTTP server)."""
