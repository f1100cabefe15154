"""Forms of the activation UI."""
