"""The pipeline's path into profiles: identity resolution (the deterministic identity graph), lineage and the golden
record, events, in bulk.

Identity graph (``observations_apply``):
- identities are (type, normalized value) pairs, unique, each pointing to one profile; ``IdentityRule`` gives each
  type a priority (lower wins), a limit per profile and blocked values; ``unique_per_profile`` types (user_id) are
  merge protection;
- a blocked value (built-in ones such as "null", "undefined", "0", "anonymous", test addresses, plus the rule's
  own) is dropped: it never resolves, attaches or merges anything. An observation left without identities gets a
  profile of its own, so its event is not lost;
- an identifier that failed normalization (``Observation.flagged_identities``, or a trait the transforms listed in
  ``context.cdp.invalid``) is kept raw as a flagged identity of the resolved profile and is never looked up;
- the profile of the highest-priority known identity wins. Unknown identities are attached to it within the
  type's limit; an unknown user id that differs from the profile's user id means another person (a shared device):
  the observation gets a new profile instead;
- when known identities point to several profiles, the lower-priority profiles are merged into the winner through
  ``profiles_merge`` (reason "identity", or "alias" for Segment's alias: previousId's profile goes into userId's),
  journaled. A merge a rule forbids is refused and logged (MergeRefusal); the observation is applied all the same,
  to the winning profile.

Concurrency: identities are unique by (type, value). A batch that loses the race to create one rolls back to its
savepoint and resolves again, now finding the other batch's identity; so two workers never create two profiles
for the same new identity (see tests/profiles/test_concurrency.py, parallel processes on PostgreSQL).

Traits: every observed value is recorded with its source and time (``TraitValue``, one upsert per batch), and only
the touched traits are recomputed: under "most recent" (the stock policy) from the profile's ``trait_sources``
alone, under the other strategies from the lineage rows of those traits.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from cdp.core.prepared import prepared_execute
from profiles.insights.sentiment import EVENT_TEXT_FIELDS, event_sentiment
from profiles.models import Event, Identity, Profile, TraitPolicy
from profiles.services import golden
from profiles.services.identity_rules import Rules
from profiles.signals import profile_changed_on_commit

# The stock order of identity types (IdentityRule.priority is the configurable one).
IDENTITY_PRIORITY = [
    Identity.Type.USER_ID,
    Identity.Type.EMAIL,
    Identity.Type.PHONE,
    Identity.Type.RECORD,
    Identity.Type.ANONYMOUS_ID,
]
_IDENTITY_TRAITS = {"email": Identity.Type.EMAIL.value, "phone": Identity.Type.PHONE.value}
_TEXT_FIELDS = frozenset(EVENT_TEXT_FIELDS)


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
    # Identifiers that failed normalization, raw: kept as flagged identities, never used to resolve or merge.
    flagged_identities: list[tuple[str, str]] = field(default_factory=list)


def identities_resolve(*, identities: list[tuple[str, str]], source: str = "", at: datetime | None = None) -> Profile:
    """The profile these identities belong to, created if none is known; the identity graph's rules apply (see
    ``observations_apply``)."""
    if not identities:
        raise ValueError("At least one identity is needed to resolve a profile.")
    [profile_id] = observations_apply(observations=[Observation(
        identities=list(identities), timestamp=at or timezone.now(), source=source)])
    return Profile.objects.get(pk=profile_id)


@transaction.atomic
def profile_traits_update(*, profile: Profile, traits: dict, at: datetime | None = None,
                          source: str = "manual") -> Profile:
    """Record trait values from ``source`` (lineage) and recompute those traits of the golden record; an explicit
    None ends a trait under "most recent"."""
    at = at or timezone.now()
    golden.trait_values_record([(profile.pk, name, value, source, at) for name, value in traits.items()])
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    profile.first_seen_at = min(filter(None, [profile.first_seen_at, at]))
    profile.last_seen_at = max(filter(None, [profile.last_seen_at, at]))
    profile.save(update_fields=["first_seen_at", "last_seen_at", "updated_at"])
    profile = golden.golden_record_recompute(profile=profile, names=list(traits))
    profile_changed_on_commit([profile.pk])
    return profile


class _IdentityConflict(Exception):
    """Another transaction created one of the identities this batch meant to create; the batch re-resolves."""


# How often a batch re-resolves after losing an identity-creation race before giving up (and failing the batch,
# which the caller retries).
OBSERVATIONS_CONFLICT_RETRIES = 5
IDENTITY_VALUE_MAX = Identity._meta.get_field("value").max_length


def observations_apply(*, observations: list[Observation]) -> list[int]:
    """Resolve, update traits and append events for a batch. Returns the id of the profile of each observation
    (after any merge the batch caused: the live profile).

    In bulk: one query finds every known identity of the batch, new profiles and identities are inserted in one
    statement each, the touched profiles are locked, read and updated in one statement each, lineage is upserted
    in one statement and the events go in with one INSERT. Identities are unique by (type, value): when a
    concurrent batch created one of ours first, this batch rolls back to its savepoint and resolves again, now
    seeing the other's identities. ``profile_changed`` is sent on commit with every touched profile. Atomic: its
    own transaction, or a savepoint inside the caller's.
    """
    if not observations:
        return []
    for index, obs in enumerate(observations):
        if not obs.identities and not obs.previous_id and not obs.flagged_identities:
            raise ValueError(f"Observation {index} has no identity; at least one is needed to resolve a profile.")
        for identity_type, value in [*obs.identities, *obs.flagged_identities]:
            if not value or len(value) > IDENTITY_VALUE_MAX:
                raise ValueError(f"Observation {index}: the {identity_type} identity must have 1 to "
                                 f"{IDENTITY_VALUE_MAX} characters.")
    rules, policies = Rules.cached(), golden.Policies.cached()
    for _attempt in range(OBSERVATIONS_CONFLICT_RETRIES):
        try:
            with transaction.atomic():
                return _observations_apply_once(observations, rules, policies)
        except _IdentityConflict:
            continue
    raise IntegrityError("Identities kept being created concurrently; the batch is left for a retry.")


def _flagged_of(obs: Observation) -> list[tuple[str, str]]:
    """The observation's identifiers that failed normalization: given, or traits listed in context.cdp.invalid."""
    flagged = list(obs.flagged_identities)
    cdp = obs.context.get("cdp") if isinstance(obs.context, dict) else None
    invalid = cdp.get("invalid") if isinstance(cdp, dict) else None
    if invalid and isinstance(invalid, list):
        for key, identity_type in _IDENTITY_TRAITS.items():
            raw = obs.traits.get(key)
            if raw not in (None, "") and (f"traits.{key}" in invalid or f"context.traits.{key}" in invalid):
                flagged.append((identity_type, str(raw).strip()[:IDENTITY_VALUE_MAX]))
    return [(t, v) for t, v in flagged if v]


