"""The pipeline steps as plain Python: ingest, assembly, indexing, edits, reconciliation, quarantine."""
