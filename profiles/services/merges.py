"""The merge journal: merge profiles, explain each merge, undo it; never-merge pairs.

One function merges: ``profiles_merge_batch`` takes (winner, loser, reason, rule, score, evidence) pairs, in order,
and merges them set-based, a few statements per table for the whole batch. ``profiles_merge`` is a batch of one
(and raises ``MergeRefused``); the full unification hands over thousands of pairs at a time.

- Pairs are resolved transitively into clusters first, in their order (A <- B, then B <- C: C goes into A; a
  pair with ``older_wins``, a match, joins the younger cluster into the older one whichever way it is given). Every
  pair is checked as if the batch's earlier pairs were already merged, exactly as one merge after the other would
  be: merging a profile with itself or with a tombstone, a never-merge pair between the two clusters' families
  (their profiles and the tombstones merged into them), merge protection (two different values of a
  ``unique_per_profile`` identity type, e.g. user_id) and limits (more values of a type than ``max_per_profile``
  allows). A refused pair is not merged and is logged as a ``MergeRefusal`` (once per pair and rule) in the
  batch's transaction; the batch itself never raises for a refusal, so the log persists with it.
- Each loser is journaled as one ``Merge`` into its cluster's final winner, with what moved, so that each merge is
  explained and undone on its own (``merge_undo``):
  identities, events, notes: by id; trait values (lineage): by id, with their counts and times at the merge; where
  the winner (or an earlier loser of the cluster) already had the same (name, source, value) the two rows are
  combined and the loser's row and the survivor's row before are snapshotted; rows of other apps with a foreign
  key to Profile (consent records, segment memberships, ...), found generically through
  ``Profile._meta.related_objects`` (profiles never imports those apps): by model label and id, a row that would
  break a unique constraint on the winner stays with the loser and is recorded as kept; tombstones that followed
  the loser now follow the winner; the loser's traits, trait sources and first/last seen. The loser's match keys
  are removed (they are derived from traits: matching recomputes the winner's, and the loser's after an undo).
- Survivorship (the golden record) is computed again for every winner from its lineage after the batch; the loser
  stays as a tombstone (``merged_into`` the winner, empty traits) so that lookups by its id follow it.
- On commit, ``profile_changed`` (every winner and loser) and ``profiles_merged`` (every merge) are sent once per
  batch.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from cdp.core.prepared import raw_cursor
from profiles.models import (
    Event,
    Identity,
    MatchKey,
    Merge,
    MergeRefusal,
    NeverMerge,
    Note,
    Profile,
    TraitValue,
)
from profiles.services import golden
from profiles.services.golden import golden_record_recompute, parse_at
from profiles.services.identity_rules import Rules
from profiles.signals import profile_changed_on_commit, profiles_merged_on_commit

logger = logging.getLogger(__name__)

# Profiles' own models that a merge moves itself (or that must not follow a merge: the journal, the pairs).
_OWN_MOVED = {Identity, Event, TraitValue, Note, MatchKey}
# Profiles per statement (PostgreSQL takes them as one JSON document; SQLite as IN lists).
_CHUNK = 5000


class MergeRefused(Exception):
    """A merge a rule forbids; ``reason`` says which, ``rule`` names the rule (it is logged as a MergeRefusal)."""

    def __init__(self, reason: str, rule: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


@dataclass(frozen=True)
class MergePair:
    """One merge to make: ``loser_id`` into ``winner_id``, journaled with reason, rule, score and evidence."""

    winner_id: int
    loser_id: int
    reason: str
    rule: str = ""
    score: float | None = None
    evidence: dict | None = None
    # Neither profile asked to win (a match): the older of the two clusters (the smaller id) wins.
    older_wins: bool = False


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _pg_execute(sql: str, params: list) -> list[tuple]:
    from profiles.services.observations import _pg_execute as execute

    return execute(sql, params)


def _json(value) -> str:
    from profiles.services.observations import _json as dumps

    return dumps(value)


def _select(model, columns: list[str], field: str, ids: list[int], *, types: list[str] | None = None,
            lock: bool = False) -> list[tuple]:
    """``values_list(*columns)`` of the rows of ``model`` whose ``field`` is one of ``ids`` (identities: of
    ``types``, not flagged), in id order; ``lock``: FOR UPDATE. PostgreSQL binds the ids as one array per 5,000
    (JSON columns come back decoded); SQLite uses the ORM."""
    out: list[tuple] = []
    if not _pg():
        for chunk in _chunks(sorted(set(ids))):
            query = model._default_manager.filter(**{f"{field}__in": chunk})
            if types is not None:
                query = query.filter(type__in=types, flagged=False)
            if lock:
                query = query.select_for_update()
            out += query.order_by("pk").values_list(*columns)
        return out
    import json

    qn = connection.ops.quote_name
    meta = model._meta
    fields = [meta.pk if name == "pk" else meta.get_field(name) for name in columns]
    decode = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
    names = [qn(f.column) + ("::text" if i in decode else "") for i, f in enumerate(fields)]
    sql = (f"SELECT {', '.join(names)} FROM {qn(meta.db_table)} "
           f"WHERE {qn((meta.pk if field == 'pk' else meta.get_field(field)).column)} = ANY(%b)"
           + (" AND type = ANY(%b) AND NOT flagged" if types is not None else "")
           + f" ORDER BY {qn(meta.pk.column)}" + (" FOR UPDATE" if lock else ""))
    for chunk in _chunks(sorted(set(ids))):
        # Binary results: psycopg's C loaders (Django's timestamptz loader is for text and parses in Python).
        with raw_cursor(connection, prepare=False) as cursor:
            cursor.execute(sql, [chunk] if types is None else [chunk, types], binary=True)
            rows = cursor.fetchall()
        for row in rows:
            if decode:
                row = list(row)
                for i in decode:
                    if row[i] is not None:
                        row[i] = json.loads(row[i])
            out.append(tuple(row))
    return out


def _delete(model, field: str, ids: list[int]) -> None:
    """Delete the rows of ``model`` (no reverse relations) whose ``field`` is one of ``ids``: PostgreSQL binds the
    ids as one array per 5,000 (the ORM would compile an IN list of 5,000 parameters each time)."""
    meta = model._meta
    for chunk in _chunks(sorted(set(ids))):
        if _pg():
            column = (meta.pk if field == "pk" else meta.get_field(field)).column
            qn = connection.ops.quote_name
            _pg_execute(f"DELETE FROM {qn(meta.db_table)} WHERE {qn(column)} = ANY(%b)", [chunk])
        else:
            model._default_manager.filter(**{f"{field}__in": chunk}).delete()


def merge_refusals_record(*, refusals: list[tuple[int, int, str, str]]) -> None:
    """Log refused merges: (profile a, profile b, reason, rule), once per pair and rule (a shared device would
    otherwise log one per event)."""
    wanted: dict[tuple[int, int, str], tuple[int, int, str, str]] = {}
    for a, b, reason, rule in refusals:
        logger.info("merge of profiles %s and %s refused: %s", a, b, rule or reason)
        wanted.setdefault((min(a, b), max(a, b), rule[:200]), (a, b, reason[:300], rule[:200]))
    keys = list(wanted)
    for chunk in _chunks(keys, 200):
        query = Q()
        for low, high, rule in chunk:
            query |= Q(profile_a_id=low, profile_b_id=high, rule=rule) | Q(profile_a_id=high, profile_b_id=low,
                                                                           rule=rule)
        for a, b, rule in MergeRefusal.objects.filter(query).values_list("profile_a_id", "profile_b_id", "rule"):
            wanted.pop((min(a, b), max(a, b), rule), None)
    MergeRefusal.objects.bulk_create([MergeRefusal(profile_a_id=a, profile_b_id=b, reason=reason, rule=rule)
                                      for a, b, reason, rule in wanted.values()])


def live_profile_id(profile_id: int) -> int:
    """Follow merged_into from a (possibly merged) profile id to the live profile."""
    seen = set()
    while profile_id not in seen:
        seen.add(profile_id)
        nxt = Profile.objects.filter(pk=profile_id).values_list("merged_into_id", flat=True).first()
        if not nxt:
            return profile_id
        profile_id = nxt
    return profile_id


class _Clusters:
    """Live profiles joined into clusters as a batch's merges are accepted (union-find), with what the rules look
    at per cluster: its family (its profiles and every tombstone merged into them) and its identity values of the
    types that have a limit or merge protection."""

    def __init__(self, profile_ids: Iterable[int], rules: Rules):
        self.rules = rules
        self.parent: dict[int, int] = {}
        ids = sorted(set(profile_ids))
        root_of = {pk: pk for pk in ids}
        frontier = ids
        while frontier:
            found = []
            for pk, into in _select(Profile, ["pk", "merged_into"], "merged_into", frontier):
                if pk not in root_of:
                    root_of[pk] = root_of[into]
                    found.append(pk)
            frontier = found
        self.family: dict[int, set[int]] = {pk: {pk} for pk in ids}
        for member, root in root_of.items():
            self.family[root].add(member)
        self.never: dict[int, set[int]] = {}
        members = sorted(root_of)
        for field in ("profile_a", "profile_b"):
            for _pk, a, b in _select(NeverMerge, ["pk", "profile_a", "profile_b"], field, members):
                self.never.setdefault(a, set()).add(b)
                self.never.setdefault(b, set()).add(a)
        self.values: dict[int, dict[str, set[str]]] = {}
        types = sorted(set(rules.protected_types()) | set(rules.limited_types()))
        if types:
            for pk, identity_type, value in _select(Identity, ["profile", "type", "value"], "profile", ids,
                                                    types=types):
                self.values.setdefault(pk, {}).setdefault(identity_type, set()).add(value)

    def find(self, pk: int) -> int:
        path = []
        while pk in self.parent:
            path.append(pk)
            pk = self.parent[pk]
        for p in path:
            self.parent[p] = pk
        return pk

    def check(self, winner: int, loser: int) -> tuple[str, str] | None:
        """Why these two clusters (by their roots) may not be joined, as (reason, rule), or None when they may."""
        if winner == loser:
            return "a profile cannot be merged with itself", "same_profile"
        mine, theirs = self.family[winner], self.family[loser]
        small, other = (mine, theirs) if len(mine) <= len(theirs) else (theirs, mine)
        if any(self.never.get(pk, set()) & other for pk in small if pk in self.never):
            return "the two profiles are marked never to be merged", "never_merge"
        values_w, values_l = self.values.get(winner, {}), self.values.get(loser, {})
        for identity_type in sorted(set(values_w) | set(values_l)):
            rule = self.rules.get(identity_type)
            a, b = values_w.get(identity_type, set()), values_l.get(identity_type, set())
            if rule.unique_per_profile and a and b and a != b:
                return (f"merge protection: the profiles carry different {identity_type} values",
                        f"identity_rule:{identity_type}:unique_per_profile")
            if rule.max_per_profile and len(a | b) > rule.max_per_profile:
                return (f"limit: together the profiles would carry {len(a | b)} {identity_type} values, "
                        f"at most {rule.max_per_profile} are allowed", f"identity_rule:{identity_type}:max_per_profile")
        return None

    def join(self, winner: int, loser: int) -> None:
        self.parent[loser] = winner
        self.family[winner] |= self.family.pop(loser)
        values = self.values.pop(loser, {})
        mine = self.values.setdefault(winner, {})
        for identity_type, found in values.items():
            mine.setdefault(identity_type, set()).update(found)


def merge_check(*, winner_id: int, loser_id: int, rules: Rules | None = None) -> tuple[str, str] | None:
    """Why these two live profiles may not be merged, as (reason, rule), or None when they may."""
    return _Clusters([winner_id, loser_id], rules or Rules()).check(winner_id, loser_id)


def _ranges(ids: list[int]) -> list[list[int]]:
    """Sorted ids as [first, last] ranges (compact for the journal)."""
    out: list[list[int]] = []
    for pk in sorted(ids):
        if out and pk == out[-1][1] + 1:
            out[-1][1] = pk
        else:
            out.append([pk, pk])
    return out


def _unrange(ranges: list[list[int]]) -> list[int]:
    return [pk for first, last in ranges for pk in range(first, last + 1)]


def _iso(value):
    return value.isoformat() if value else None


def _trait_row(row: dict) -> dict:
    return {"id": row["id"], "name": row["name"], "value": row["value"], "value_hash": row["hash"],
            "source": row["source"], "first_observed_at": row["first_observed_at"].isoformat(),
            "observed_at": row["observed_at"].isoformat(), "seen_count": row["seen_count"]}


def _related_fields():
    """(model, field name) of every foreign key to Profile outside profiles' own models."""
    out = []
    for rel in Profile._meta.related_objects:
        model = rel.related_model
        if model is Profile or model in _OWN_MOVED or model._meta.app_label == "profiles":
            continue
        if rel.field.many_to_many or not rel.field.concrete:
            continue
        out.append((model, rel.field.name))
    return out


