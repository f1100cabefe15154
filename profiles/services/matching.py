"""Probabilistic matching of profiles against the database: the engine (``profiles.matching``, pure) on stored
profiles, with the review queue, the match keys for incremental candidate search, and merges through
``profiles_merge_batch`` (set-based, a batch of pairs at a time; journaled with rule, score and evidence).

- ``match_rules_install()``: the default MatchRule, from the engine's default people rules.
- ``match_keys_refresh(profile_ids=...)``: the blocking key values of these profiles, stored in MatchKey
  (hashed: a key is ``<rule id>.<key position>.<digest>``, so no personal data is stored in the clear).
- ``match_incremental(profile_ids=...)``: new and changed profiles against everything stored, through MatchKey.
- ``unify_full(progress=...)``: every live profile, blocked and scored in memory (near-linear), then merges and
  the review queue; rebuilds MatchKey.
- ``candidate_decide(candidate=..., decision=..., actor=...)``: a person's decision on a review pair.

What is respected: a NeverMerge pair, a pair already decided in the review queue (merged, never merge, dismissed),
a pair whose merge was undone, and tombstones (merged profiles are never matched; ids given for them follow
``merged_into`` to the live profile). Auto-merges go best pair first; a merge that a limit or a protection rule
forbids is refused by ``profiles_merge_batch`` (and logged there) and counted here.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from cdp.core.services import audit_record
from profiles.matching import DEFAULT_PEOPLE_RULES, MatchRules, RuleError, encode, load_rules
from profiles.matching.blocking import SEPARATOR, candidate_pairs
from profiles.matching.encoding import feature_text
from profiles.matching.scoring import evidence as pair_evidence
from profiles.matching.scoring import match_weights, probability
from profiles.models import (
    Identity,
    MatchCandidate,
    MatchKey,
    MatchRule,
    Merge,
    NeverMerge,
    Profile,
)

logger = logging.getLogger("profiles.matching")

DEFAULT_RULE_NAME = "people"
Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------------------------------- rules
class MatchRuleInvalid(ValueError):
    """A match rule that cannot be saved; ``path`` names the offending place (``rules.fields[1].m[2]``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def match_rule_validate(*, rules, auto_merge_threshold: float, review_threshold: float) -> MatchRules:
    """The engine's rules with the thresholds of the MatchRule; MatchRuleInvalid names the path of a problem."""
    try:
        compiled = load_rules(rules)
    except RuleError as exc:
        raise MatchRuleInvalid(f"rules.{exc.path}" if exc.path else "rules", exc.message) from exc
    for name, value in (("auto_merge_threshold", auto_merge_threshold), ("review_threshold", review_threshold)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise MatchRuleInvalid(name, f"must be a probability in (0, 1], got {value!r}")
    if review_threshold > auto_merge_threshold:
        raise MatchRuleInvalid("review_threshold", "must not be above the auto-merge threshold")
    data = compiled.to_dict()
    data["thresholds"] = {"auto_merge": float(auto_merge_threshold), "review": float(review_threshold)}
    return load_rules(data)


_compiled: dict[tuple[int, str], MatchRules] = {}


def _rules_of(rule: MatchRule) -> MatchRules:
    """The compiled rules of a MatchRule (cached by id and last change)."""
    cache_key = (rule.pk, rule.updated_at.isoformat() if rule.updated_at else "")
    compiled = _compiled.get(cache_key)
    if compiled is None:
        compiled = match_rule_validate(rules=rule.rules, auto_merge_threshold=rule.auto_merge_threshold,
                                       review_threshold=rule.review_threshold)
        if len(_compiled) > 64:
            _compiled.clear()
        _compiled[cache_key] = compiled
    return compiled


@transaction.atomic
def match_rule_save(*, rule: MatchRule | None = None, name: str, rules, auto_merge_threshold: float,
                    review_threshold: float, enabled: bool = True, actor=None) -> MatchRule:
    """Create or change a MatchRule after validating it with the engine."""
    compiled = match_rule_validate(rules=rules, auto_merge_threshold=auto_merge_threshold,
                                   review_threshold=review_threshold)
    if not isinstance(name, str) or not name.strip():
        raise MatchRuleInvalid("name", "must be a non-empty name")
    creating = rule is None
    rule = rule or MatchRule()
    rule.name = name.strip()
    rule.enabled = bool(enabled)
    rule.rules = compiled.to_dict()
    rule.auto_merge_threshold = float(auto_merge_threshold)
    rule.review_threshold = float(review_threshold)
    rule.save()
    audit_record(actor=actor, action="create" if creating else "change", object_type="profiles.matchrule",
                 object_id=rule.pk, summary=f"{'Created' if creating else 'Changed'} match rule {rule.name}")
    return rule


@transaction.atomic
def match_rule_delete(*, rule: MatchRule, actor=None) -> None:
    pk, name = rule.pk, rule.name
    MatchKey.objects.filter(key__startswith=f"{pk}.").delete()
    rule.delete()
    audit_record(actor=actor, action="delete", object_type="profiles.matchrule", object_id=pk,
                 summary=f"Deleted match rule {name}")


@transaction.atomic
def match_rules_install() -> MatchRule:
    """The default MatchRule (the engine's default people rules), unless one of that name exists."""
    thresholds = DEFAULT_PEOPLE_RULES["thresholds"]
    rule, _ = MatchRule.objects.get_or_create(
        name=DEFAULT_RULE_NAME,
        defaults={"rules": load_rules(DEFAULT_PEOPLE_RULES).to_dict(), "enabled": True,
                  "auto_merge_threshold": thresholds["auto_merge"], "review_threshold": thresholds["review"]})
    return rule


def enabled_rules() -> list[MatchRule]:
    return list(MatchRule.objects.filter(enabled=True).order_by("pk"))


def matching_enabled() -> bool:
    return MatchRule.objects.filter(enabled=True).exists()


# ---------------------------------------------------------------------------------------- profile -> record
# Which traits feed which field of the engine's records (the default rules' field sources), first found wins.
TRAIT_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstName", "firstname", "given_name", "givenName"),
    "last_name": ("last_name", "lastName", "lastname", "surname", "family_name", "familyName"),
    "birth_date": ("birth_date", "birthday", "date_of_birth", "birthdate", "dob"),
    "street": ("street", "address_1", "street_address", "address_line1", "address"),
    "house_number": ("house_number", "street_number", "houseNumber"),
    "postcode": ("postcode", "postal_code", "postalCode", "zip", "zip_code", "plz"),
    "city": ("city", "town", "suburb"),
    "email": ("email",),
    "phone": ("phone", "phone_number", "mobile"),
}
_NUMBER_LAST = re.compile(r"^(?P<street>.*?[^\d\s,])[\s,]+(?P<number>\d+\s?[a-zA-Z]?(?:\s?[-/]\s?\d+[a-zA-Z]?)?)$")
_NUMBER_FIRST = re.compile(r"^(?P<number>\d+[a-zA-Z]?(?:[-/]\d+[a-zA-Z]?)?)[\s,]+(?P<street>\D.*)$")


def split_street(line: str) -> tuple[str, str]:
    """"Hauptstraße 12a" -> ("Hauptstraße", "12a"); "12 Main St" -> ("Main St", "12"); otherwise (line, "")."""
    text = line.strip()
    for pattern in (_NUMBER_LAST, _NUMBER_FIRST):
        found = pattern.match(text)
        if found:
            return found.group("street").strip(), found.group("number").replace(" ", "")
    return text, ""


def _scalar(value):
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return value
    return None


def profile_record(traits: Mapping | None, identities: Mapping[str, str] | None = None) -> dict:
    """A profile as a record for the engine: its traits (scalars), plus the canonical fields of the default rules
    from their usual trait names; a street line with the number in it is split; email and phone fall back to the
    profile's identities."""
    traits = traits if isinstance(traits, Mapping) else {}
    record: dict = {k: v for k, v in traits.items() if isinstance(k, str) and _scalar(v) is not None}
    address = traits.get("address")
    if isinstance(address, Mapping):  # Segment's address object
        for target, keys in (("street", ("street", "line1")), ("postcode", ("postalCode", "postal_code", "zip")),
                             ("city", ("city",))):
            for key in keys:
                if _scalar(address.get(key)) not in (None, ""):
                    record.setdefault(f"address_{target}", address[key])
                    break
    for target, names in TRAIT_ALIASES.items():
        value = None
        for name in names:
            value = _scalar(traits.get(name))
            if value not in (None, ""):
                break
        if value in (None, "") and f"address_{target}" in record:
            value = record[f"address_{target}"]
        record[target] = value if value not in (None, "") else None
    if not record["first_name"] and not record["last_name"]:
        full = _scalar(traits.get("name"))
        if isinstance(full, str) and full.strip():
            parts = full.split()
            record["first_name"], record["last_name"] = (parts[0], " ".join(parts[1:]) or None) if len(parts) > 1 \
                else (None, parts[0])
    if record["street"] and not record["house_number"] and isinstance(record["street"], str):
        street, number = split_street(record["street"])
        record["street"], record["house_number"] = street or None, number or None
    for kind in ("email", "phone"):
        if not record[kind] and identities and identities.get(kind):
            record[kind] = identities[kind]
    return record


def _identity_map(profile_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Per profile, its first email and phone identity (the lowest id; flagged values are never used)."""
    out: dict[int, dict[str, str]] = {}
    ids = list(profile_ids)
    for start in range(0, len(ids), 5000):
        rows = (Identity.objects.filter(profile_id__in=ids[start:start + 5000], type__in=("email", "phone"),
                                        flagged=False)
                .order_by("id").values_list("profile_id", "type", "value"))
        for pk, kind, value in rows:
            out.setdefault(pk, {}).setdefault(kind, value)
    return out


def _live_records(profile_ids: Iterable[int]) -> tuple[list[int], list[dict]]:
    """The records of those profiles that are not merged away, in id order."""
    ids = sorted(set(profile_ids))
    rows: list[tuple[int, dict]] = []
    for start in range(0, len(ids), 5000):
        rows.extend(Profile.objects.filter(pk__in=ids[start:start + 5000], merged_into__isnull=True)
                    .values_list("pk", "traits"))
    rows.sort()
    identities = _identity_map([pk for pk, _ in rows])
    return [pk for pk, _ in rows], [profile_record(traits, identities.get(pk)) for pk, traits in rows]


def _live_ids(profile_ids: Iterable[int]) -> list[int]:
    """The given ids with tombstones replaced by the profile they were merged into (followed to the end)."""
    ids = {int(pk) for pk in profile_ids}
    live: set[int] = set()
    for _ in range(20):
        if not ids:
            break
        rows = list(Profile.objects.filter(pk__in=ids).values_list("pk", "merged_into_id"))
        ids = set()
        for pk, into in rows:
            if into is None:
                live.add(pk)
            else:
                ids.add(into)
    return sorted(live)


# -------------------------------------------------------------------------------------------- match keys
def _digest(text: str) -> str:
    return base64.b32encode(hashlib.blake2b(text.encode(), digest_size=10).digest()).decode().rstrip("=")


def _key_texts(enc, rules: MatchRules) -> list[list[str | None]]:
    """Per blocking key, per record: the key value as text (None when a part is missing), as
    ``profiles.matching.blocking_key_values`` makes it, from records encoded once."""
    out = []
    for key in rules.blocking:
        columns = []
        for field_name, feature in key.parts:
            f = enc[field_name]
            texts = np.empty(len(f.keys) + 1, dtype=object)
            texts[:-1] = [feature_text(feature, k, v) for k, v in zip(f.keys, f.values, strict=True)]
            texts[-1] = ""
            columns.append(texts[f.codes])
        values: list[str | None] = []
        for parts in zip(*columns, strict=True):
            values.append(SEPARATOR.join(parts) if all(parts) else None)
        out.append(values)
    return out


def _keys_for(rule: MatchRule, enc, rules: MatchRules, records=None) -> list[set[str]]:
    """Per record, its MatchKey values for this rule; with ``records``, also a fingerprint of the fields the rule
    reads (``<rule id>.f.<digest>``), so a profile whose record did not change is not matched again."""
    per_record: list[set[str]] = [set() for _ in range(enc.n)]
    for position, values in enumerate(_key_texts(enc, rules)):
        prefix = f"{rule.pk}.{position}."
        memo: dict[str, str] = {}
        for i, text in enumerate(values):
            if text:
                digest = memo.get(text)
                if digest is None:
                    digest = memo[text] = prefix + _digest(text)
                per_record[i].add(digest)
    if records is not None:
        sources = [f.source for f in rules.fields]
        for i, record in enumerate(records):
            text = SEPARATOR.join("" if record.get(s) is None else str(record.get(s)) for s in sources)
            per_record[i].add(f"{rule.pk}.f.{_digest(text)}")
    return per_record


def _is_fingerprint(key: str) -> bool:
    return key.split(".", 2)[1:2] == ["f"]


def _keys_write(profile_ids: list[int], keys: list[set[str]], *, bulk: bool = False) -> int:
    """Insert match keys. ``bulk`` (the full run, after deleting every key of the rule in the same transaction):
    COPY on PostgreSQL. Otherwise rows another worker wrote meanwhile for the same profile are skipped."""
    rows = [(pk, key) for pk, ks in zip(profile_ids, keys, strict=True) for key in sorted(ks)]
    if bulk and connection.vendor == "postgresql":
        table = connection.ops.quote_name(MatchKey._meta.db_table)
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} (profile_id, key) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        MatchKey.objects.bulk_create([MatchKey(profile_id=pk, key=key) for pk, key in rows], batch_size=2000,
                                     ignore_conflicts=True)
    return len(rows)


@transaction.atomic
def match_keys_refresh(*, profile_ids: Iterable[int], rules: list[MatchRule] | None = None) -> set[int]:
    """Store the blocking key values (and a fingerprint) of these profiles; those merged away lose theirs.
    Returns the ids of the live profiles whose keys changed (new, or a matched field changed)."""
    ids = sorted({int(pk) for pk in profile_ids})
    if not ids:
        return set()
    rules = enabled_rules() if rules is None else rules
    live, records = _live_records(ids)
    wanted: list[set[str]] = [set() for _ in live]
    for rule in rules:
        compiled = _rules_of(rule)
        enc = encode(records, compiled)
        for mine, keys in zip(wanted, _keys_for(rule, enc, compiled, records), strict=True):
            mine |= keys
    stored: dict[int, set[str]] = {}
    for start in range(0, len(ids), 5000):
        for pk, key in MatchKey.objects.filter(profile_id__in=ids[start:start + 5000]).values_list("profile_id",
                                                                                                 "key"):
            stored.setdefault(pk, set()).add(key)
    changed = [i for i, pk in enumerate(live) if stored.get(pk, set()) != wanted[i]]
    gone = set(ids) - set(live)
    stale = [live[i] for i in changed] + [pk for pk in gone if pk in stored]
    for start in range(0, len(stale), 5000):
        MatchKey.objects.filter(profile_id__in=stale[start:start + 5000]).delete()
    _keys_write([live[i] for i in changed], [wanted[i] for i in changed])
    return {live[i] for i in changed}


# ------------------------------------------------------------------------------------------- decided pairs
def _decided_pairs(profile_ids: list[int] | None = None) -> set[tuple[int, int]]:
    """Pairs (smaller id first) never to merge or queue again: NeverMerge, decided review pairs, undone merges.
    All of them, or those touching ``profile_ids``."""
    never = NeverMerge.objects.all()
    decided = MatchCandidate.objects.exclude(status=MatchCandidate.Status.PENDING)
    undone = Merge.objects.filter(undone_at__isnull=False, winner__isnull=False)
    if profile_ids is not None:
        never = never.filter(Q(profile_a_id__in=profile_ids) | Q(profile_b_id__in=profile_ids))
        decided = decided.filter(Q(profile_a_id__in=profile_ids) | Q(profile_b_id__in=profile_ids))
        undone = undone.filter(Q(winner_id__in=profile_ids) | Q(loser_id__in=profile_ids))
    pairs: set[tuple[int, int]] = set()
    for a, b in never.values_list("profile_a_id", "profile_b_id"):
        pairs.add((min(a, b), max(a, b)))
    for a, b in decided.values_list("profile_a_id", "profile_b_id"):
        pairs.add((min(a, b), max(a, b)))
    for a, b in undone.values_list("winner_id", "loser_id"):
        pairs.add((min(a, b), max(a, b)))
    return pairs


# ---------------------------------------------------------------------------------------------- results
@dataclass
class MatchResult:
    """What a matching pass did."""

    profiles: int = 0  # live profiles matched
    compared: int = 0  # candidate pairs scored
    auto_merged: int = 0
    sent_to_review: int = 0
    refused: int = 0
    skipped_decided: int = 0  # pairs above the review threshold left alone: never merge, decided, undone
    merges: list[int] = field(default_factory=list)  # Merge ids
    merged_away: list[int] = field(default_factory=list)  # the losers of those merges (now tombstones)
    candidates: list[int] = field(default_factory=list)  # MatchCandidate ids (pending)
    seconds: dict[str, float] = field(default_factory=dict)

    def __iadd__(self, other: MatchResult) -> MatchResult:
        for name in ("profiles", "compared", "auto_merged", "sent_to_review", "refused", "skipped_decided"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.merges += other.merges
        self.merged_away += other.merged_away
        self.candidates += other.candidates
        for name, value in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value
        return self

    def as_dict(self) -> dict:
        return {"profiles": self.profiles, "compared": self.compared, "auto_merged": self.auto_merged,
                "sent_to_review": self.sent_to_review, "refused": self.refused,
                "skipped_decided": self.skipped_decided,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


# While this thread runs a matching pass, profile_changed from its own merges does not enqueue more matching:
# the pass looks at the merged profiles itself.
_state = threading.local()


def matching_in_progress() -> bool:
    return bool(getattr(_state, "depth", 0))


@contextmanager
def _matching():
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


@dataclass
class _Scored:
    a: int  # profile ids, a < b
    b: int
    score: float
    weight: float
    evidence: dict


# Auto-merges handed to profiles_merge_batch at a time (one transaction each).
MERGE_BATCH = 2000


def _find(root: dict[int, int], pk: int) -> int:
    """The root of ``pk`` in a union-find forest kept as child -> parent (paths are compressed)."""
    path = []
    while pk in root:
        path.append(pk)
        pk = root[pk]
    for p in path:
        root[p] = pk
    return pk


def _merge_batches(auto: list[_Scored], decided: set[tuple[int, int]], result: MatchResult
                   ) -> list[list[_Scored]]:
    """The auto-merge pairs (best first) in batches of whole clusters: each connected component of the pairs goes
    into one batch, in its order, so that the batches touch disjoint profiles and can be merged side by side. A
    pair already decided (never merge, dismissed, undone), also between the clusters it would join, is left out
    and counted."""
    root: dict[int, int] = {}
    kept: list[_Scored] = []
    for item in auto:
        if (item.a, item.b) in decided:
            result.skipped_decided += 1
            continue
        a, b = _find(root, item.a), _find(root, item.b)
        if a == b:
            continue
        if (a, b) != (item.a, item.b) and (min(a, b), max(a, b)) in decided:
            result.skipped_decided += 1
            continue
        root[max(a, b)] = min(a, b)
        kept.append(item)
    components: dict[int, list[_Scored]] = {}
    for item in kept:
        components.setdefault(_find(root, item.a), []).append(item)
    batches: list[list[_Scored]] = [[]]
    for pairs in components.values():
        if batches[-1] and len(batches[-1]) + len(pairs) > MERGE_BATCH:
            batches.append([])
        batches[-1] += pairs
    return [batch for batch in batches if batch]


def _merge_workers(threads: int | None) -> int:
    """Batches merged side by side: one per core on PostgreSQL outside a transaction (each worker has its own
    connection and transactions, and the batches' profiles are disjoint); else one."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, min(threads or os.cpu_count() or 1, 4))


def _apply(scored: list[_Scored], rule: MatchRule, rules: MatchRules, decided: set[tuple[int, int]],
           result: MatchResult, actor=None, progress: Progress | None = None, threads: int | None = 1) -> set[int]:
    """Merge the pairs at or above the auto-merge threshold (best first, following earlier merges) through
    ``profiles_merge_batch``, whole clusters per batch of about MERGE_BATCH pairs, ``threads`` batches side by side
    (see ``_merge_workers``), and queue the pairs between the thresholds. A pair the identity rules or a
    never-merge pair forbid is refused (and logged) by the batch and counted here. Returns the ids of the profiles
    that won a merge."""
    from profiles.services.merges import MergePair, MergeRefused, profiles_merge_batch

    scored.sort(key=lambda s: (-s.weight, s.a, s.b))
    auto = [item for item in scored if item.score >= rules.auto_merge]
    review = [item for item in scored if item.score < rules.auto_merge]
    batches = _merge_batches(auto, decided, result)
    to_merge = sum(len(batch) for batch in batches)

    def merge(batch: list[_Scored]) -> list:
        with _matching():
            return profiles_merge_batch(pairs=[
                MergePair(item.a, item.b, "match", rule.name, item.score,
                          {"profiles": [item.a, item.b], "weight": item.weight, "fields": item.evidence},
                          older_wins=True)
                for item in batch], actor=actor)

    def merge_in_worker(batch: list[_Scored]) -> list:
        try:
            return merge(batch)
        finally:
            connection.close()  # this worker thread's own connection

    made: dict[int, int] = {}  # loser -> winner
    done = 0
    workers = min(_merge_workers(threads), len(batches))
    if workers > 1:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unify-merge")
        outcomes_of = pool.map(merge_in_worker, batches)
    else:
        pool, outcomes_of = None, map(merge, batches)
    try:
        for batch, outcomes in zip(batches, outcomes_of, strict=True):
            for item, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, MergeRefused):
                    result.refused += 1
                    decided.add((item.a, item.b))
                elif outcome is not None:
                    made[outcome.loser_id] = outcome.winner_id
                    result.auto_merged += 1
                    result.merges.append(outcome.pk)
                    result.merged_away.append(outcome.loser_id)
            done += len(batch)
            if progress:
                progress("merge", done, to_merge)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    winners = {winner for winner in made.values() if winner not in made}
    # The review pairs, on the profiles as they are after the merges.
    final: dict[tuple[int, int], _Scored] = {}
    for item in review:
        a, b = _find(made, item.a), _find(made, item.b)
        if a == b:
            continue
        pair = (min(a, b), max(a, b))
        if pair in decided or (item.a, item.b) in decided:
            result.skipped_decided += 1
            continue
        if pair not in final or item.weight > final[pair].weight:
            final[pair] = item
    if final:
        result.candidates += _candidates_upsert(final, rule)
        result.sent_to_review += len(final)
    # Pending review pairs of merged-away profiles are moot: their winners are matched again.
    gone = sorted(made)
    for start in range(0, len(gone), 5000):
        chunk = gone[start:start + 5000]
        MatchCandidate.objects.filter(Q(profile_a_id__in=chunk) | Q(profile_b_id__in=chunk),
                                      status=MatchCandidate.Status.PENDING).delete()
    return winners


def _candidates_upsert(pairs: dict[tuple[int, int], _Scored], rule: MatchRule) -> list[int]:
    """Pending MatchCandidates for these pairs (a decided one is never touched; a pending one gets the new score)."""
    ids: list[int] = []
    keys = list(pairs)
    existing: dict[tuple[int, int], MatchCandidate] = {}
    for start in range(0, len(keys), 2000):
        chunk = keys[start:start + 2000]
        query = Q()
        for a in {a for a, _ in chunk}:
            query |= Q(profile_a_id=a, profile_b_id__in=[b for x, b in chunk if x == a])
        for candidate in MatchCandidate.objects.filter(query):
            existing[(candidate.profile_a_id, candidate.profile_b_id)] = candidate
    new, changed = [], []
    for pair, item in pairs.items():
        evidence_doc = {"profiles": [item.a, item.b], "weight": item.weight, "fields": item.evidence}
        candidate = existing.get(pair)
        if candidate is None:
            new.append(MatchCandidate(profile_a_id=pair[0], profile_b_id=pair[1], score=item.score,
                                      evidence=evidence_doc, rule=rule))
        elif candidate.status == MatchCandidate.Status.PENDING:
            candidate.score, candidate.evidence, candidate.rule = item.score, evidence_doc, rule
            changed.append(candidate)
            ids.append(candidate.pk)
    if new:
        MatchCandidate.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        created = MatchCandidate.objects.filter(
            status=MatchCandidate.Status.PENDING,
            profile_a_id__in=[c.profile_a_id for c in new]).values_list("pk", "profile_a_id", "profile_b_id")
        wanted = {(c.profile_a_id, c.profile_b_id) for c in new}
        ids += [pk for pk, a, b in created if (a, b) in wanted]
    if changed:
        MatchCandidate.objects.bulk_update(changed, ["score", "evidence", "rule"], batch_size=1000)
    return ids


def _score(enc, ia: np.ndarray, ib: np.ndarray, ids: list[int], rules: MatchRules, threads: int | None = None
           ) -> list[_Scored]:
    """Score pairs of encoded records; keep those at or above the review threshold, with their evidence."""
    if not ia.size:
        return []
    weights = match_weights(enc, ia, ib, rules, threads=threads)
    scores = probability(weights)
    keep = np.flatnonzero(scores >= rules.review)
    if not keep.size:
        return []
    ia, ib, weights, scores = ia[keep], ib[keep], weights[keep], scores[keep]
    notes = pair_evidence(enc, ia, ib, rules)
    out = []
    for x, y, w, s, note in zip(ia.tolist(), ib.tolist(), weights.tolist(), scores.tolist(), notes, strict=True):
        a, b = ids[x], ids[y]
        out.append(_Scored(a=min(a, b), b=max(a, b), score=float(s), weight=round(float(w), 3), evidence=note))
    return out


# ------------------------------------------------------------------------------------------ incremental
def match_incremental(*, profile_ids: Iterable[int], actor=None) -> MatchResult:
    """Match new and changed profiles against every stored profile: candidates through MatchKey, scored by the
    engine; auto-merge at or above the rule's auto-merge threshold, queue for review between the thresholds.
    Idempotent: running it again finds the same pairs decided or queued."""
    result = MatchResult()
    rules = enabled_rules()
    if not rules:
        return result
    with _matching():
        targets = _live_ids(profile_ids)
        for _round in range(5):  # a merge changes the winner: match it again, a few rounds at most
            if not targets:
                break
            winners: set[int] = set()
            changed = sorted(match_keys_refresh(profile_ids=targets, rules=rules))
            result.profiles += len(targets)
            if not changed:
                break
            for rule in rules:
                winners |= _incremental_rule(rule, changed, result, actor)
            targets = _live_ids(winners)
    return result


def _incremental_rule(rule: MatchRule, targets: list[int], result: MatchResult, actor) -> set[int]:
    compiled = _rules_of(rule)
    prefix = f"{rule.pk}."
    own = list(MatchKey.objects.filter(profile_id__in=targets, key__startswith=prefix).values_list("profile_id",
                                                                                                    "key"))
    own = [(pk, key) for pk, key in own if not _is_fingerprint(key)]
    if not own:
        return set()
    keys = sorted({key for _, key in own})
    usable = set()
    for start in range(0, len(keys), 5000):
        counts = (MatchKey.objects.filter(key__in=keys[start:start + 5000]).values("key")
                  .annotate(n=Count("id")).order_by())
        usable.update(row["key"] for row in counts if 2 <= row["n"] <= compiled.max_block_size)
    members: dict[str, list[int]] = {}
    usable_list = sorted(usable)
    for start in range(0, len(usable_list), 5000):
        for pk, key in MatchKey.objects.filter(key__in=usable_list[start:start + 5000]).values_list("profile_id",
                                                                                                   "key"):
            members.setdefault(key, []).append(pk)
    pairs: set[tuple[int, int]] = set()
    for pk, key in own:
        for other in members.get(key, ()):
            if other != pk:
                pairs.add((min(pk, other), max(pk, other)))
    if not pairs:
        return set()
    ids, records = _live_records({p for pair in pairs for p in pair})
    position = {pk: i for i, pk in enumerate(ids)}
    pairs = {pair for pair in pairs if pair[0] in position and pair[1] in position}
    result.compared += len(pairs)
    if not pairs:
        return set()
    enc = encode(records, compiled)
    ordered = sorted(pairs)
    ia = np.fromiter((position[a] for a, _ in ordered), dtype=np.int64, count=len(ordered))
    ib = np.fromiter((position[b] for _, b in ordered), dtype=np.int64, count=len(ordered))
    scored = _score(enc, ia, ib, ids, compiled, threads=1)
    if not scored:
        return set()
    decided = _decided_pairs(sorted({p for s in scored for p in (s.a, s.b)}))
    return _apply(scored, rule, compiled, decided, result, actor)


# ------------------------------------------------------------------------------------------------- full
FULL_READ_CHUNK = 20_000


def _all_live_records(progress: Progress | None) -> tuple[list[int], dict[str, list], int]:
    """Every live profile as columns of the engine's record fields (all sources of all enabled rules)."""
    total = Profile.objects.filter(merged_into__isnull=True).count()
    ids: list[int] = []
    records: list[dict] = []
    last = 0
    while True:
        rows = list(Profile.objects.filter(merged_into__isnull=True, pk__gt=last).order_by("pk")
                    .values_list("pk", "traits")[:FULL_READ_CHUNK])
        if not rows:
            break
        last = rows[-1][0]
        missing = [pk for pk, traits in rows
                   if not (isinstance(traits, dict) and traits.get("email") and traits.get("phone"))]
        identities = _identity_map(missing) if missing else {}
        for pk, traits in rows:
            ids.append(pk)
            records.append(profile_record(traits, identities.get(pk)))
        if progress:
            progress("read", len(ids), total)
    return ids, records, total


def _dry_run(scored: list[_Scored], rules: MatchRules, decided: set[tuple[int, int]], result: MatchResult) -> None:
    """Count what ``_apply`` would do, writing nothing (merges follow earlier merges in memory; no rule of
    ``profiles_merge_batch`` is checked, so refusals are not counted)."""
    scored.sort(key=lambda s: (-s.weight, s.a, s.b))
    root: dict[int, int] = {}

    def find(pk: int) -> int:
        return _find(root, pk)

    review: set[tuple[int, int]] = set()
    for item in scored:
        if (item.a, item.b) in decided:
            result.skipped_decided += 1
            continue
        a, b = find(item.a), find(item.b)
        if a == b:
            continue
        if item.score >= rules.auto_merge:
            root[max(a, b)] = min(a, b)
            result.auto_merged += 1
        else:
            review.add((item.a, item.b))
    result.sent_to_review += len({(min(find(a), find(b)), max(find(a), find(b))) for a, b in review
                                  if find(a) != find(b)})


# Rounds of the full run: the first scores every candidate pair; each later one only the pairs of the profiles
# whose record a merge of the round before changed (the winners), until a round merges nothing.
FULL_ROUNDS = 3


def unify_full(*, progress: Progress | None = None, actor=None, threads: int | None = None,
               dry_run: bool = False) -> MatchResult:
    """Match every live profile against every other, through the blocking keys (near-linear): read, encode,
    block, score, then merge and queue; then, in memory, the winners again against everything (their golden
    records changed), round after round while merges happen (``FULL_ROUNDS``); then rebuild the match keys for the
    incremental path from the records as they are at the end. Winners of a last round that merged are matched
    incrementally. ``progress(stage, done, total)`` is called along the way. ``dry_run``: count what the first
    round would merge and queue, and change nothing."""
    import time

    result = MatchResult()
    rules = enabled_rules()
    if not rules:
        return result

    def timed(stage: str, since: float) -> float:
        now = time.perf_counter()
        result.seconds[stage] = result.seconds.get(stage, 0.0) + now - since
        return now

    with _matching():
        started = time.perf_counter()
        ids, records, total = _all_live_records(progress)
        result.profiles = len(ids)
        timed("read", started)
        stale: set[int] = set()  # live profiles whose match keys (of some rule) may not fit their record
        for number, rule in enumerate(rules):
            compiled = _rules_of(rule)
            decided = _decided_pairs()
            changed: np.ndarray | None = None  # positions to match again (None: every pair)
            rule_winners: set[int] = set()
            for round_number in range(FULL_ROUNDS):
                step = time.perf_counter()
                enc = encode(records, compiled)
                step = timed("encode", step)
                if progress:
                    progress("encode", len(ids), len(ids))
                ia, ib, _stats = candidate_pairs(enc, compiled)
                if changed is not None:
                    keep = changed[ia] | changed[ib]
                    ia, ib = ia[keep], ib[keep]
                result.compared += int(ia.size)
                scored: list[_Scored] = []
                chunk = 1 << 20
                for start in range(0, ia.size, chunk):
                    scored += _score(enc, ia[start:start + chunk], ib[start:start + chunk], ids, compiled, threads)
                    if progress:
                        progress("score", min(start + chunk, int(ia.size)), int(ia.size))
                step = timed("block_score", step)
                if dry_run:
                    _dry_run(scored, compiled, decided, result)
                    timed("count", step)
                    break
                won = _apply(scored, rule, compiled, decided, result, actor, progress, threads)
                del scored
                step = timed("merge_review", step)
                if not won:
                    break
                rule_winners |= won
                if round_number == FULL_ROUNDS - 1:
                    stale |= won  # matched again incrementally below (their stored keys tell it they changed)
                    break
                # The next round: the losers are gone, the winners have their new golden records.
                gone = set(result.merged_away)
                fresh = dict(zip(*_live_records(won), strict=True))
                kept = [i for i, pk in enumerate(ids) if pk not in gone]
                ids = [ids[i] for i in kept]
                records = [fresh.get(ids[j], records[i]) for j, i in enumerate(kept)]
                changed = np.fromiter((pk in fresh for pk in ids), dtype=bool, count=len(ids))
                timed("reread_winners", step)
                if progress:
                    progress("rematch", len(fresh), len(fresh))
            step = time.perf_counter()
            keys = _keys_for(rule, enc, compiled, records)  # enc, records and ids are aligned here
            del enc
            step = timed("keys_compute", step)
            if dry_run:
                continue
            gone = set(result.merged_away)
            kept = [i for i, pk in enumerate(ids) if pk not in gone]
            ids, records = [ids[i] for i in kept], [records[i] for i in kept]
            with transaction.atomic():
                MatchKey.objects.filter(key__startswith=f"{rule.pk}.").delete()
                _keys_write(ids, [keys[i] for i in kept], bulk=True)
            del keys
            timed("keys", step)
            if progress:
                progress("keys", len(ids), len(ids))
            if number:  # the keys of the rules before no longer fit this rule's winners
                stale |= rule_winners
        stale -= set(result.merged_away)
        if stale:
            step = time.perf_counter()
            result += match_incremental(profile_ids=stale, actor=actor)
            timed("rematch_incremental", step)
    return result


# ---------------------------------------------------------------------------------------- review decisions
class CandidateDecisionError(ValueError):
    pass


DECISIONS = ("merge", "never_merge", "dismiss")


def candidate_decide(*, candidate: MatchCandidate, decision: str, actor=None, request=None) -> MatchCandidate:
    """A person's decision on a review pair: merge (journaled with the rule, score and evidence), never merge
    (a NeverMerge pair, respected from then on) or dismiss (left apart; not queued again). Audited. A merge that a
    rule refuses raises CandidateDecisionError after the decision's transaction has committed the MergeRefusal
    (the pair stays pending)."""
    candidate, refused = _candidate_decide(candidate=candidate, decision=decision, actor=actor, request=request)
    if refused is not None:
        raise CandidateDecisionError(f"The merge was refused: {refused}") from refused
    return candidate


@transaction.atomic
def _candidate_decide(*, candidate: MatchCandidate, decision: str, actor, request):
    from profiles.services.merges import MergePair, MergeRefused, never_merge_add, profiles_merge_batch

    if decision not in DECISIONS:
        raise CandidateDecisionError(f"Unknown decision {decision!r}; use one of {', '.join(DECISIONS)}.")
    candidate = MatchCandidate.objects.select_for_update(of=("self",)).select_related("rule").get(pk=candidate.pk)
    if candidate.status != MatchCandidate.Status.PENDING:
        raise CandidateDecisionError(f"This pair was decided already ({candidate.get_status_display().lower()}).")
    profiles = {p.pk: p for p in Profile.objects.filter(pk__in=[candidate.profile_a_id, candidate.profile_b_id])}
    a, b = profiles.get(candidate.profile_a_id), profiles.get(candidate.profile_b_id)
    if a is None or b is None or a.merged_into_id or b.merged_into_id:
        raise CandidateDecisionError("One of the two profiles was merged or erased meanwhile; the pair is moot.")
    if decision == "merge":
        [outcome] = profiles_merge_batch(pairs=[MergePair(
            a.pk, b.pk, "manual", candidate.rule.name if candidate.rule else "", candidate.score,
            candidate.evidence)], actor=actor)
        if isinstance(outcome, MergeRefused):
            return candidate, outcome
        candidate.status = MatchCandidate.Status.MERGED
        summary = "Merged a review pair"
        action = "merge"
    elif decision == "never_merge":
        never_merge_add(profile_a=a, profile_b=b, actor=actor)
        candidate.status = MatchCandidate.Status.NEVER_MERGE
        summary = "Marked a review pair never to merge"
        action = "change"
    else:
        candidate.status = MatchCandidate.Status.DISMISSED
        summary = "Dismissed a review pair"
        action = "change"
    candidate.decided_by = actor if getattr(actor, "is_authenticated", False) else None
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "decided_by", "decided_at"])
    audit_record(actor=actor, action=action, object_type="profiles.matchcandidate", object_id=candidate.pk,
                 profile_id=a.pk, summary=f"{summary} ({a.pk} and {b.pk}, score {candidate.score:.3f})",
                 request=request)
    return candidate, None


