import pytest

from profiles.services.identity_rules import rules_cache_clear


@pytest.fixture(autouse=True)
def _fresh_identity_rules():
    """Identity rules and trait policies are cached per process for a few seconds; a test that changes them (and
    rolls back) must not leave them cached for the next."""
    rules_cache_clear()
    yield
    rules_cache_clear()