def _repoint(model, field_name: str, mapping: dict[int, int]) -> list[tuple[int, int]]:
    """Rows of ``model`` whose ``field_name`` (a foreign key to Profile) is a key of ``mapping`` point to its value
    instead. Returns (row id, previous profile id) of every row that moved. PostgreSQL: one statement per 5,000
    profiles; SQLite: a read and one update per target profile."""
    if not mapping:
        return []
    field = model._meta.get_field(field_name)
    items = sorted(mapping.items())
    out: list[tuple[int, int]] = []
    if _pg():
        qn = connection.ops.quote_name
        column = qn(field.column)
        sql = (f"UPDATE {qn(model._meta.db_table)} AS t SET {column} = (x->>1)::bigint "
               f"FROM jsonb_array_elements(%b::jsonb) AS e(x) WHERE t.{column} = (x->>0)::bigint "
               f"RETURNING t.{qn(model._meta.pk.column)}, (x->>0)::bigint")
        for chunk in _chunks(items):
            out += [tuple(row) for row in _pg_execute(sql, [_json(chunk)])]
        return out
    manager = model._default_manager
    for chunk in _chunks(items, 500):
        rows = list(manager.filter(**{f"{field.attname}__in": [old for old, _ in chunk]})
                    .values_list("pk", field.attname))
        by_target: dict[int, list[int]] = {}
        for pk, old in rows:
            by_target.setdefault(mapping[old], []).append(pk)
        for target, pks in by_target.items():
            manager.filter(pk__in=pks).update(**{field.attname: target})
        out += rows
    return out


