"""Serving the marts to BI tools: the published file (publish.py) and the shipped panel queries (panels.py)."""