def _keys(obs: Observation, rules: Rules, assigned: dict) -> list[tuple[tuple[str, str], bool]]:
    """The observation's usable identities as (key, is_previous_id), blocked values dropped."""
    keys = [(key, False) for key in obs.identities if not rules.blocked(*key)]
    if len(keys) < 2 and not obs.previous_id:
        return keys  # nothing to add or deduplicate
    if obs.previous_id and not rules.blocked(Identity.Type.ANONYMOUS_ID.value, obs.previous_id):
        # Segment's previousId is an earlier user id or anonymous id: link the one that is known, else as an
        # anonymous id (a user id we never saw would break the one-user-id limit of the profile it joins).
        previous = [(Identity.Type.USER_ID.value, obs.previous_id), (Identity.Type.ANONYMOUS_ID.value, obs.previous_id)]
        known = [key for key in previous if key in assigned]
        keys += [(key, True) for key in (known or previous[1:])]
    seen, out = set(), []
    for key, is_previous in keys:
        if key not in seen:
            seen.add(key)
            out.append((key, is_previous))
    return out


def _observations_apply_once(observations: list[Observation], rules: Rules, policies: golden.Policies) -> list[int]:
    now = timezone.now()
    all_keys: set[tuple[str, str]] = set()
    for obs in observations:
        all_keys.update(obs.identities)
        if obs.previous_id:
            all_keys.update({(Identity.Type.USER_ID.value, obs.previous_id),
                             (Identity.Type.ANONYMOUS_ID.value, obs.previous_id)})
    # A profile reference: a real id (> 0), or a new profile of this batch (< 0).
    assigned: dict[tuple[str, str], int] = _identities_known(all_keys)
    guarded = set(rules.protected_types()) | set(rules.limited_types())
    per_obs_keys = [_keys(obs, rules, assigned) for obs in observations]
    # The guarded identities (limits, protection) of the existing profiles new guarded identities may join.
    holdings: dict[int, dict[str, set[str]]] = {}
    if any(key[0] in guarded and key not in assigned for keys in per_obs_keys for key, _p in keys):
        # Only the profiles of observations that bring a new identity can receive one: directly, or through an
        # identity an earlier observation of the batch attached (that observation brought a new one too), so the
        # holdings of the other profiles are never consulted.
        candidates = set()
        for keys in per_obs_keys:
            known = [assigned[key] for key, _p in keys if key in assigned]
            if known and len(known) < len(keys):
                candidates.update(known)
        if candidates:
            for pk, identity_type, value in _identities_held(sorted(candidates), sorted(guarded)):
                holdings.setdefault(pk, {}).setdefault(identity_type, set()).add(value)

    new_identities: list[tuple[tuple[str, str], int, str]] = []
    merges: list[tuple[int, int, str, tuple[str, str], int]] = []  # (winner ref, loser ref, reason, key, obs)
    new_count = 0
    refs: list[int] = []

    def new_ref() -> int:
        nonlocal new_count
        new_count += 1
        holdings[-new_count] = {}
        return -new_count

    rule_of = {identity_type: rules.get(identity_type) for keys in per_obs_keys for (identity_type, _v), _p in keys}
    for index, (obs, keys) in enumerate(zip(observations, per_obs_keys, strict=True)):
        ordered = sorted(keys, key=lambda item: (rule_of[item[0][0]].priority, item[1])) if len(keys) > 1 else keys
        ref = next((assigned[key] for key, _prev in ordered if key in assigned), None)
        if ref is not None:
            held = holdings.get(ref, {})
            for key, _prev in ordered:
                if key not in assigned and rule_of[key[0]].unique_per_profile and held.get(key[0]) and \
                        key[1] not in held[key[0]]:
                    # Another person on the same device or account: a profile of its own.
                    ref = None
                    break
        if ref is None:
            ref = new_ref()
        held = holdings.setdefault(ref, {})
        for key, prev in ordered:
            other = assigned.get(key)
            if other is None:
                rule = rule_of[key[0]]
                values = held.get(key[0], set())
                if rule.max_per_profile and len(values) >= rule.max_per_profile and key[1] not in values:
                    continue  # over the type's limit: not attached (the profile keeps its identities)
                if rule.unique_per_profile and values and key[1] not in values:
                    continue
                assigned[key] = ref
                new_identities.append((key, ref, obs.source))
                if key[0] in guarded:
                    held.setdefault(key[0], set()).add(key[1])
            elif other != ref:
                merges.append((ref, other, "alias" if prev else "identity", key, index))
        refs.append(ref)

    # Lock and read the existing profiles this batch touches (in id order, so that batches do not deadlock), with
    # the trait sources of those whose traits this batch observes.
    existing_ids = sorted({ref for ref in refs if ref > 0})
    with_traits = {ref for obs, ref in zip(observations, refs, strict=True) if ref > 0 and obs.traits}
    state: dict[int, dict] = {}
    if existing_ids:
        for pk, traits, first_seen, last_seen, sources in _profiles_lock(existing_ids, with_traits):
            state[pk] = {"traits": dict(traits or {}), "first": first_seen, "last": last_seen, "changed": False}
            if pk in with_traits:
                state[pk]["sources"] = dict(sources or {})
        if len(state) != len(existing_ids):
            raise _IdentityConflict  # a profile went away meanwhile (erased); resolve again
    for ref in range(-new_count, 0):
        state[ref] = {"traits": {}, "first": None, "last": None, "changed": True}

    # Traits: lineage entries, and the winners of the touched traits.
    lineage: list[tuple[int, str, object, str, datetime]] = []
    touched: dict[int, set[str]] = {}
    sensitive = policies.sensitive  # sealed as they enter: every copy below (golden record, lineage) is encrypted
    for index in sorted(range(len(observations)), key=lambda i: observations[i].timestamp):
        obs, ref = observations[index], refs[index]
        entry = state[ref]
        for name, value in (obs.traits or {}).items():
            if sensitive and name in sensitive:
                value = golden.seal(value)
            lineage.append((ref, name, value, obs.source[:64], obs.timestamp))
            touched.setdefault(ref, set()).add(name)
        if entry["first"] is None or obs.timestamp < entry["first"]:
            entry["first"], entry["changed"] = obs.timestamp, True
        if entry["last"] is None or obs.timestamp > entry["last"]:
            entry["last"], entry["changed"] = obs.timestamp, True
    sources_changed = _winners(state, touched, lineage, policies)

    real: dict[int, int] = {ref: ref for ref in existing_ids}
    if new_count:
        refs_new = list(range(-1, -new_count - 1, -1))
        created = _profiles_create([state[ref] for ref in refs_new], now)
        real.update(dict(zip(refs_new, created, strict=True)))

    if new_identities:
        rows = sorted(((key[0], key[1], real[ref], source[:64]) for key, ref, source in new_identities))
        if _identities_insert(rows, now) != len(rows):
            raise _IdentityConflict

    flagged = [(key, real[ref], obs.source[:64]) for obs, ref in zip(observations, refs, strict=True)
               for key in _flagged_of(obs)]
    if flagged:
        _flagged_identities_insert(flagged)

    changed = [(pk, state[pk]) for pk in existing_ids if state[pk]["changed"]]
    if sources_changed:
        # Traits changed: one statement writes traits, their sources and the times.
        _profiles_update_with_sources([(real[ref], state[ref]) for ref in sorted(sources_changed)]
                                      + [(pk, entry) for pk, entry in changed if pk not in sources_changed], now)
    elif changed:
        _profiles_update(changed, now)
    if lineage:
        golden.trait_values_record([(real[ref], name, value, source, at) for ref, name, value, source, at in lineage],
                                   sensitive)

    events = [(real[ref], obs.event_type, obs.event_name[:200], obs.channel[:32],
               *(_event_sealed(obs, sensitive) if sensitive else (obs.properties, obs.context)),
               obs.timestamp, obs.source[:64], obs.message_id[:128])
              for obs, ref in zip(observations, refs, strict=True) if obs.event_type]
    if events:
        _events_insert(events, now)

    profile_ids = [real[ref] for ref in refs]
    if merges:
        profile_ids = _merges_apply(merges, real, profile_ids, observations, rules)
    profile_changed_on_commit(profile_ids)
    return profile_ids


