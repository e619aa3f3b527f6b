"""The simulator's routes by endpoint family; simulator/app.py wires them to paths."""