__all__ = [
    "DECISIONS",
    "CandidateDecisionError",
    "MatchResult",
    "MatchRuleInvalid",
    "candidate_decide",
    "enabled_rules",
    "match_incremental",
    "match_keys_refresh",
    "match_rule_delete",
    "match_rule_save",
    "match_rule_validate",
    "match_rules_install",
    "matching_enabled",
    "matching_in_progress",
    "candidate_fields",
    "profile_record",
    "review_queue",
    "split_street",
    "unify_full",
]


# --------------------------------------------------------------------------------------------- reads
def review_queue():
    """Pending review pairs whose two profiles are both live, best score first (for the UI and the API)."""
    return (MatchCandidate.objects.filter(status=MatchCandidate.Status.PENDING,
                                          profile_a__merged_into__isnull=True, profile_b__merged_into__isnull=True)
            .select_related("profile_a", "profile_b", "rule").order_by("-score", "-id"))


def candidate_fields(candidate: MatchCandidate) -> list[dict]:
    """The pair side by side: per field of its rule, both profiles' values and the evidence for it (level,
    weight, similarity)."""
    rules = None
    if candidate.rule_id:
        try:
            rules = _rules_of(candidate.rule)
        except MatchRuleInvalid:
            rules = None
    a = profile_record(candidate.profile_a.traits)
    b = profile_record(candidate.profile_b.traits)
    evidence_doc = candidate.evidence or {}
    fields = evidence_doc.get("fields", evidence_doc) if isinstance(evidence_doc, dict) else {}
    names = [f.name for f in rules.fields] if rules else list(fields)
    sources = {f.name: f.source for f in rules.fields} if rules else {}
    rows = []
    for name in names:
        note = fields.get(name) or {}
        measure = next((k for k in note if k not in ("level", "weight", "swapped")), None)
        source = sources.get(name, name)
        rows.append({"name": name, "a": a.get(source), "b": b.get(source), "level": note.get("level", ""),
                     "weight": note.get("weight"), "measure": measure,
                     "similarity": note.get(measure) if measure else None, "swapped": bool(note.get("swapped"))})
    return rows