def _related_rows_move(model, field: str, loser_id: int, winner_id: int) -> dict:
    """Row by row: a row that would break a unique constraint on the winner stays with the loser (kept)."""
    entry = {"field": field, "ids": [], "kept": []}
    for pk in model._default_manager.filter(**{f"{field}_id": loser_id}).values_list("pk", flat=True):
        try:
            with transaction.atomic():
                model._default_manager.filter(pk=pk).update(**{f"{field}_id": winner_id})
            entry["ids"].append(pk)
        except IntegrityError:
            entry["kept"].append(pk)
    return entry


def _related_move(final: dict[int, int], moved: dict[int, dict]) -> None:
    """Every other app's rows of the losers go to the winners: set-based, or per loser and row when a unique
    constraint stands in the way."""
    for model, field in _related_fields():
        label = model._meta.label_lower
        try:
            with transaction.atomic():
                rows = _repoint(model, field, final)
        except IntegrityError:
            for loser, winner in final.items():
                entry = _related_rows_move(model, field, loser, winner)
                if entry["ids"] or entry["kept"]:
                    moved[loser].setdefault("related", {})[label] = entry
            continue
        for pk, loser in rows:
            moved[loser].setdefault("related", {}).setdefault(label, {"field": field, "ids": [], "kept": []})[
                "ids"].append(pk)


