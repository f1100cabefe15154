"""Every write to profiles. Keyword-only arguments, <noun>_<verb>, atomic.

Identity resolution here is the minimal deterministic one (user id, email, phone, anonymous id, source record):
the first identity that is known decides the profile, and the others are attached to it. The unification issue
replaces the inside of ``identities_resolve`` (rules, limits, merges) behind the same interface.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from profiles.models import Event, Identity, Profile
from profiles.signals import profile_changed_on_commit

# Which identity decides when a message carries several that point to different profiles.
IDENTITY_PRIORITY = [
    Identity.Type.USER_ID,
    Identity.Type.EMAIL,
    Identity.Type.PHONE,
    Identity.Type.RECORD,
    Identity.Type.ANONYMOUS_ID,
]


@dataclass
class Observation:
    """What one standardized message says about one person, as ingestion hands it over."""

    identities: list[tuple[str, str]]
    timestamp: datetime
    source: str = ""
    channel: str = ""
    traits: dict = field(default_factory=dict)
    event_type: str | None = None
    event_name: str = ""
    properties: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    message_id: str = ""
    # Segment's alias: an earlier user id or anonymous id of the same person (linked, never guessed).
    previous_id: str = ""


def _rank(identity_type: str) -> int:
    return IDENTITY_PRIORITY.index(identity_type) if identity_type in IDENTITY_PRIORITY else len(IDENTITY_PRIORITY)


@transaction.atomic
def identities_resolve(*, identities: list[tuple[str, str]], source: str = "", at: datetime | None = None) -> Profile:
    """The profile these identities belong to, created if none is known. Unknown identities are attached."""
    if not identities:
        raise ValueError("At least one identity is needed to resolve a profile.")
    at = at or timezone.now()
    query = Q()
    for identity_type, value in identities:
        query |= Q(type=identity_type, value=value)
    known = sorted(Identity.objects.filter(query).select_related("profile"), key=lambda i: _rank(i.type))
    profile = known[0].profile if known else Profile.objects.create(first_seen_at=at, last_seen_at=at)
    have = {(i.type, i.value) for i in known}
    changed = not known
    for identity_type, value in identities:
        if (identity_type, value) in have:
            continue
        try:
            with transaction.atomic():
                Identity.objects.create(profile=profile, type=identity_type, value=value, source=source)
                changed = True
        except IntegrityError:
            # Another worker attached it meanwhile; the first one to arrive keeps it.
            pass
    if changed:
        profile_changed_on_commit([profile.pk])
    return profile


@transaction.atomic
def profile_traits_update(*, profile: Profile, traits: dict, at: datetime | None = None) -> Profile:
    """Merge traits into the golden record (most recent wins); an explicit None removes a trait."""
    at = at or timezone.now()
    merged = dict(profile.traits or {})
    for key, value in traits.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    profile.traits = merged
    profile.first_seen_at = min(filter(None, [profile.first_seen_at, at]))
    profile.last_seen_at = max(filter(None, [profile.last_seen_at, at]))
    profile.save(update_fields=["traits", "first_seen_at", "last_seen_at", "updated_at"])
    profile_changed_on_commit([profile.pk])
    return profile


class _IdentityConflict(Exception):
    """Another transaction created one of the identities this batch meant to create; the batch re-resolves."""


# How often a batch re-resolves after losing an identity-creation race before giving up (and failing the batch,
# which the caller retries).
OBSERVATIONS_CONFLICT_RETRIES = 5
IDENTITY_VALUE_MAX = Identity._meta.get_field("value").max_length


@transaction.atomic
def observations_apply(*, observations: list[Observation]) -> list[int]:
    """Resolve, update traits and append events for a batch. Returns the id of the profile of each observation.

    In bulk: one query finds every known identity of the batch, new profiles and identities are inserted in one
    statement each, the touched profiles are locked, read and updated in one statement each, and the events go in
    with one INSERT. Identities are unique by (type, value): when a concurrent batch created one of ours first,
    this batch rolls back to its savepoint and resolves again, now seeing the other's identities.
    ``profile_changed`` is sent on commit with every touched profile.
    """
    if not observations:
        return []
    for index, obs in enumerate(observations):
        if not obs.identities and not obs.previous_id:
            raise ValueError(f"Observation {index} has no identity; at least one is needed to resolve a profile.")
        for identity_type, value in obs.identities:
            if not value or len(value) > IDENTITY_VALUE_MAX:
                raise ValueError(f"Observation {index}: the {identity_type} identity must have 1 to "
                                 f"{IDENTITY_VALUE_MAX} characters.")
    for _attempt in range(OBSERVATIONS_CONFLICT_RETRIES):
        try:
            with transaction.atomic():
                return _observations_apply_once(observations)
        except _IdentityConflict:
            continue
    raise IntegrityError("Identities kept being created concurrently; the batch is left for a retry.")


def _identity_keys(obs: Observation, assigned: dict) -> list[tuple[str, str]]:
    keys = list(obs.identities)
    if obs.previous_id:
        # Segment's previousId is an earlier user id or anonymous id: link the one that is known, else both.
        previous = [(Identity.Type.USER_ID.value, obs.previous_id), (Identity.Type.ANONYMOUS_ID.value, obs.previous_id)]
        keys += [key for key in previous if key in assigned] or previous
    return keys


def _merge_traits(traits: dict, new: dict) -> bool:
    changed = False
    for key, value in new.items():
        if value is None:
            if key in traits:
                del traits[key]
                changed = True
        elif traits.get(key, _MISSING) != value:
            traits[key] = value
            changed = True
    return changed


_MISSING = object()


def _observations_apply_once(observations: list[Observation]) -> list[int]:
    now = timezone.now()
    all_keys: set[tuple[str, str]] = set()
    for obs in observations:
        all_keys.update(obs.identities)
        if obs.previous_id:
            all_keys.update({(Identity.Type.USER_ID.value, obs.previous_id),
                             (Identity.Type.ANONYMOUS_ID.value, obs.previous_id)})
    # A profile reference: a real id (> 0), or a new profile of this batch (< 0).
    assigned: dict[tuple[str, str], int] = _identities_known(all_keys)
    new_identities: list[tuple[tuple[str, str], int, str]] = []
    new_count = 0
    refs: list[int] = []
    for obs in observations:
        keys = _identity_keys(obs, assigned)
        known = [key for key in keys if key in assigned]
        if known:
            ref = assigned[min(known, key=lambda key: _rank(key[0]))]
        else:
            new_count += 1
            ref = -new_count
        for key in keys:
            if key not in assigned:
                assigned[key] = ref
                new_identities.append((key, ref, obs.source))
        refs.append(ref)

    # Lock and read the existing profiles this batch touches (in id order, so that batches do not deadlock).
    existing_ids = sorted({ref for ref in refs if ref > 0})
    state: dict[int, dict] = {}
    if existing_ids:
        for pk, traits, first_seen, last_seen in _profiles_lock(existing_ids):
            state[pk] = {"traits": dict(traits or {}), "first": first_seen, "last": last_seen, "changed": False}
        if len(state) != len(existing_ids):
            raise _IdentityConflict  # a profile went away meanwhile (erased); resolve again
    for ref in range(-new_count, 0):
        state[ref] = {"traits": {}, "first": None, "last": None, "changed": True}

    # Traits: within the batch, the most recent observation wins (stable for equal timestamps).
    for index in sorted(range(len(observations)), key=lambda i: observations[i].timestamp):
        obs, entry = observations[index], state[refs[index]]
        if obs.traits and _merge_traits(entry["traits"], obs.traits):
            entry["changed"] = True
        if entry["first"] is None or obs.timestamp < entry["first"]:
            entry["first"], entry["changed"] = obs.timestamp, True
        if entry["last"] is None or obs.timestamp > entry["last"]:
            entry["last"], entry["changed"] = obs.timestamp, True

    real: dict[int, int] = {ref: ref for ref in existing_ids}
    if new_count:
        refs_new = list(range(-1, -new_count - 1, -1))
        created = _profiles_create([state[ref] for ref in refs_new], now)
        real.update(dict(zip(refs_new, created, strict=True)))

    if new_identities:
        rows = sorted(((key[0], key[1], real[ref], source[:64]) for key, ref, source in new_identities))
        if _identities_insert(rows, now) != len(rows):
            raise _IdentityConflict

    changed = [(pk, state[pk]) for pk in existing_ids if state[pk]["changed"]]
    if changed:
        _profiles_update(changed, now)

    events = [(real[ref], obs.event_type, obs.event_name[:200], obs.channel[:32], obs.properties, obs.context,
               obs.timestamp, obs.source[:64], obs.message_id[:128])
              for obs, ref in zip(observations, refs, strict=True) if obs.event_type]
    if events:
        _events_insert(events, now)

    profile_ids = [real[ref] for ref in refs]
    profile_changed_on_commit(profile_ids)
    return profile_ids


# --- bulk statements: one per step and batch; PostgreSQL gets constant statements with binary arrays ------------


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _pg_execute(sql: str, params: list) -> list[tuple]:
    """Run a statement through a psycopg cursor with server-side binding, on Django's connection and in its
    transaction: constant statements with binary array parameters (``unnest``), prepared by psycopg after a few
    uses. Quoting thousands of parameters on the client, as the ORM does, costs more than the statements."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


