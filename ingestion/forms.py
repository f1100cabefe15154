"""Forms of the sources UI."""