def _lock(ids: list[int]) -> dict[int, dict]:
    """Lock and read these profiles, in id order."""
    out = {}
    for pk, into, traits, sources, first, last in _select(
            Profile, ["pk", "merged_into", "traits", "trait_sources", "first_seen_at", "last_seen_at"], "pk", ids,
            lock=True):
        out[pk] = {"merged_into": into, "traits": traits or {}, "sources": sources or {}, "first": first,
                   "last": last}
    return out


def profiles_merge(*, winner: Profile, loser: Profile, reason: str, rule: str = "", score: float | None = None,
                   evidence: dict | None = None, actor=None, rules: Rules | None = None) -> Merge:
    """Merge ``loser`` into ``winner`` and journal it: a batch of one (``profiles_merge_batch``). Raises
    MergeRefused when a rule forbids it; the refusal is logged as a MergeRefusal by the batch, which commits (or
    stays in the caller's transaction) before the exception is raised."""
    [outcome] = profiles_merge_batch(
        pairs=[MergePair(winner.pk, loser.pk, reason, rule, score, evidence)], actor=actor, rules=rules)
    if isinstance(outcome, MergeRefused):
        raise outcome
    if outcome is None:
        raise Profile.DoesNotExist("One of the profiles to merge does not exist.")
    return outcome


@transaction.atomic
def profiles_merge_batch(*, pairs: list[MergePair], actor=None, rules: Rules | None = None,
                         policies: golden.Policies | None = None) -> list[Merge | MergeRefused | None]:
    """Merge many pairs at once, in their order (see the module's docstring). Returns per pair its Merge, the
    MergeRefused that a rule raised (logged as a MergeRefusal, not raised), or None when there was nothing to do
    (a profile does not exist, or an earlier pair of the batch already joined the two)."""
    reasons = set(Merge.Reason.values)
    for pair in pairs:
        if pair.reason not in reasons:
            raise ValueError(f"Unknown merge reason {pair.reason!r}; one of {', '.join(Merge.Reason.values)}.")
    outcomes: list[Merge | MergeRefused | None] = [None] * len(pairs)
    if not pairs:
        return outcomes
    rules = rules or Rules()
    profiles = _lock([pk for pair in pairs for pk in (pair.winner_id, pair.loser_id)])
    clusters = _Clusters([pk for pk, row in profiles.items() if not row["merged_into"]], rules)
    accepted: list[tuple[int, int]] = []  # (index of the pair, the cluster root that lost)
    refusals: list[tuple[int, int, str, str]] = []
    for index, pair in enumerate(pairs):
        winner_id, loser_id = pair.winner_id, pair.loser_id
        if winner_id not in profiles or loser_id not in profiles:
            continue
        if winner_id == loser_id:
            refusal = clusters.check(winner_id, loser_id)
        elif profiles[winner_id]["merged_into"] or profiles[loser_id]["merged_into"]:
            refusal = ("one of the profiles was already merged into another", "already_merged")
        else:
            winner_id, loser_id = clusters.find(winner_id), clusters.find(loser_id)
            if winner_id == loser_id:
                continue
            if pair.older_wins and loser_id < winner_id:
                winner_id, loser_id = loser_id, winner_id
            refusal = clusters.check(winner_id, loser_id)
            if refusal is None:
                clusters.join(winner_id, loser_id)
                accepted.append((index, loser_id))
                continue
        outcomes[index] = MergeRefused(*refusal)
        refusals.append((winner_id, loser_id, *refusal))
    if refusals:
        merge_refusals_record(refusals=refusals)
    if accepted:
        final = {loser: clusters.find(loser) for _, loser in accepted}
        merges = _clusters_merge(pairs, accepted, final, profiles, actor, policies or golden.Policies())
        for (index, _loser), merge in zip(accepted, merges, strict=True):
            outcomes[index] = merge
    return outcomes


