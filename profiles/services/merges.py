"""The merge journal: merge two profiles, explain it, undo it; never-merge pairs.

``profiles_merge`` moves everything that belongs to the loser to the winner and writes down exactly what moved
(``Merge.moved``), so that ``merge_undo`` can give every row back:

- identities, events, notes, match keys: by id;
- trait values (lineage): by id; where the winner already had the same (name, source, value) the two rows are
  combined and the loser's row and the winner's row before are snapshotted;
- rows of other apps with a foreign key to Profile (consent records, segment memberships, ...), found generically
  through ``Profile._meta.related_objects`` (profiles never imports those apps): by model and id. A row that would
  break a unique constraint on the winner stays with the loser and is recorded as kept;
- the loser's traits, trait sources and first/last seen (the loser is kept as a tombstone, ``merged_into`` the
  winner, with empty traits, so that lookups by its id follow it).

Refusals (``MergeRefused``, logged as ``MergeRefusal``): merging a profile with itself or with a tombstone, a
never-merge pair between the two families (a profile and the profiles merged into it), merge protection (two
different values of a ``unique_per_profile`` identity type, e.g. user_id) and limits (more values of a type than
``max_per_profile`` allows).
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

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
from profiles.services.golden import golden_record_recompute
from profiles.services.identity_rules import Rules
from profiles.signals import profile_changed_on_commit, profiles_merged_on_commit

logger = logging.getLogger(__name__)

# Profiles' own models that profiles_merge moves itself (or that must not follow a merge: the journal, the pairs).
_OWN_MOVED = {Identity, Event, TraitValue, Note, MatchKey}


class MergeRefused(Exception):
    """A merge a rule forbids; ``reason`` says which, ``rule`` names the rule (it is logged as a MergeRefusal)."""

    def __init__(self, reason: str, rule: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


def merge_refusal_record(*, profile_a_id: int, profile_b_id: int, reason: str, rule: str = "") -> MergeRefusal:
    """Log a refused merge (once per pair and rule: a shared device would otherwise log one per event)."""
    logger.info("merge of profiles %s and %s refused: %s", profile_a_id, profile_b_id, rule or reason)
    low, high = sorted((profile_a_id, profile_b_id))
    existing = MergeRefusal.objects.filter(
        Q(profile_a_id=low, profile_b_id=high) | Q(profile_a_id=high, profile_b_id=low), rule=rule[:200]).first()
    if existing is not None:
        return existing
    return MergeRefusal.objects.create(profile_a_id=profile_a_id, profile_b_id=profile_b_id, reason=reason[:300],
                                       rule=rule[:200])


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


def family_ids(profile_id: int) -> set[int]:
    """A profile and every profile merged into it (transitively)."""
    family, frontier = {profile_id}, [profile_id]
    while frontier:
        frontier = [pk for pk in Profile.objects.filter(merged_into_id__in=frontier).values_list("id", flat=True)
                    if pk not in family]
        family.update(frontier)
    return family


def never_merge_between(ids_a: set[int], ids_b: set[int]) -> bool:
    pairs = [(min(a, b), max(a, b)) for a in ids_a for b in ids_b if a != b]
    if not pairs:
        return False
    query = Q()
    for a, b in pairs:
        query |= Q(profile_a_id=a, profile_b_id=b)
    return NeverMerge.objects.filter(query).exists()


def merge_check(*, winner_id: int, loser_id: int, rules: Rules | None = None) -> tuple[str, str] | None:
    """Why these two live profiles may not be merged, as (reason, rule), or None when they may."""
    if winner_id == loser_id:
        return "a profile cannot be merged with itself", "same_profile"
    if never_merge_between(family_ids(winner_id), family_ids(loser_id)):
        return "the two profiles are marked never to be merged", "never_merge"
    rules = rules or Rules()
    values: dict[str, dict[int, set[str]]] = {}
    for pk, identity_type, value in (Identity.objects.filter(profile_id__in=[winner_id, loser_id], flagged=False)
                                     .values_list("profile_id", "type", "value")):
        values.setdefault(identity_type, {}).setdefault(pk, set()).add(value)
    for identity_type, by_profile in sorted(values.items()):
        rule = rules.get(identity_type)
        mine, theirs = by_profile.get(winner_id, set()), by_profile.get(loser_id, set())
        if rule.unique_per_profile and mine and theirs and mine != theirs:
            return (f"merge protection: the profiles carry different {identity_type} values",
                    f"identity_rule:{identity_type}:unique_per_profile")
        if rule.max_per_profile and len(mine | theirs) > rule.max_per_profile:
            return (f"limit: together the profiles would carry {len(mine | theirs)} {identity_type} values, "
                    f"at most {rule.max_per_profile} are allowed", f"identity_rule:{identity_type}:max_per_profile")
    return None


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


def _trait_row(row: TraitValue) -> dict:
    return {"id": row.pk, "name": row.name, "value": row.value, "value_hash": row.value_hash, "source": row.source,
            "first_observed_at": row.first_observed_at.isoformat(), "observed_at": row.observed_at.isoformat(),
            "seen_count": row.seen_count}


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


def _move_related(loser_id: int, winner_id: int) -> dict:
    moved: dict[str, dict] = {}
    for model, field in _related_fields():
        ids = list(model._default_manager.filter(**{f"{field}_id": loser_id}).values_list("pk", flat=True))
        if not ids:
            continue
        entry = {"field": field, "ids": ids, "kept": []}
        try:
            with transaction.atomic():
                model._default_manager.filter(pk__in=ids).update(**{f"{field}_id": winner_id})
        except IntegrityError:
            # Row by row: a row that would break a unique constraint on the winner stays with the loser.
            entry["ids"] = []
            for pk in ids:
                try:
                    with transaction.atomic():
                        model._default_manager.filter(pk=pk).update(**{f"{field}_id": winner_id})
                    entry["ids"].append(pk)
                except IntegrityError:
                    entry["kept"].append(pk)
        moved[model._meta.label_lower] = entry
    return moved


def _lock(*ids: int) -> dict[int, Profile]:
    return {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=sorted(ids)).order_by("pk")}


def profiles_merge(*, winner: Profile, loser: Profile, reason: str, rule: str = "", score: float | None = None,
                   evidence: dict | None = None, actor=None, rules: Rules | None = None) -> Merge:
    """Merge ``loser`` into ``winner`` and journal it. Raises MergeRefused when a rule forbids it; the refusal is
    logged as a MergeRefusal (in the caller's transaction: a caller that rolls back on the exception loses it)."""
    if reason not in Merge.Reason.values:
        raise ValueError(f"Unknown merge reason {reason!r}; one of {', '.join(Merge.Reason.values)}.")
    with transaction.atomic():
        locked = _lock(winner.pk, loser.pk)
        if len(locked) != len({winner.pk, loser.pk}):
            raise Profile.DoesNotExist("One of the profiles to merge does not exist.")
        winner, loser = locked[winner.pk], locked[loser.pk]
        if winner.merged_into_id or loser.merged_into_id:
            refusal = ("one of the profiles was already merged into another", "already_merged")
        else:
            refusal = merge_check(winner_id=winner.pk, loser_id=loser.pk, rules=rules)
        if not refusal:
            return _merge(winner, loser, reason=reason, rule=rule, score=score, evidence=evidence or {},
                          actor=actor)
    merge_refusal_record(profile_a_id=winner.pk, profile_b_id=loser.pk, reason=refusal[0], rule=refusal[1])
    raise MergeRefused(*refusal)


def _merge(winner: Profile, loser: Profile, *, reason, rule, score, evidence, actor) -> Merge:
    moved: dict = {}
    identity_ids = list(Identity.objects.filter(profile=loser).values_list("pk", flat=True))
    Identity.objects.filter(pk__in=identity_ids).update(profile=winner)
    moved["identities"] = identity_ids

    event_ids = list(Event.objects.filter(profile=loser).values_list("pk", flat=True))
    Event.objects.filter(pk__in=event_ids).update(profile=winner)
    moved["events"] = {"count": len(event_ids), "ranges": _ranges(event_ids)}

    note_ids = list(Note.objects.filter(profile=loser).values_list("pk", flat=True))
    Note.objects.filter(pk__in=note_ids).update(profile=winner)
    moved["notes"] = note_ids

    have_keys = set(MatchKey.objects.filter(profile=winner).values_list("key", flat=True))
    keys = list(MatchKey.objects.filter(profile=loser).values_list("pk", "key"))
    MatchKey.objects.filter(pk__in=[pk for pk, key in keys if key not in have_keys]).update(profile=winner)
    dropped = [key for _pk, key in keys if key in have_keys]
    MatchKey.objects.filter(profile=loser).delete()
    moved["match_keys"] = {"ids": [pk for pk, key in keys if key not in have_keys], "dropped": dropped}

    # Lineage: move rows; combine with the winner's row of the same (name, source, value).
    winner_rows = {(t.name, t.source, t.value_hash): t for t in TraitValue.objects.filter(profile=winner)}
    moved_ids, combined = [], []
    for row in TraitValue.objects.filter(profile=loser).order_by("pk"):
        mine = winner_rows.get((row.name, row.source, row.value_hash))
        if mine is None:
            moved_ids.append(row.pk)
            continue
        combined.append({"loser": _trait_row(row), "winner_before": _trait_row(mine)})
        mine.seen_count += row.seen_count
        mine.first_observed_at = min(mine.first_observed_at, row.first_observed_at)
        mine.observed_at = max(mine.observed_at, row.observed_at)
        mine.save(update_fields=["seen_count", "first_observed_at", "observed_at"])
        row.delete()
    TraitValue.objects.filter(pk__in=moved_ids).update(profile=winner)
    moved["trait_values"] = {"ids": moved_ids, "combined": combined}

    moved["related"] = _move_related(loser.pk, winner.pk)
    moved["loser"] = {"traits": loser.traits, "trait_sources": loser.trait_sources,
                      "first_seen_at": _iso(loser.first_seen_at), "last_seen_at": _iso(loser.last_seen_at)}
    moved["winner_before"] = {"first_seen_at": _iso(winner.first_seen_at), "last_seen_at": _iso(winner.last_seen_at)}

    winner.first_seen_at = min(filter(None, [winner.first_seen_at, loser.first_seen_at]), default=None)
    winner.last_seen_at = max(filter(None, [winner.last_seen_at, loser.last_seen_at]), default=None)
    winner.save(update_fields=["first_seen_at", "last_seen_at", "updated_at"])
    loser.merged_into = winner
    loser.traits, loser.trait_sources = {}, {}
    loser.save(update_fields=["merged_into", "traits", "trait_sources", "updated_at"])
    # Profiles merged into the loser earlier now follow the winner directly.
    followers = list(Profile.objects.filter(merged_into=loser).values_list("pk", flat=True))
    Profile.objects.filter(pk__in=followers).update(merged_into=winner)
    moved["followers"] = followers
    _traits_without_lineage_carry(winner, moved["loser"])
    golden_record_recompute(profile=winner)

    merge = Merge.objects.create(winner=winner, loser_id=loser.pk, reason=reason, rule=rule[:200], score=score,
                                 evidence=evidence, moved=moved, actor=actor)
    profile_changed_on_commit([winner.pk, loser.pk])
    profiles_merged_on_commit(merge_id=merge.pk, winner_id=winner.pk, loser_id=loser.pk)
    return merge


def _traits_without_lineage_carry(winner: Profile, loser_snapshot: dict) -> None:
    """Traits of the loser that have no lineage row (set before lineage existed) go to the winner when the winner
    has no value for them; with lineage, survivorship decides."""
    have_lineage = set(TraitValue.objects.filter(profile=winner).values_list("name", flat=True).distinct())
    traits = dict(winner.traits or {})
    added = {k: v for k, v in (loser_snapshot["traits"] or {}).items() if k not in have_lineage and k not in traits}
    if added:
        traits.update(added)
        winner.traits = traits
        winner.save(update_fields=["traits", "updated_at"])


@transaction.atomic
def merge_undo(*, merge: Merge, actor=None) -> tuple[Profile, Profile]:
    """Undo a merge: every row that moved goes back to the loser, the loser gets its traits back and is live again,
    the winner's golden record is recomputed. The pair is then marked never to merge. Returns (winner, loser)."""
    merge = Merge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise ValueError(f"Merge {merge.pk} was already undone.")
    if merge.winner_id is None:
        raise ValueError(f"Merge {merge.pk} cannot be undone: the winning profile no longer exists.")
    locked = _lock(merge.winner_id, merge.loser_id)
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

    traits = moved.get("trait_values", {})
    TraitValue.objects.filter(pk__in=traits.get("ids", [])).update(profile=loser)
    for pair in traits.get("combined", []):
        before, theirs = pair["winner_before"], pair["loser"]
        mine = TraitValue.objects.filter(pk=before["id"]).first()
        if mine is not None:
            mine.seen_count = max(1, mine.seen_count - theirs["seen_count"])
            mine.first_observed_at = before["first_observed_at"]
            if mine.observed_at.isoformat() == max(before["observed_at"], theirs["observed_at"]):
                mine.observed_at = before["observed_at"]
            mine.save(update_fields=["seen_count", "first_observed_at", "observed_at"])
        TraitValue.objects.create(
            id=theirs["id"], profile=loser, name=theirs["name"], value=theirs["value"],
            value_hash=theirs["value_hash"], source=theirs["source"], first_observed_at=theirs["first_observed_at"],
            observed_at=theirs["observed_at"], seen_count=theirs["seen_count"])

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
    profiles_merged_on_commit(merge_id=merge.pk, winner_id=winner.pk, loser_id=loser.pk, undone=True)
    return winner, loser


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