def _event_sealed(obs: Observation, sensitive: frozenset) -> tuple[dict, dict]:
    """The event's properties and context with the person's sensitive traits sealed: an identify call's properties
    are its traits, and any call may carry them in context.traits (copies, so the observation stays as it came)."""
    properties, context = obs.properties, obs.context
    if obs.event_type == Event.Type.IDENTIFY and isinstance(properties, dict) and not sensitive.isdisjoint(properties):
        properties = {key: golden.seal(value) if key in sensitive else value for key, value in properties.items()}
    traits = context.get("traits") if isinstance(context, dict) else None
    if isinstance(traits, dict) and not sensitive.isdisjoint(traits):
        context = {**context, "traits": {key: golden.seal(value) if key in sensitive else value
                                         for key, value in traits.items()}}
    return properties, context


def _winners(state: dict, touched: dict[int, set[str]], lineage: list, policies: golden.Policies) -> set[int]:
    """Recompute the winners of the touched traits in ``state`` (traits and ``sources``). Returns the refs whose
    trait sources changed. "Most recent" needs only the current explanation; other strategies read the lineage."""
    if not touched:
        return set()
    full: dict[int, set[str]] = {}
    for ref, names in touched.items():
        state[ref].setdefault("sources", {})  # read with the lock (existing profiles); empty for new ones
        for name in names:
            if policies.get(name)[0] != TraitPolicy.Strategy.MOST_RECENT:
                full.setdefault(ref, set()).add(name)
    stored = golden.lineage_rows([ref for ref in full if ref > 0], {n for names in full.values() for n in names}) \
        if any(ref > 0 for ref in full) else {}
    batch_rows: dict[tuple[int, str], list[dict]] = {}
    latest: dict[tuple[int, str], datetime] = {}
    changed: set[int] = set()
    for ref, name, value, source, at in lineage:
        entry = state[ref]
        traits, sources = entry["traits"], entry["sources"]
        if name in full.get(ref, ()):
            rows = batch_rows.setdefault((ref, name), [dict(r) for r in stored.get((ref, name), [])])
            vhash = golden.value_hash(value)
            row = next((r for r in rows if r["hash"] == vhash and r["source"] == source), None)
            if row is None:
                rows.append({"value": value, "hash": vhash, "source": source, "first_observed_at": at,
                             "observed_at": at, "seen_count": 1})
            else:
                row["seen_count"] += 1
                row["first_observed_at"] = min(row["first_observed_at"], at)
                row["observed_at"] = max(row["observed_at"], at)
            continue
        # Most recent: the newest observation wins (lineage is in time order here).
        current = sources.get(name)
        if (ref, name) in latest:
            current_at = latest[(ref, name)]
        else:
            current_at = golden.parse_at(current.get("observed_at")) if isinstance(current, dict) else None
        if current_at is not None and at < current_at:
            continue
        latest[(ref, name)] = at
        before = (name in traits, traits.get(name), current)
        if value is None:
            traits.pop(name, None)
            sources.pop(name, None)
        else:
            traits[name] = value
            sources[name] = {"source": source, "observed_at": at.isoformat(),
                             "strategy": TraitPolicy.Strategy.MOST_RECENT.value, "why": "most recent value"}
        if before != (name in traits, traits.get(name), sources.get(name)):
            entry["changed"] = True
            changed.add(ref)
    for (ref, name), rows in batch_rows.items():
        entry = state[ref]
        if golden.winners_apply(entry["traits"], entry["sources"], name, rows, policies):
            entry["changed"] = True
            changed.add(ref)
    return changed


