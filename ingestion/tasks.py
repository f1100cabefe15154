"""Tasks of the ingestion queue."""
