"""Tasks of the identity queue. A task takes ids, re-reads the world, calls a service and is idempotent."""
