"""Tasks of the segments queue."""
