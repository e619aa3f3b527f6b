"""The one-command live demo (`make run`) and the `dagster dev` driver it shares with the tests."""
