"""The golden record: lineage (every trait value with its source and time) and survivorship per trait.

``TraitValue`` keeps each distinct value a trait had, per source, with when it was first and last observed and how
often. ``TraitPolicy`` says per trait which value wins ("*" is the default); ``Profile.traits`` holds the winners
(fast reads) and ``Profile.trait_sources`` says why each won. An explicit null ends a trait under "most recent"
(Segment's way to unset it); the other strategies skip empty values.

Sensitive traits (``TraitPolicy.classification``, see profiles.services.sensitive) are kept encrypted in every
store: an observed value is sealed (``seal``: ``cdp.core.crypto.encrypt`` of its canonical JSON) as it enters, and
its lineage row is keyed by a keyed hash of the plain value instead of an md5 (which a guess could be tested
against). Survivorship works on sealed values unchanged: equal values have equal keyed hashes (most frequent), and
only None and empty values, which stay plain, are "empty".
"""

import hashlib
import time
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils.dateparse import parse_datetime

from cdp.core import crypto
from profiles.models import Profile, TraitPolicy, TraitValue

DEFAULT_POLICY = "*"
STOCK_TRAIT_POLICIES = [
    {"trait": DEFAULT_POLICY, "strategy": TraitPolicy.Strategy.MOST_RECENT.value, "source_priority": []},
]

Strategy = TraitPolicy.Strategy


@transaction.atomic
def trait_policies_install(*, model=None) -> int:
    """Create the stock policies that do not exist yet. ``model``: the TraitPolicy class (a data migration passes its
    historical model). Returns how many were created."""
    model = model or TraitPolicy
    have = set(model.objects.values_list("trait", flat=True))
    created = [model(**policy) for policy in STOCK_TRAIT_POLICIES if policy["trait"] not in have]
    model.objects.bulk_create(created)
    return len(created)


def value_hash(value) -> str:
    """The lineage key of an observed value: md5 of its canonical JSON; for a sealed one (``seal``) the keyed hash
    of the plain value. (Text that merely starts like an encrypted value is text like any other.)"""
    if isinstance(value, Sealed):
        return value.hash
    return hashlib.md5(canonical_json(value).encode(), usedforsecurity=False).hexdigest()


def sensitive_hash(text: str) -> str:
    """The lineage key of a sensitive value (its canonical JSON): a keyed hash, 128 bits like the md5 column."""
    return crypto.keyed_hash(text)[:32]


class Sealed(str):
    """The stored form of a sensitive trait's value (``PREFIX`` + a Fernet token), carrying the keyed hash of the
    plain value so that lineage needs no decryption. JSON encodes it as the string it is."""

    hash: str


def seal(value):
    """A sensitive trait's value as it is stored: the encrypted canonical JSON. None and empty values stay as they
    are (they hold nothing, and survivorship must still see them as empty); a sealed value stays sealed.
    ``cdp.core.masking.unseal`` reads it back."""
    if is_empty(value) or isinstance(value, Sealed):
        return value
    text = canonical_json(value)
    sealed = Sealed(crypto.encrypt(text))
    sealed.hash = sensitive_hash(text)
    return sealed



# Built once: json.dumps with options builds an encoder on every call (lineage hashes every observed value).
_CANONICAL = DjangoJSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical_json(value) -> str:
    return _CANONICAL.encode(value)


def is_empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


_cache: dict = {"policies": None, "at": 0.0}
POLICIES_CACHE_SECONDS = 10.0


def policies_cache_clear() -> None:
    _cache["policies"] = None