def _merges_apply(merges, real: dict[int, int], profile_ids: list[int], observations, rules: Rules) -> list[int]:
    """Merge the profiles an observation's identities linked; refused merges are logged and leave both as they are.
    Returns the profile ids of the observations, following the merges."""
    from profiles.services.merges import MergeRefused, live_profile_id, profiles_merge

    redirect: dict[int, int] = {}

    def live(pk: int) -> int:
        while pk in redirect:
            pk = redirect[pk]
        return pk

    for winner_ref, loser_ref, reason, key, index in merges:
        winner_id, loser_id = live(real.get(winner_ref, winner_ref)), live(real.get(loser_ref, loser_ref))
        if winner_id == loser_id:
            continue
        obs = observations[index]
        try:
            merge = profiles_merge(
                winner=Profile(pk=live_profile_id(winner_id)), loser=Profile(pk=live_profile_id(loser_id)),
                reason=reason, rule=f"identity:{key[0]}", rules=rules,
                evidence={"identity": {"type": key[0], "value": key[1]}, "message_id": obs.message_id,
                          "source": obs.source, "at": obs.timestamp.isoformat()})
        except MergeRefused:
            continue
        redirect[merge.loser_id] = merge.winner_id
    return [live(pk) for pk in profile_ids]


def _flagged_identities_insert(rows: list[tuple[tuple[str, str], int, str]]) -> None:
    """Identifiers that failed normalization, kept raw and flagged (an existing one is left where it is)."""
    Identity.objects.bulk_create(
        [Identity(profile_id=pk, type=key[0], value=key[1], raw_value=key[1], flagged=True, source=source)
         for key, (pk, source) in _first_of_each(rows).items()], ignore_conflicts=True)


