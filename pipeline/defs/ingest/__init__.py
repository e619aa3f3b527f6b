"""Ingestion from the Compliance API into the raw layer of the warehouse."""
