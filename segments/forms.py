"""Forms of the segment builder."""