class Policies:
    """The survivorship policies, read once per batch."""

    def __init__(self, rows=None):
        if rows is None:
            rows = list(TraitPolicy.objects.all())
        default = next((p for p in rows if p.trait == DEFAULT_POLICY and p.strategy), None)
        self.default = (default.strategy, list(default.source_priority or [])) if default \
            else (Strategy.MOST_RECENT.value, [])
        # A policy without a strategy only classifies its trait: survivorship is the default's.
        self.by_trait = {p.trait: (p.strategy, list(p.source_priority or [])) if p.strategy else self.default
                         for p in rows}
        # name -> "normal" / "pii" / "sensitive", for the traits classified explicitly.
        self.classification = {p.trait: p.classification for p in rows
                               if p.classification and p.trait != DEFAULT_POLICY}
        self.sensitive = frozenset(name for name, kind in self.classification.items()
                                   if kind == TraitPolicy.Classification.SENSITIVE)

    def get(self, name: str) -> tuple[str, list[str]]:
        return self.by_trait.get(name, self.default)

    @classmethod
    def cached(cls) -> "Policies":
        """The policies, re-read at most every POLICIES_CACHE_SECONDS per process (and at once in this process
        after a change: see identity_rules.rules_cache_clear)."""
        now = time.monotonic()
        if _cache["policies"] is None or now - _cache["at"] > POLICIES_CACHE_SECONDS:
            _cache["policies"], _cache["at"] = cls(), now
        return _cache["policies"]