_json_default = DjangoJSONEncoder().default


def _json(value) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _identities_known(keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Which of these identities exist, and the profile each points to: one query for the whole batch."""
    if not keys:
        return {}
    if _pg():
        types, values = zip(*keys, strict=True)
        rows = _pg_execute(
            "SELECT i.type, i.value, i.profile_id FROM profiles_identity i "
            "JOIN unnest(%b::text[], %b::text[]) AS u(t, v) ON i.type = u.t AND i.value = u.v",
            [list(types), list(values)])
        return {(t, v): p for t, v, p in rows}
    by_type: dict[str, list[str]] = {}
    for identity_type, value in keys:
        by_type.setdefault(identity_type, []).append(value)
    query = Q()
    for identity_type, values in by_type.items():
        query |= Q(type=identity_type, value__in=values)
    return {(t, v): p for t, v, p in Identity.objects.filter(query).values_list("type", "value", "profile_id")}


def _profiles_lock(ids: list[int]) -> list[tuple[int, dict, datetime | None, datetime | None]]:
    """Lock and read the given profiles, in id order (so that concurrent batches never deadlock on them)."""
    if _pg():
        rows = _pg_execute("SELECT id, traits::text, first_seen_at, last_seen_at FROM profiles_profile "
                           "WHERE id = ANY(%b::bigint[]) ORDER BY id FOR UPDATE", [ids])
        return [(pk, json.loads(traits) if traits else {}, first, last) for pk, traits, first, last in rows]
    return list(Profile.objects.select_for_update().filter(id__in=ids).order_by("id")
                .values_list("id", "traits", "first_seen_at", "last_seen_at"))


def _profiles_create(entries: list[dict], now: datetime) -> list[int]:
    """Insert new profiles; returns their ids in the same order."""
    if _pg():
        rows = _pg_execute(
            "INSERT INTO profiles_profile (created_at, updated_at, first_seen_at, last_seen_at, traits) "
            "SELECT %b, %b, f, l, t::jsonb FROM unnest(%b::timestamptz[], %b::timestamptz[], %b::text[]) "
            "AS u(f, l, t) RETURNING id",
            [now, now, [e["first"] for e in entries], [e["last"] for e in entries],
             [_json(e["traits"]) for e in entries]])
        return [row[0] for row in rows]
    created = Profile.objects.bulk_create([Profile(traits=e["traits"], first_seen_at=e["first"],
                                                   last_seen_at=e["last"]) for e in entries])
    return [profile.pk for profile in created]


def _identities_insert(rows: list[tuple[str, str, int, str]], now: datetime) -> int:
    """Insert identities, skipping any that exist; returns how many were new."""
    if _pg():
        types, values, profiles, sources = (list(column) for column in zip(*rows, strict=True))
        return len(_pg_execute(
            "INSERT INTO profiles_identity (type, value, profile_id, source, first_seen_at, last_seen_at) "
            "SELECT t, v, p, s, %b, %b FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[]) "
            "AS u(t, v, p, s) ON CONFLICT (type, value) DO NOTHING RETURNING id",
            [now, now, types, values, profiles, sources]))
    table = connection.ops.quote_name(Identity._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    inserted = 0
    step = 4000
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        sql = (f"INSERT INTO {table} (type, value, profile_id, source, first_seen_at, last_seen_at) VALUES "
               + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
               + " ON CONFLICT (type, value) DO NOTHING RETURNING id")
        with connection.cursor() as cursor:
            cursor.execute(sql, [v for row in chunk for v in (*row, at, at)])
            inserted += len(cursor.fetchall())
    return inserted


def _profiles_update(changed: list[tuple[int, dict]], now: datetime) -> None:
    if _pg():
        _pg_execute(
            "UPDATE profiles_profile AS p SET traits = u.t::jsonb, first_seen_at = u.f, last_seen_at = u.l, "
            "updated_at = %b FROM unnest(%b::bigint[], %b::text[], %b::timestamptz[], %b::timestamptz[]) "
            "AS u(id, t, f, l) WHERE p.id = u.id",
            [now, [pk for pk, _ in changed], [_json(e["traits"]) for _, e in changed],
             [e["first"] for _, e in changed], [e["last"] for _, e in changed]])
        return
    Profile.objects.bulk_update(
        [Profile(pk=pk, traits=entry["traits"], first_seen_at=entry["first"], last_seen_at=entry["last"],
                 updated_at=now) for pk, entry in changed],
        ["traits", "first_seen_at", "last_seen_at", "updated_at"], batch_size=500)


def _events_insert(rows: list[tuple], now: datetime) -> None:
    """rows: (profile_id, type, name, channel, properties, context, timestamp, source, message_id)."""
    if _pg():
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[4] = [_json(value) for value in columns[4]]
        columns[5] = [_json(value) for value in columns[5]]
        _pg_execute(
            "INSERT INTO profiles_event (profile_id, type, name, channel, properties, context, timestamp, "
            "received_at, source, message_id) SELECT p, t, n, c, pr::jsonb, cx::jsonb, ts, %b, s, m FROM unnest("
            "%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::timestamptz[], "
            "%b::text[], %b::text[]) AS u(p, t, n, c, pr, cx, ts, s, m)", [now, *columns])
        return
    Event.objects.bulk_create([Event(profile_id=p, type=t, name=n, channel=c, properties=pr, context=cx,
                                     timestamp=ts, source=src, message_id=m)
                               for p, t, n, c, pr, cx, ts, src, m in rows], batch_size=2000)