def _clusters_merge(pairs: list[MergePair], accepted: list[tuple[int, int]], final: dict[int, int],
                    profiles: dict[int, dict], actor, policies: golden.Policies) -> list[Merge]:
    """Move every loser's rows to its cluster's winner, a few statements per table; journal each loser."""
    losers = [loser for _, loser in accepted]
    winners = sorted(set(final.values()))
    moved: dict[int, dict] = {loser: {} for loser in losers}

    per_loser: dict[int, list[int]] = {}
    for pk, loser in _repoint(Identity, "profile", final):
        per_loser.setdefault(loser, []).append(pk)
    for loser in losers:
        moved[loser]["identities"] = sorted(per_loser.get(loser, []))
    per_loser = {}
    for pk, loser in _repoint(Event, "profile", final):
        per_loser.setdefault(loser, []).append(pk)
    for loser in losers:
        ids = per_loser.get(loser, [])
        moved[loser]["events"] = {"count": len(ids), "ranges": _ranges(ids)}
    per_loser = {}
    for pk, loser in _repoint(Note, "profile", final):
        per_loser.setdefault(loser, []).append(pk)
    for loser in losers:
        moved[loser]["notes"] = sorted(per_loser.get(loser, []))
    _delete(MatchKey, "profile", losers)
    for loser in losers:
        moved[loser]["match_keys"] = {"removed": True}

    lineage = _lineage_merge(accepted, final, moved)
    _related_move(final, moved)
    per_loser = {}
    for pk, loser in _repoint(Profile, "merged_into", final):  # tombstones that followed a loser
        per_loser.setdefault(loser, []).append(pk)

    cluster_losers: dict[int, list[int]] = {}
    for loser in losers:
        cluster_losers.setdefault(final[loser], []).append(loser)
        row = profiles[loser]
        moved[loser]["followers"] = sorted(per_loser.get(loser, []))
        moved[loser]["loser"] = {"traits": row["traits"], "trait_sources": row["sources"],
                                 "first_seen_at": _iso(row["first"]), "last_seen_at": _iso(row["last"])}
        winner = profiles[final[loser]]
        moved[loser]["winner_before"] = {"first_seen_at": _iso(winner["first"]), "last_seen_at": _iso(winner["last"])}

    updates = []
    for winner_id in winners:
        row = profiles[winner_id]
        members = [row] + [profiles[loser] for loser in cluster_losers[winner_id]]
        traits, sources = dict(row["traits"]), dict(row["sources"])
        rows = lineage.get(winner_id, {})
        for loser in cluster_losers[winner_id]:  # traits set before lineage existed: kept when the winner has none
            for name, value in (profiles[loser]["traits"] or {}).items():
                if name not in rows and name not in traits:
                    traits[name] = value
        for name in sorted(set(rows) | set(sources)):
            golden.winners_apply(traits, sources, name, rows.get(name, []), policies)
        updates.append((winner_id, traits, sources,
                        min((m["first"] for m in members if m["first"]), default=None),
                        max((m["last"] for m in members if m["last"]), default=None)))
    _profiles_write(updates, final)

    merges = _journal_write([
        Merge(winner_id=final[loser], loser_id=loser, reason=pairs[index].reason, rule=pairs[index].rule[:200],
              score=pairs[index].score, evidence=pairs[index].evidence or {}, moved=moved[loser],
              actor=actor if getattr(actor, "pk", None) else None)
        for index, loser in accepted])
    profile_changed_on_commit([*winners, *losers])
    profiles_merged_on_commit(merges=[{"merge_id": m.pk, "winner_id": m.winner_id, "loser_id": m.loser_id}
                                      for m in merges])
    return merges


