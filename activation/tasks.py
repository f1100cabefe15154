"""Tasks of the activation queue."""
