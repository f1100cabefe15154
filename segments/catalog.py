"""What the data actually contains, for the rule builder and for validating rules: trait names and types, event
names, the properties of an event, and suggested values.

Whole-table listings are cached (``CATALOG_CACHE_SECONDS``) because on a large installation they read millions of
rows; the checks that validation needs (``trait_exists``, ``event_exists``) fall back to an indexed or short-
circuiting query when a name is not in the cached listing, so a trait that arrived a minute ago is never refused.
"""

from __future__ import annotations

from collections import Counter

from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform

from cdp.core.masking import is_sealed
from profiles.models import ComputedTrait, Event, Profile
from profiles.selectors import trait_is_sensitive

CATALOG_CACHE_SECONDS = 300
# How many recent rows the suggestions look at: enough to show the common values, cheap on any installation.
SAMPLE_ROWS = 5000

_JSON_TYPES = {  # jsonb_typeof (PostgreSQL) and json_each.type (SQLite) to one vocabulary
    "string": "text", "text": "text", "number": "number", "integer": "number", "real": "number",
    "boolean": "boolean", "true": "boolean", "false": "boolean", "object": "object", "array": "array",
    "null": "null",
}


def _cached(key: str, compute):
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CATALOG_CACHE_SECONDS)
    return value


def catalog_clear() -> None:
    cache.delete_many(["segments:catalog:traits", "segments:catalog:events"])


def catalog_traits() -> list[dict]:
    """Every trait name on live profiles with its most common JSON type and how many profiles carry it, most
    common first."""
    return _cached("segments:catalog:traits", _traits_compute)


def _traits_compute() -> list[dict]:
    if connection.vendor == "postgresql":
        sql = ("SELECT t.key, jsonb_typeof(t.value), count(*) FROM profiles_profile p, jsonb_each(p.traits) t "
               "WHERE p.merged_into_id IS NULL GROUP BY 1, 2")
    else:
        sql = ("SELECT t.key, t.type, count(*) FROM profiles_profile p, json_each(p.traits) t "
               "WHERE p.merged_into_id IS NULL GROUP BY 1, 2")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    counts: Counter = Counter()
    types: dict[str, Counter] = {}
    for name, kind, n in rows:
        counts[name] += n
        kind = _JSON_TYPES.get(kind, "text")
        if kind != "null":
            types.setdefault(name, Counter())[kind] += n
    return [{"name": name, "type": (types.get(name) or Counter({"text": 1})).most_common(1)[0][0], "count": n}
            for name, n in counts.most_common()]


def trait_exists(name: str) -> bool:
    if any(t["name"] == name for t in catalog_traits()):
        return True
    if "." in name:  # a nested path: its top-level trait must exist
        return trait_exists(name.split(".", 1)[0])
    return Profile.objects.filter(merged_into__isnull=True, traits__has_key=name).exists()


def catalog_events() -> list[dict]:
    """Every event name received, with how many events carry it, most common first."""
    return _cached("segments:catalog:events", lambda: [
        {"name": name, "count": n}
        for name, n in Event.objects.exclude(name="").order_by().values_list("name").annotate(n=Count("id"))
        .order_by("-n", "name")])


def event_exists(name: str) -> bool:
    return any(e["name"] == name for e in catalog_events()) or Event.objects.filter(name=name).exists()


def catalog_event_properties(event: str) -> list[dict]:
    """The properties the latest events of this name carry, with their most common type."""
    samples = Event.objects.filter(name=event).order_by("-timestamp").values_list("properties", flat=True)
    types: dict[str, Counter] = {}
    for properties in samples[:500]:
        for key, value in (properties or {}).items():
            types.setdefault(key, Counter())[_python_type(value)] += 1
    return [{"name": key, "type": counter.most_common(1)[0][0]} for key, counter in sorted(types.items())]


def _python_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "text"


def catalog_computed() -> list[ComputedTrait]:
    return list(ComputedTrait.objects.order_by("name"))


def catalog_values(*, kind: str, name: str, q: str = "", limit: int = 20) -> list[str]:
    """Common values of a trait, a computed trait or an event property ("Event name.property"), among recent
    rows, optionally those containing ``q``; most common first. A sensitive trait has none to suggest: its values
    are encrypted, and a rule may only test whether it is set. Nor does a value that is encrypted."""
    if kind == "trait" and trait_is_sensitive(name):
        return []
    if kind == "trait":
        recent = Profile.objects.filter(merged_into__isnull=True).order_by("-id")[:SAMPLE_ROWS]
        values = (Profile.objects.filter(pk__in=recent.values("pk"))
                  .annotate(v=KeyTextTransform(name, "traits")).values_list("v", flat=True))
    elif kind == "computed":
        from profiles.models import ComputedValue

        recent = ComputedValue.objects.filter(trait__key=name).order_by("-id")[:SAMPLE_ROWS]
        values = ComputedValue.objects.filter(pk__in=recent.values("pk")).values_list("value_text", flat=True)
    elif kind == "event_property":
        event, _, prop = name.rpartition(".")
        recent = Event.objects.filter(name=event).order_by("-timestamp")[:SAMPLE_ROWS]
        values = (Event.objects.filter(pk__in=recent.values("pk"))
                  .annotate(v=KeyTextTransform(prop, "properties")).values_list("v", flat=True))
    else:
        raise ValueError(f"unknown catalog kind {kind!r}")
    counter = Counter(str(v) for v in values
                      if v not in (None, "") and not is_sealed(v) and q.lower() in str(v).lower())
    return [value for value, _ in counter.most_common(limit)]


def catalog_purposes() -> list:
    """The consent purposes, for consent conditions."""
    from consent.models import Purpose

    return list(Purpose.objects.order_by("name"))


def catalog_segments() -> list:
    """The segments, for membership conditions (the builder leaves out the segment being edited)."""
    from segments.models import Segment

    return list(Segment.objects.order_by("name").only("pk", "slug", "name"))