def _journal_write(merges: list[Merge]) -> list[Merge]:
    """Insert the Merge rows (PostgreSQL: one statement per 2,000, the rows as one JSON document); sets their ids."""
    if not _pg():
        return Merge.objects.bulk_create(merges, batch_size=1000)
    now = timezone.now()
    for chunk in _chunks(merges, 2000):
        ids = _pg_execute(
            "INSERT INTO profiles_merge (winner_id, loser_id, reason, rule, score, evidence, moved, actor_id, "
            "created_at) SELECT (x->>0)::bigint, (x->>1)::bigint, x->>2, x->>3, (x->>4)::float8, x->5, x->6, "
            "(x->>7)::bigint, %b FROM jsonb_array_elements(%b::jsonb) WITH ORDINALITY AS e(x, n) ORDER BY n "
            "RETURNING id, loser_id",
            [now, _json([[m.winner_id, m.loser_id, m.reason, m.rule, m.score, m.evidence, m.moved, m.actor_id]
                         for m in chunk])])
        by_loser = {loser: pk for pk, loser in ids}
        for merge in chunk:
            merge.pk, merge.created_at = by_loser[merge.loser_id], now
    return merges


def _lineage_merge(accepted: list[tuple[int, int]], final: dict[int, int], moved: dict[int, dict]
                   ) -> dict[int, dict[str, list[dict]]]:
    """Trait values (lineage) of the losers go to their winners, loser by loser in the batch's order: a row of a
    (name, source, value) the winner has (or an earlier loser brought) is combined into that row, the others move
    by id. Journals both per loser; returns each winner's lineage after the merge, by trait name (golden's rows)."""
    winners = set(final.values())
    by_profile: dict[int, list[dict]] = {}
    for pk, profile_id, name, source, vhash, value, first, last, count in _select(
            TraitValue, ["pk", "profile", "name", "source", "value_hash", "value", "first_observed_at", "observed_at",
                         "seen_count"], "profile", sorted(winners | set(final))):
        by_profile.setdefault(profile_id, []).append(
            {"id": pk, "name": name, "source": source, "hash": vhash, "value": value, "first_observed_at": first,
             "observed_at": last, "seen_count": count})
    survivors: dict[int, dict[tuple, dict]] = {
        w: {(r["name"], r["source"], r["hash"]): r for r in by_profile.get(w, [])} for w in winners}
    deleted: list[int] = []
    changed: dict[int, dict] = {}
    for _index, loser in accepted:
        mine = survivors[final[loser]]
        moved_rows, combined = [], []
        for row in by_profile.get(loser, []):
            key = (row["name"], row["source"], row["hash"])
            survivor = mine.get(key)
            if survivor is None:
                mine[key] = row
                moved_rows.append([row["id"], row["seen_count"], row["first_observed_at"].isoformat(),
                                   row["observed_at"].isoformat()])
                continue
            combined.append({"loser": _trait_row(row), "winner_before": _trait_row(survivor)})
            survivor["seen_count"] += row["seen_count"]
            survivor["first_observed_at"] = min(survivor["first_observed_at"], row["first_observed_at"])
            survivor["observed_at"] = max(survivor["observed_at"], row["observed_at"])
            changed[survivor["id"]] = survivor
            deleted.append(row["id"])
        # rows: [id, seen_count, first_observed_at, observed_at] as they were at the merge (undo gives the loser
        # exactly that back; what the winner observed later stays with the winner).
        moved[loser]["trait_values"] = {"rows": moved_rows, "combined": combined}
    _delete(TraitValue, "pk", deleted)
    _repoint(TraitValue, "profile", final)
    rows = [changed[pk] for pk in sorted(changed)]
    if rows and _pg():
        for chunk in _chunks(rows):
            _pg_execute(
                "UPDATE profiles_traitvalue AS t SET seen_count = (x->>1)::int, "
                "first_observed_at = (x->>2)::timestamptz, observed_at = (x->>3)::timestamptz "
                "FROM jsonb_array_elements(%b::jsonb) AS e(x) WHERE t.id = (x->>0)::bigint",
                [_json([[r["id"], r["seen_count"], r["first_observed_at"], r["observed_at"]] for r in chunk])])
    elif rows:
        TraitValue.objects.bulk_update(
            [TraitValue(pk=r["id"], seen_count=r["seen_count"], first_observed_at=r["first_observed_at"],
                        observed_at=r["observed_at"]) for r in rows],
            ["seen_count", "first_observed_at", "observed_at"], batch_size=500)
    lineage: dict[int, dict[str, list[dict]]] = {}
    for winner, rows_by_key in survivors.items():
        for row in sorted(rows_by_key.values(), key=lambda r: r["id"]):  # id order: ties go the same way every time
            lineage.setdefault(winner, {}).setdefault(row["name"], []).append(row)
    return lineage