def parse_at(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(value)


def _source_rank(order: list[str], source: str) -> int:
    return order.index(source) if source in order else len(order)


def choose(name: str, values: list[dict], policies: Policies) -> tuple[bool, object, dict | None]:
    """The winning value of one trait among its lineage rows (dicts with value, source, observed_at,
    first_observed_at, seen_count). Returns (present, value, explanation)."""
    strategy, order = policies.get(name)
    if not values:
        return False, None, None

    def recency(v):
        return (v["observed_at"], -_source_rank(order, v["source"]))

    if strategy == Strategy.MOST_RECENT:
        winner = max(values, key=recency)
        if winner["value"] is None:
            return False, None, None
        why = "most recent value"
    else:
        candidates = [v for v in values if not is_empty(v["value"])]
        if not candidates:
            return False, None, None
        if strategy == Strategy.SOURCE_PRIORITY:
            best = min(_source_rank(order, v["source"]) for v in candidates)
            winner = max((v for v in candidates if _source_rank(order, v["source"]) == best), key=recency)
            why = (f"from {winner['source'] or 'an unnamed source'}, priority {best + 1} of {len(order)}"
                   if best < len(order) else "no listed source has it: most recent value")
        elif strategy == Strategy.MOST_FREQUENT:
            counts: dict[str, int] = {}
            for v in candidates:
                counts[v["hash"]] = counts.get(v["hash"], 0) + v["seen_count"]
            winner = max(candidates, key=lambda v: (counts[v["hash"]], recency(v)))
            why = f"seen {counts[winner['hash']]} times"
        else:  # first non-empty
            winner = min(candidates, key=lambda v: (v["first_observed_at"], _source_rank(order, v["source"])))
            why = "first non-empty value"
    explanation = {"source": winner["source"], "observed_at": winner["observed_at"].isoformat(),
                   "strategy": strategy, "why": why}
    return True, winner["value"], explanation


def _rows(profile_ids, names=None) -> dict[tuple[int, str], list[dict]]:
    query = TraitValue.objects.filter(profile_id__in=profile_ids)
    if names is not None:
        query = query.filter(name__in=list(names))
    out: dict[tuple[int, str], list[dict]] = {}
    for pk, name, value, vhash, source, first, last, count in query.values_list(
            "profile_id", "name", "value", "value_hash", "source", "first_observed_at", "observed_at", "seen_count"):
        out.setdefault((pk, name), []).append({"value": value, "hash": vhash, "source": source,
                                              "first_observed_at": first, "observed_at": last, "seen_count": count})
    return out


def winners_apply(traits: dict, sources: dict, name: str, values: list[dict], policies: Policies) -> bool:
    """Set (or remove) the winner of ``name`` in ``traits``/``sources``; True when something changed."""
    present, value, explanation = choose(name, values, policies)
    before = (name in traits, traits.get(name), sources.get(name))
    if present:
        traits[name] = value
        sources[name] = explanation
    else:
        traits.pop(name, None)
        sources.pop(name, None)
    return before != (name in traits, traits.get(name), sources.get(name))


@transaction.atomic
def golden_record_recompute(*, profile: Profile, names=None, policies: Policies | None = None) -> Profile:
    """Recompute the winners of the given traits (all traits with lineage when ``names`` is None) from the lineage.
    Traits without any lineage row (set before lineage existed) are left as they are, unless named."""
    policies = policies or Policies()
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    rows = _rows([profile.pk], names)
    traits, sources = dict(profile.traits or {}), dict(profile.trait_sources or {})
    todo = set(names) if names is not None else {name for _pk, name in rows}
    if names is None:
        todo |= {name for name in sources if name not in todo}  # lineage moved away: drop the winner
    changed = False
    for name in sorted(todo):
        changed |= winners_apply(traits, sources, name, rows.get((profile.pk, name), []), policies)
    if changed:
        profile.traits, profile.trait_sources = traits, sources
        profile.save(update_fields=["traits", "trait_sources", "updated_at"])
    return profile


def trait_values_record(entries: list[tuple[int, str, object, str, datetime]],
                        sensitive: frozenset | None = None) -> None:
    """Record observed trait values: (profile_id, name, value, source, observed_at). Repeats of a (profile, name,
    source, value) bump seen_count and move observed_at forward; first_observed_at keeps the earliest. Values of
    ``sensitive`` names (by default the classified ones) are sealed unless they are already."""
    if not entries:
        return
    if sensitive is None:
        sensitive = Policies.cached().sensitive
    merged: dict[tuple, list] = {}
    for pk, name, value, source, at in entries:
        if sensitive and name in sensitive:
            value = seal(value)
        key = (pk, name, source[:64], value_hash(value))
        if key in merged:
            row = merged[key]
            row[1] = min(row[1], at)
            row[2] = max(row[2], at)
            row[3] += 1
        else:
            merged[key] = [value, at, at, 1]
    from profiles.services.observations import _json, _pg, _pg_execute

    if _pg():
        _pg_execute(
            "INSERT INTO profiles_traitvalue (profile_id, name, source, value_hash, value, first_observed_at, "
            "observed_at, seen_count) SELECT (x->>0)::bigint, x->>1, x->>2, x->>3, x->4, (x->>5)::timestamptz, "
            "(x->>6)::timestamptz, (x->>7)::int FROM jsonb_array_elements(%b::jsonb) AS e(x) "
            "ORDER BY 1, 2, 3, 4 "
            "ON CONFLICT (profile_id, name, source, value_hash) DO UPDATE SET "
            "seen_count = profiles_traitvalue.seen_count + EXCLUDED.seen_count, "
            "first_observed_at = LEAST(profiles_traitvalue.first_observed_at, EXCLUDED.first_observed_at), "
            "observed_at = GREATEST(profiles_traitvalue.observed_at, EXCLUDED.observed_at)",
            [_json([[k[0], k[1], k[2], k[3], v[0], v[1], v[2], v[3]]
                    for k, v in merged.items()])])
        return
    # SQLite (3.24+): the same upsert, many rows per statement.
    from django.db import connection

    at = connection.ops.adapt_datetimefield_value
    rows = [(k[0], k[1], k[2], k[3], None if v[0] is None else canonical_json(v[0]), at(v[1]), at(v[2]), v[3])
            for k, v in merged.items()]
    step = 2000
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        sql = ("INSERT INTO profiles_traitvalue (profile_id, name, source, value_hash, value, first_observed_at, "
               "observed_at, seen_count) VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
               + " ON CONFLICT (profile_id, name, source, value_hash) DO UPDATE SET "
               "seen_count = seen_count + excluded.seen_count, "
               "first_observed_at = MIN(first_observed_at, excluded.first_observed_at), "
               "observed_at = MAX(observed_at, excluded.observed_at)")
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in chunk for value in row])


def lineage_rows(profile_ids, names) -> dict[tuple[int, str], list[dict]]:
    return _rows(profile_ids, names)


