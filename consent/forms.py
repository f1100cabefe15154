"""Forms of the consent UI."""