def _profiles_write(winners: list[tuple], final: dict[int, int]) -> None:
    """Winners get their golden record and first/last seen; losers become tombstones."""
    now = timezone.now()
    if _pg():
        for chunk in _chunks(winners):
            _pg_execute(
                "UPDATE profiles_profile AS p SET traits = x->1, trait_sources = x->2, "
                "first_seen_at = (x->>3)::timestamptz, last_seen_at = (x->>4)::timestamptz, updated_at = %b "
                "FROM jsonb_array_elements(%b::jsonb) AS e(x) WHERE p.id = (x->>0)::bigint",
                [now, _json([list(row) for row in chunk])])
        for chunk in _chunks(sorted(final.items())):
            _pg_execute(
                "UPDATE profiles_profile AS p SET merged_into_id = (x->>1)::bigint, traits = '{}'::jsonb, "
                "trait_sources = '{}'::jsonb, updated_at = %b "
                "FROM jsonb_array_elements(%b::jsonb) AS e(x) WHERE p.id = (x->>0)::bigint",
                [now, _json(chunk)])
        return
    Profile.objects.bulk_update(
        [Profile(pk=pk, traits=traits, trait_sources=sources, first_seen_at=first, last_seen_at=last, updated_at=now)
         for pk, traits, sources, first, last in winners],
        ["traits", "trait_sources", "first_seen_at", "last_seen_at", "updated_at"], batch_size=500)
    Profile.objects.bulk_update(
        [Profile(pk=loser, merged_into_id=winner, traits={}, trait_sources={}, updated_at=now)
         for loser, winner in final.items()],
        ["merged_into", "traits", "trait_sources", "updated_at"], batch_size=500)


@transaction.atomic
def merge_undo(*, merge: Merge, actor=None) -> tuple[Profile, Profile]:
    """Undo a merge: every row that moved goes back to the loser, the loser gets its traits back and is live again,
    the winner's golden record is recomputed. The pair is then marked never to merge. Returns (winner, loser)."""
    merge = Merge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise ValueError(f"Merge {merge.pk} was already undone.")
    if merge.winner_id is None:
        raise ValueError(f"Merge {merge.pk} cannot be undone: the winning profile no longer exists.")
    locked = {p.pk: p for p in Profile.objects.select_for_update()
              .filter(pk__in=sorted({merge.winner_id, merge.loser_id})).order_by("pk")}
    if merge.loser_id not in locked:
        raise ValueError(f"Merge {merge.pk} cannot be undone: the merged profile was erased.")
    winner, loser = locked[merge.winner_id], locked[merge.loser_id]
    moved = merge.moved or {}

    Identity.objects.filter(pk__in=moved.get("identities", [])).update(profile=loser)
    event_ids = _unrange(moved.get("events", {}).get("ranges", []))
    for start in range(0, len(event_ids), 10000):
        Event.objects.filter(pk__in=event_ids[start:start + 10000]).update(profile=loser)
    Note.objects.filter(pk__in=moved.get("notes", [])).update(profile=loser)
    keys = moved.get("match_keys", {})
    MatchKey.objects.filter(pk__in=keys.get("ids", [])).update(profile=loser)
    MatchKey.objects.bulk_create([MatchKey(profile=loser, key=key) for key in keys.get("dropped", [])],
                                 ignore_conflicts=True)

    _lineage_undo(merge, winner, loser, moved.get("trait_values", {}))
    models = {m._meta.label_lower: (m, f) for m, f in _related_fields()}
    for label, entry in (moved.get("related") or {}).items():
        if label in models:
            model, field = models[label]
            model._default_manager.filter(pk__in=entry["ids"]).update(**{f"{field}_id": loser.pk})

    Profile.objects.filter(pk__in=moved.get("followers", []), merged_into=winner).update(merged_into=loser)
    snapshot = moved.get("loser", {})
    loser.merged_into = None
    loser.traits = snapshot.get("traits") or {}
    loser.trait_sources = snapshot.get("trait_sources") or {}
    loser.first_seen_at = snapshot.get("first_seen_at")
    loser.last_seen_at = snapshot.get("last_seen_at")
    loser.save(update_fields=["merged_into", "traits", "trait_sources", "first_seen_at", "last_seen_at",
                              "updated_at"])

    before = moved.get("winner_before", {})
    span = Event.objects.filter(profile=winner).aggregate(first=Min("timestamp"), last=Max("timestamp"))
    winner.first_seen_at = span["first"] or before.get("first_seen_at")
    winner.last_seen_at = span["last"] or before.get("last_seen_at")
    # Traits the loser carried without lineage and gave to the winner go back.
    for name, value in (snapshot.get("traits") or {}).items():
        if name not in (winner.trait_sources or {}) and (winner.traits or {}).get(name) == value \
                and not TraitValue.objects.filter(profile=winner, name=name).exists():
            winner.traits.pop(name, None)
    winner.save(update_fields=["traits", "first_seen_at", "last_seen_at", "updated_at"])
    golden_record_recompute(profile=winner)
    winner.refresh_from_db()
    loser.refresh_from_db()

    merge.undone_at = timezone.now()
    merge.undone_by = actor
    merge.save(update_fields=["undone_at", "undone_by"])
    _never_merge_create(winner.pk, loser.pk, actor)
    profile_changed_on_commit([winner.pk, loser.pk])
    profiles_merged_on_commit(merges=[{"merge_id": merge.pk, "winner_id": winner.pk, "loser_id": loser.pk}],
                              undone=True)
    return winner, loser