def _first_of_each(rows) -> dict:
    out: dict = {}
    for key, pk, source in rows:
        out.setdefault(key, (pk, source))
    return out


def _profiles_update_with_sources(rows: list[tuple[int, dict]], now: datetime) -> None:
    """Write traits, trait sources (when the entry has them) and first/last seen of these profiles."""
    if _pg():
        _pg_execute(
            "UPDATE profiles_profile AS p SET traits = x->1, trait_sources = COALESCE(x->2, p.trait_sources), "
            "first_seen_at = (x->>3)::timestamptz, last_seen_at = (x->>4)::timestamptz, updated_at = %b "
            "FROM jsonb_array_elements(%b::jsonb) AS e(x) WHERE p.id = (x->>0)::bigint",
            [now, _json([[pk, e["traits"], e.get("sources"), e["first"], e["last"]] for pk, e in rows])])
        return
    with_sources = [(pk, e) for pk, e in rows if "sources" in e]
    Profile.objects.bulk_update(
        [Profile(pk=pk, traits=e["traits"], trait_sources=e["sources"], first_seen_at=e["first"],
                 last_seen_at=e["last"], updated_at=now) for pk, e in with_sources],
        ["traits", "trait_sources", "first_seen_at", "last_seen_at", "updated_at"], batch_size=500)
    others = [(pk, e) for pk, e in rows if "sources" not in e]
    if others:
        _profiles_update(others, now)


