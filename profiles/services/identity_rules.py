"""Identity rules: priority, limits per profile, blocked values and merge protection per identity type."""

import time
from dataclasses import dataclass

from django.db import transaction

from profiles.models import Identity, IdentityRule

# Values no identity type may take: they are what broken clients and test forms send, and they would merge
# everybody into one profile. Compared after normalization (lower-cased and stripped).
BUILTIN_BLOCKED_VALUES = frozenset({
    "null", "undefined", "none", "nil", "nan", "0", "-1", "false", "true", "anonymous", "unknown", "n/a", "na",
    "test", "guest", "user", "[object object]", "00000000-0000-0000-0000-000000000000",
    "test@test.com", "test@example.com", "user@example.com", "email@example.com", "example@example.com",
    "noreply@example.com", "no-reply@example.com", "a@a.com", "asdf@asdf.com", "foo@bar.com",
    "+10000000000", "+11111111111", "+491234567890", "+1234567890", "1234567890", "0000000000",
})

# The stock rules (lower priority wins). ``unique_per_profile``: merge protection.
STOCK_IDENTITY_RULES = [
    {"type": Identity.Type.USER_ID.value, "priority": 10, "max_per_profile": 1, "unique_per_profile": True},
    {"type": Identity.Type.EMAIL.value, "priority": 20, "max_per_profile": 5, "unique_per_profile": False},
    {"type": Identity.Type.PHONE.value, "priority": 30, "max_per_profile": 5, "unique_per_profile": False},
    {"type": Identity.Type.RECORD.value, "priority": 40, "max_per_profile": None, "unique_per_profile": False},
    {"type": Identity.Type.ANONYMOUS_ID.value, "priority": 50, "max_per_profile": None, "unique_per_profile": False},
]

DEFAULT_PRIORITY = 100
RULES_CACHE_SECONDS = 10.0
_cache: dict = {"rules": None, "at": 0.0}


def rules_cache_clear(**_kwargs) -> None:
    """Forget the cached rules and policies (connected to saves and deletes of IdentityRule and TraitPolicy)."""
    _cache["rules"] = None
    from profiles.services import golden

    golden.policies_cache_clear()


@transaction.atomic
def identity_rules_install(*, model=None) -> int:
    """Create the stock rules that do not exist yet (existing ones are left as configured). Returns how many were
    created. ``model``: the IdentityRule class to use (a data migration passes its historical model)."""
    model = model or IdentityRule
    have = set(model.objects.values_list("type", flat=True))
    created = [model(blocked_values=[], **rule) for rule in STOCK_IDENTITY_RULES if rule["type"] not in have]
    model.objects.bulk_create(created)
    return len(created)


@dataclass(frozen=True)
class Rule:
    type: str
    priority: int
    max_per_profile: int | None
    blocked: frozenset
    unique_per_profile: bool


class Rules:
    """The rules of every identity type, read once per batch (a handful of rows)."""

    def __init__(self, rows=None):
        if rows is None:
            rows = list(IdentityRule.objects.all())
        self.by_type = {
            r.type: Rule(r.type, r.priority, r.max_per_profile,
                         frozenset(str(v).strip().lower() for v in (r.blocked_values or [])), r.unique_per_profile)
            for r in rows}

    def get(self, identity_type: str) -> Rule:
        return self.by_type.get(identity_type) or Rule(identity_type, DEFAULT_PRIORITY, None, frozenset(), False)

    def priority(self, identity_type: str) -> int:
        rule = self.by_type.get(identity_type)
        return rule.priority if rule is not None else DEFAULT_PRIORITY

    def blocked(self, identity_type: str, value: str) -> bool:
        # Called for every identity of every processed message: no Rule is built for a type without one.
        normalized = value.strip().lower()
        if not normalized or normalized in BUILTIN_BLOCKED_VALUES:
            return True
        rule = self.by_type.get(identity_type)
        return rule is not None and normalized in rule.blocked

    @classmethod
    def cached(cls) -> "Rules":
        """The rules, re-read at most every RULES_CACHE_SECONDS per process (the pipeline's path reads them per
        batch; an edit in the admin reaches every worker within that time, and this process at once)."""
        now = time.monotonic()
        if _cache["rules"] is None or now - _cache["at"] > RULES_CACHE_SECONDS:
            _cache["rules"], _cache["at"] = cls(), now
        return _cache["rules"]

    def protected_types(self) -> list[str]:
        return [t for t, r in self.by_type.items() if r.unique_per_profile]

    def limited_types(self) -> dict[str, int]:
        return {t: r.max_per_profile for t, r in self.by_type.items() if r.max_per_profile}


def _connect_cache_invalidation() -> None:
    from django.db.models.signals import post_delete, post_save

    from profiles.models import TraitPolicy

    for model in (IdentityRule, TraitPolicy):
        post_save.connect(rules_cache_clear, sender=model, dispatch_uid=f"profiles.rules_cache.save.{model.__name__}")
        post_delete.connect(rules_cache_clear, sender=model,
                            dispatch_uid=f"profiles.rules_cache.delete.{model.__name__}")


_connect_cache_invalidation()
