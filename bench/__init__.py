"""Benchmarks. `make bench` (or `python -m bench [names...]`) prints what it measured; nothing here is asserted."""