def _lineage_undo(merge: Merge, winner: Profile, loser: Profile, journal: dict) -> None:
    """The loser's trait values go back exactly as they were at the merge; what the winner observed after the
    merge stays with the winner.

    - A row that moved (``rows``: id, count and times at the merge) goes back with those counts and times. When the
      winner observed the same (name, source, value) again after the merge (or a later merge combined a row into
      it), the difference stays with the winner as a row of its own: seen_count the difference, observed_at the
      row's latest; its first_observed_at is not recorded, so it is the later of the merge and the loser's last
      observation (at most observed_at), unless the row's first observation moved earlier.
    - A row that was combined into the winner's row of the same (name, source, value) is taken out of it again:
      the loser's count is subtracted (the row goes when nothing is left), its times go back to the winner's before
      where the loser's had set them; the loser's row is created again with its id.
    Journals written before counts were kept (``ids``) move those rows back as they are."""
    if "rows" not in journal:
        TraitValue.objects.filter(pk__in=journal.get("ids", [])).update(profile=loser)
    snapshots = {pk: (seen, parse_at(first), parse_at(last)) for pk, seen, first, last in journal.get("rows", [])}
    back, restored, split = [], [], []
    for chunk in _chunks(sorted(snapshots)):
        for row in TraitValue.objects.filter(pk__in=chunk, profile=winner):
            seen, first, last = snapshots[row.pk]
            later = row.seen_count - seen
            if later <= 0:
                back.append(row.pk)
                continue
            split_first = row.first_observed_at if row.first_observed_at < first \
                else min(row.observed_at, max(last, merge.created_at))
            split.append(TraitValue(profile=winner, name=row.name, value=row.value, value_hash=row.value_hash,
                                    source=row.source, first_observed_at=split_first, observed_at=row.observed_at,
                                    seen_count=later))
            row.profile, row.seen_count, row.first_observed_at, row.observed_at = loser, seen, first, last
            restored.append(row)
    for chunk in _chunks(back):
        TraitValue.objects.filter(pk__in=chunk).update(profile=loser)
    TraitValue.objects.bulk_update(restored, ["profile", "seen_count", "first_observed_at", "observed_at"],
                                   batch_size=500)
    TraitValue.objects.bulk_create(split, batch_size=500)
    for pair in journal.get("combined", []):
        before, theirs = pair["winner_before"], pair["loser"]
        mine = TraitValue.objects.filter(profile=winner, name=theirs["name"], source=theirs["source"],
                                         value_hash=theirs["value_hash"]).first()
        if mine is not None:
            left = mine.seen_count - theirs["seen_count"]
            if left <= 0:
                mine.delete()
            else:
                mine.seen_count = left
                their_first, their_last = parse_at(theirs["first_observed_at"]), parse_at(theirs["observed_at"])
                if mine.first_observed_at == their_first and their_first < parse_at(before["first_observed_at"]):
                    mine.first_observed_at = parse_at(before["first_observed_at"])
                if mine.observed_at == their_last and their_last > parse_at(before["observed_at"]):
                    mine.observed_at = parse_at(before["observed_at"])
                mine.save(update_fields=["seen_count", "first_observed_at", "observed_at"])
        TraitValue.objects.create(
            id=theirs["id"], profile=loser, name=theirs["name"], value=theirs["value"],
            value_hash=theirs["value_hash"], source=theirs["source"], first_observed_at=theirs["first_observed_at"],
            observed_at=theirs["observed_at"], seen_count=theirs["seen_count"])


def _never_merge_create(a: int, b: int, actor) -> NeverMerge:
    low, high = sorted((a, b))
    pair, _ = NeverMerge.objects.get_or_create(profile_a_id=low, profile_b_id=high, defaults={"created_by": actor})
    return pair


@transaction.atomic
def never_merge_add(*, profile_a: Profile, profile_b: Profile, actor=None) -> NeverMerge:
    """Mark two profiles as different people: no later merge (identity, match or manual) joins them."""
    if profile_a.pk == profile_b.pk:
        raise ValueError("A profile cannot be marked never to merge with itself.")
    return _never_merge_create(profile_a.pk, profile_b.pk, actor)