# --- bulk statements: one per step and batch -----------------------------------------------------------------
# On PostgreSQL each takes its rows as ONE JSON document (json.dumps of the whole batch, in C) that the statement
# takes apart with jsonb_array_elements: constant statements, and no per-value parameter building in Python, which
# costs more than the statements themselves. SQLite gets the ORM (or plain multi-row statements).


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _pg_execute(sql: str, params: list) -> list[tuple]:
    """Run a statement through a psycopg cursor with server-side binding, on Django's connection and in its
    transaction, prepared on the server (each call site's text is constant: its rows travel as one JSON document
    or array, so PostgreSQL plans it once per connection instead of once per batch)."""
    return prepared_execute(connection, sql, params)


_django_json_default = DjangoJSONEncoder().default


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()  # full precision (DjangoJSONEncoder keeps milliseconds only)
    return _django_json_default(value)


def _json(value) -> str:
    """Compact JSON text of a document for PostgreSQL. orjson writes it several times faster than json.dumps (the
    merge journal and the pipeline's batch documents are large), date-times included (ISO 8601 with the offset, in
    C: the batch documents hand them over as they are); what orjson refuses (an integer beyond 64 bits, a type
    neither knows) goes through json.dumps, which writes the same JSON."""
    try:
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_json_default, separators=(",", ":"))




_PLAN_SETTINGS = ("enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")
_KEYED_LOOKUP_PLAN = "SELECT " + ", ".join(f"set_config('{name}', 'off', true)" for name in _PLAN_SETTINGS)
# RESET, not a read of pg_settings (a scan of every setting: 1.5-7 ms per call, measured, on the hot path).
_PLAN_SETTINGS_RESTORE = "; ".join(f"RESET {name}" for name in _PLAN_SETTINGS)


