"""Consent and privacy tasks (default queue)."""
