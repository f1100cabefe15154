"""The field mapping of an activation: which traits, computed traits and profile fields go out, under which names.

    {"email": "traits.email", "first_name": "traits.first_name", "ltv": "computed.lifetime_value",
     "customer_id": "profile.id"}

Only what the mapping names leaves the CDP. Sources: ``traits.<name>`` (a dotted path into nested traits),
``computed.<key>`` (a computed trait), ``profile.id``, ``profile.created_at``, ``profile.last_seen_at``.

A sensitive trait (encrypted at rest, docs/privacy.md) is never sent: a mapping naming one is refused, and a value
encrypted, or of a trait classified sensitive after the mapping was saved, goes out as null.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime

from cdp.core.masking import is_sealed
from profiles.models import ComputedTrait, days_since
from profiles.selectors import trait_is_sensitive

OUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
TRAIT_PATH = re.compile(r"^[A-Za-z0-9_\-$]+(\.[A-Za-z0-9_\-$]+)*$")
PROFILE_FIELDS = ("id", "created_at", "last_seen_at")
MAX_FIELDS = 100


class MappingInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def mapping_clean(mapping) -> dict[str, str]:
    """Check a mapping; raises MappingInvalid naming ``mapping.<out name>`` for each wrong entry."""
    if not isinstance(mapping, dict) or not mapping:
        raise MappingInvalid({"mapping": ['Map at least one field: {"email": "traits.email"}.']})
    if len(mapping) > MAX_FIELDS:
        raise MappingInvalid({"mapping": [f"Map at most {MAX_FIELDS} fields."]})
    errors: dict[str, list[str]] = {}
    computed_keys = [s.split(".", 1)[1] for s in mapping.values() if isinstance(s, str) and s.startswith("computed.")]
    known = set(ComputedTrait.objects.filter(key__in=computed_keys).values_list("key", flat=True))
    for name, source in mapping.items():
        place = f"mapping.{name}"
        if not OUT_NAME.match(str(name)):
            errors[place] = ["Name the field with letters, digits, _ . - (starting with a letter or _)."]
            continue
        if not isinstance(source, str) or "." not in source:
            errors[place] = ['Map to "traits.<name>", "computed.<key>" or "profile.id".']
            continue
        kind, rest = source.split(".", 1)
        if kind == "traits":
            if not TRAIT_PATH.match(rest):
                errors[place] = [f"“{rest}” is not a trait name."]
            elif trait_is_sensitive(rest):
                errors[place] = [f"“{rest.split('.', 1)[0]}” is a sensitive trait: it is encrypted at rest and never "
                                 "sent to destinations."]
        elif kind == "computed":
            if rest not in known:
                errors[place] = [f"There is no computed trait “{rest}”."]
        elif kind == "profile":
            if rest not in PROFILE_FIELDS:
                errors[place] = [f"Profile fields: {', '.join(PROFILE_FIELDS)}."]
        else:
            errors[place] = ['Map to "traits.<name>", "computed.<key>" or "profile.id".']
    if errors:
        raise MappingInvalid(errors)
    return {str(k): v for k, v in mapping.items()}


def computed_keys(mapping: dict) -> list[str]:
    return sorted({s.split(".", 1)[1] for s in mapping.values() if s.startswith("computed.")})


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _trait(traits: dict, path: str):
    value = traits
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def computed_value(value_type: str, number, text, time):
    if value_type == ComputedTrait.ValueType.NUMBER:
        return number
    if value_type == ComputedTrait.ValueType.TEXT:
        return text
    if value_type == ComputedTrait.ValueType.DAYS_SINCE:
        return days_since(time)
    return _plain(time)


def payload_build(mapping: dict, row: dict, computed: dict) -> dict:
    """The mapped payload of one profile: ``row`` has id, traits, created_at, last_seen_at; ``computed`` maps
    computed keys to values. Fields without a value go out as null, so that a value that went away is a change."""
    out = {}
    for name, source in mapping.items():
        kind, rest = source.split(".", 1)
        if kind == "traits":
            value = _trait(row.get("traits") or {}, rest)
            out[name] = None if is_sealed(value) or trait_is_sensitive(rest) else value
        elif kind == "computed":
            out[name] = computed.get(rest)
        else:
            out[name] = _plain(row.get(rest))
    return out


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