def _identities_known(keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Which of these identities exist, and the profile each points to: one query for the whole batch."""
    if not keys:
        return {}
    if _pg():
        # A keyed lookup, planned as one: a nested loop over the unique (type, value) index. Left to itself, the
        # planner costs the trigram index on value (profile search) far too low for a parameterized equality, and
        # on a small table chose it (about 10 ms per key at 15,000 identities) or a hash join over the whole table;
        # the prepared statement then kept that plan while the table grew. The settings are local to the
        # transaction and restored right after (an error rolls them back with it).
        _pg_execute(_KEYED_LOOKUP_PLAN, [])
        rows = _pg_execute(
            "SELECT i.type, i.value, i.profile_id FROM profiles_identity i "
            "JOIN (SELECT x->>0 AS t, x->>1 AS v FROM jsonb_array_elements(%b::jsonb) AS e(x)) AS u "
            "ON i.type = u.t AND i.value = u.v", [_json(list(keys))])
        with connection.wrap_database_errors:
            connection.connection.execute(_PLAN_SETTINGS_RESTORE)  # no parameters: one round trip for the three
        return {(t, v): p for t, v, p in rows}
    by_type: dict[str, list[str]] = {}
    for identity_type, value in keys:
        by_type.setdefault(identity_type, []).append(value)
    query = Q()
    for identity_type, values in by_type.items():
        query |= Q(type=identity_type, value__in=values)
    return {(t, v): p for t, v, p in Identity.objects.filter(query).values_list("type", "value", "profile_id")}


def _profiles_lock(ids: list[int], with_sources: set[int] = frozenset()) \
        -> list[tuple[int, dict, datetime | None, datetime | None, dict | None]]:
    """Lock and read the given profiles, in id order (so that concurrent batches never deadlock on them): id,
    traits, first and last seen, and the trait sources of those in ``with_sources`` (None for the others)."""
    if _pg():
        # One JSON document for all rows: one parse in C instead of a value loader per column and row.
        [[document]] = _pg_execute(
            "SELECT coalesce(json_agg(json_build_array(p.id, p.traits, p.first_seen_at, p.last_seen_at, "
            "CASE WHEN p.id = ANY(%b) THEN p.trait_sources END) ORDER BY p.id), '[]')::text FROM "
            "(SELECT id, traits, first_seen_at, last_seen_at, trait_sources FROM profiles_profile "
            "WHERE id = ANY(%b) ORDER BY id FOR UPDATE) AS p",
            [sorted(with_sources) or [0], ids])
        parse = datetime.fromisoformat
        return [(pk, traits or {}, parse(first) if first else None, parse(last) if last else None, sources)
                for pk, traits, first, last, sources in json.loads(document)]
    return [(pk, traits, first, last, sources if pk in with_sources else None)
            for pk, traits, first, last, sources in Profile.objects.select_for_update().filter(id__in=ids)
            .order_by("id").values_list("id", "traits", "first_seen_at", "last_seen_at", "trait_sources")]


def _identities_held(profile_ids: list[int], types: list[str]) -> list[tuple[int, str, str]]:
    """The (profile id, type, value) of the unflagged identities of these types that these profiles hold."""
    if _pg():
        # A probe of the (profile_id, type) index per profile: with both as ANY(...) the planner ANDed two bitmaps,
        # one of them every identity of the guarded types (all user ids, emails and phones of the table).
        return _pg_execute("SELECT i.profile_id, i.type, i.value FROM unnest(%b::bigint[]) AS p(id) "
                           "JOIN profiles_identity AS i ON i.profile_id = p.id WHERE i.type = ANY(%b) "
                           "AND NOT i.flagged", [profile_ids, types])
    return list(Identity.objects.filter(profile_id__in=profile_ids, type__in=types, flagged=False)
                .values_list("profile_id", "type", "value"))


def _profiles_create(entries: list[dict], now: datetime) -> list[int]:
    """Insert new profiles; returns their ids in the same order."""
    if _pg():
        rows = _pg_execute(
            "INSERT INTO profiles_profile (created_at, updated_at, first_seen_at, last_seen_at, traits) "
            "SELECT %b, %b, (x->>0)::timestamptz, (x->>1)::timestamptz, x->2 "
            "FROM jsonb_array_elements(%b::jsonb) WITH ORDINALITY AS e(x, i) ORDER BY i RETURNING id",
            [now, now, _json([[e["first"], e["last"], e["traits"]] for e in entries])])
        return [row[0] for row in rows]
    created = Profile.objects.bulk_create([Profile(traits=e["traits"], first_seen_at=e["first"],
                                                   last_seen_at=e["last"]) for e in entries])
    return [profile.pk for profile in created]


def _identities_insert(rows: list[tuple[str, str, int, str]], now: datetime) -> int:
    """Insert identities, skipping any that exist; returns how many were new."""
    if _pg():
        return len(_pg_execute(
            "INSERT INTO profiles_identity (type, value, profile_id, source, first_seen_at, last_seen_at) "
            "SELECT x->>0, x->>1, (x->>2)::bigint, x->>3, %b, %b "
            "FROM jsonb_array_elements(%b::jsonb) WITH ORDINALITY AS e(x, i) ORDER BY i "
            "ON CONFLICT (type, value) DO NOTHING RETURNING id", [now, now, _json(rows)]))
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
            "UPDATE profiles_profile AS p SET traits = x->1, first_seen_at = (x->>2)::timestamptz, "
            "last_seen_at = (x->>3)::timestamptz, updated_at = %b "
            "FROM jsonb_array_elements(%b::jsonb) AS e(x) WHERE p.id = (x->>0)::bigint",
            [now, _json([[pk, e["traits"], e["first"], e["last"]] for pk, e in changed])])
        return
    Profile.objects.bulk_update(
        [Profile(pk=pk, traits=entry["traits"], first_seen_at=entry["first"], last_seen_at=entry["last"],
                 updated_at=now) for pk, entry in changed],
        ["traits", "first_seen_at", "last_seen_at", "updated_at"], batch_size=500)


def _events_with_sentiment(rows: list[tuple]) -> list[tuple]:
    """The rows, those whose properties carry free text (``sentiment.EVENT_TEXT_FIELDS``) with ``sentiment`` and
    ``sentiment_label`` added to a copy of their properties, unless the sender set ``sentiment``."""
    out = rows
    for index, row in enumerate(rows):
        properties = row[4]
        if not properties or not isinstance(properties, dict) or _TEXT_FIELDS.isdisjoint(properties):
            continue
        added = event_sentiment(properties, row[5])
        if added:
            if out is rows:
                out = list(rows)
            out[index] = (*row[:4], {**properties, **added}, *row[5:])
    return out


def _events_insert(rows: list[tuple], now: datetime) -> None:
    """rows: (profile_id, type, name, channel, properties, context, timestamp, source, message_id). Events with free
    text get its sentiment in their properties (``_events_with_sentiment``)."""
    rows = _events_with_sentiment(rows)
    if _pg():
        _pg_execute(
            "INSERT INTO profiles_event (profile_id, type, name, channel, properties, context, timestamp, "
            "received_at, source, message_id) SELECT (x->>0)::bigint, x->>1, x->>2, x->>3, x->4, x->5, "
            "(x->>6)::timestamptz, %b, x->>7, x->>8 FROM jsonb_array_elements(%b::jsonb) AS e(x)",
            [now, _json(rows)])
        return
    Event.objects.bulk_create([Event(profile_id=p, type=t, name=n, channel=c, properties=pr, context=cx,
                                     timestamp=ts, source=src, message_id=m)
                               for p, t, n, c, pr, cx, ts, src, m in rows], batch_size=2000)
