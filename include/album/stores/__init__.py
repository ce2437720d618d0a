"""Adapters of the stores, each taking a plain client: Postgres (SQL files), S3 media, Qdrant, the graph."""
