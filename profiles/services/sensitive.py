"""Trait classification and encryption at rest of sensitive traits.

``TraitPolicy.classification`` is the one place that classifies a trait: normal, personal data (PII: masked
without ``core.view_pii``) or sensitive (GDPR Art. 9 special categories: health, religion, ethnicity, political
opinion, sexual orientation, trade union membership ...). Unclassified traits are PII when their name is a known
personal one (``cdp.core.masking.PII_KINDS``), normal otherwise.

A sensitive trait's values are encrypted at rest in every store profiles keeps them in: the golden record
(``Profile.traits``), the lineage (``TraitValue.value``, keyed by a keyed hash instead of an md5), identify events'
properties and every event's ``context.traits``, and the merge journal's snapshots (``Merge.moved``). The write path
seals them as they enter (``golden.seal``); readers decrypt for users with ``core.view_pii``
(``cdp.core.masking``). Identifier traits (email, phone, ids, names: what identity resolution, matching and search
read) cannot be sensitive.

Reclassifying a trait to or from sensitive re-encrypts or decrypts its stored values (``trait_values_reseal``, a
task queued on commit, and again once the other workers' cached policies have expired); ``sensitive_values_rotate``
re-encrypts everything with the first key of ``CDP_ENCRYPTION_KEYS`` (``manage.py rotate_encryption_key``). Both
work through the profiles in chunks, each its own transaction, locking the profiles first in id order as the
pipeline does, and are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from cdp.core import crypto
from cdp.core.masking import PII_KINDS, unseal
from profiles.models import Event, Merge, Profile, TraitPolicy, TraitValue
from profiles.search import SEARCH_TRAITS
from profiles.services import golden
from profiles.services.matching import TRAIT_ALIASES

logger = logging.getLogger(__name__)

Classification = TraitPolicy.Classification

# Traits that identify a person or that identity resolution, matching and search read: never encrypted, because
# they must be compared and searched as they are.
IDENTIFIER_TRAITS = frozenset({"email", "phone", "user_id", "userId", "anonymous_id", "anonymousId", "id",
                               *SEARCH_TRAITS, *(name for names in TRAIT_ALIASES.values() for name in names)})

# Profiles per transaction when values are re-encrypted.
RESEAL_CHUNK = 500


class ClassificationInvalid(ValueError):
    """A classification that is not allowed; ``field`` names the form or API field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def trait_classification(name: str, policies: golden.Policies | None = None) -> str:
    """The effective classification of a trait: its policy's, else PII for the names in PII_KINDS, else normal."""
    classified = (policies or golden.Policies.cached()).classification.get(name)
    if classified:
        return classified
    return Classification.PII.value if name in PII_KINDS else Classification.NORMAL.value


def trait_classification_check(*, trait: str, classification: str, strategy: str | None = None) -> None:
    """Raise ClassificationInvalid when ``trait`` may not have ``classification`` (or the default policy has no
    strategy)."""
    if classification and classification not in Classification.values:
        raise ClassificationInvalid("classification", f"Unknown classification {classification!r}; one of: "
                                                      f"{', '.join(Classification.values)}.")
    if trait == golden.DEFAULT_POLICY:
        if classification:
            raise ClassificationInvalid("classification", "The default policy (\"*\") cannot classify traits: "
                                                          "classify each trait by its name.")
        if strategy == "":
            raise ClassificationInvalid("strategy", "The default policy (\"*\") needs a strategy.")
        return
    if classification == Classification.SENSITIVE and trait in IDENTIFIER_TRAITS:
        raise ClassificationInvalid(
            "classification", f"{trait!r} identifies a person (identity resolution, matching and search read it), "
                              "so it cannot be sensitive: it would have to be compared and searched as plain text. "
                              "Classify it as PII to mask it.")
    if classification == Classification.NORMAL and trait in PII_KINDS:
        raise ClassificationInvalid(
            "classification", f"{trait!r} is personal data by its name; it can be PII or sensitive, not normal.")


@transaction.atomic
def trait_policy_save(*, policy: TraitPolicy) -> TraitPolicy:
    """Save a trait policy (the admin's form and ``trait_classify`` come here). When a trait becomes sensitive or
    stops being sensitive, its stored values are encrypted or decrypted by ``trait_values_reseal``, queued on
    commit. Raises ClassificationInvalid."""
    trait_classification_check(trait=policy.trait, classification=policy.classification, strategy=policy.strategy)
    before = (TraitPolicy.objects.select_for_update().filter(pk=policy.pk).values_list("trait", "classification")
              .first() if policy.pk else None)
    policy.save()
    sensitive = Classification.SENSITIVE.value
    was = {before[0]} if before and before[1] == sensitive else set()
    now = {policy.trait} if policy.classification == sensitive else set()
    for name in sorted(was ^ now):  # a renamed sensitive policy: the old name is decrypted, the new encrypted
        trait_values_reseal_enqueue(name=name)
    return policy


@transaction.atomic
def trait_policy_delete(*, policy: TraitPolicy) -> None:
    """Delete a trait policy; a sensitive trait's values are decrypted (queued on commit)."""
    sensitive = policy.classification == Classification.SENSITIVE
    name = policy.trait
    policy.delete()
    if sensitive:
        trait_values_reseal_enqueue(name=name)


@transaction.atomic
def trait_classify(*, trait: str, classification: str) -> TraitPolicy:
    """Classify a trait (creating its policy, which then takes the default survivorship, when it has none)."""
    policy = TraitPolicy.objects.filter(trait=trait).first() or TraitPolicy(trait=trait, strategy="")
    policy.classification = classification
    return trait_policy_save(policy=policy)


def trait_values_reseal_enqueue(*, name: str) -> None:
    """Queue the re-encryption of one trait's values on commit: at once, and again once every worker's cached
    policies have expired (a worker may write a few values under the old classification until then)."""

    def enqueue():
        from profiles import tasks  # tasks import the services: imported when used

        tasks.trait_values_reseal.delay(name=name)
        tasks.trait_values_reseal.apply_async(kwargs={"name": name},
                                              countdown=golden.POLICIES_CACHE_SECONDS + 5)

    transaction.on_commit(enqueue)


# --- rewriting the stores -----------------------------------------------------------------------------------------


def _sealed(value, *, rotate: bool):
    """A sensitive value as it must be stored: a plain value sealed; a sealed one kept as it is (the same object),
    or encrypted again with the first key when ``rotate``. A value that only looks sealed (no key decrypts it) is
    sealed as the text it is, unless ``rotate``, which must not lose data silently and raises."""
    if golden.is_empty(value):
        return value
    if crypto.is_encrypted(value):
        try:
            plain = unseal(value)
        except crypto.DecryptionError:
            if rotate:
                raise
            return golden.seal(value)
        return golden.seal(plain) if rotate else value
    return golden.seal(value)


def _plain(value):
    """A value of a trait that is not sensitive (any longer): decrypted (others: the same object)."""
    return unseal(value) if crypto.is_encrypted(value) else value


def _rewrite_dict(data, names: set[str], fix: Callable) -> tuple[dict, bool]:
    """``data`` with the values under ``names`` fixed, and whether anything changed (``fix`` returns the same
    object for a value it leaves alone)."""
    if not isinstance(data, dict) or names.isdisjoint(data):
        return data, False
    out, changed = dict(data), False
    for name in names.intersection(data):
        value = fix(data[name])
        if value is not data[name]:
            out[name], changed = value, True
    return out, changed


def _stored_hash(value) -> str:
    """The lineage key of a stored value: a stored encrypted value (not a fresh ``Sealed``) is decrypted to compute
    its keyed hash with the first key."""
    if crypto.is_encrypted(value) and not isinstance(value, golden.Sealed):
        return golden.sensitive_hash(crypto.decrypt(value))
    return golden.value_hash(value)


def _chunk_ids() -> Iterable[list[int]]:
    """Every profile id (tombstones too), in chunks, in id order."""
    last = 0
    while True:
        ids = list(Profile.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:RESEAL_CHUNK])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _lineage_rewrite(profile_ids: list[int], names: set[str], fix: Callable) -> int:
    """Fix the lineage rows of ``names`` of these (locked) profiles and compute their hashes again; rows whose new
    (profile, name, source, hash) collide are combined (seen counts summed, the earliest first and the latest last
    observation). Returns how many rows were rewritten."""
    rows = list(TraitValue.objects.select_for_update().filter(profile_id__in=profile_ids, name__in=names)
                .order_by("pk"))
    kept: dict[tuple, TraitValue] = {}
    gone: list[int] = []
    changed: dict[int, TraitValue] = {}
    for row in rows:
        value = fix(row.value)
        new_hash = _stored_hash(value)
        key = (row.profile_id, row.name, row.source, new_hash)
        survivor = kept.get(key)
        if survivor is not None:
            survivor.seen_count += row.seen_count
            survivor.first_observed_at = min(survivor.first_observed_at, row.first_observed_at)
            survivor.observed_at = max(survivor.observed_at, row.observed_at)
            changed[survivor.pk] = survivor
            gone.append(row.pk)
            continue
        kept[key] = row
        if value is not row.value or new_hash != row.value_hash:  # a hash of another key
            row.value, row.value_hash = value, new_hash
            changed[row.pk] = row
    if gone:
        TraitValue.objects.filter(pk__in=gone).delete()
    if changed:
        TraitValue.objects.bulk_update(list(changed.values()), ["value", "value_hash", "seen_count",
                                                                "first_observed_at", "observed_at"], batch_size=500)
    return len(changed) + len(gone)


def _events_rewrite(profile_ids: list[int], names: set[str], fix: Callable) -> int:
    """Fix identify events' properties and every event's context.traits under ``names`` (these locked profiles)."""
    keys = list(names)
    query = (Q(type=Event.Type.IDENTIFY, properties__has_any_keys=keys)
             | Q(context__traits__has_any_keys=keys))
    changed = []
    for event in Event.objects.filter(query, profile_id__in=profile_ids).only("pk", "type", "properties", "context"):
        properties, a = _rewrite_dict(event.properties, names, fix) if event.type == Event.Type.IDENTIFY \
            else (event.properties, False)
        traits, b = _rewrite_dict((event.context or {}).get("traits"), names, fix) \
            if isinstance(event.context, dict) else (None, False)
        if a or b:
            event.properties = properties
            if b:
                event.context = {**event.context, "traits": traits}
            changed.append(event)
    Event.objects.bulk_update(changed, ["properties", "context"], batch_size=500)
    return len(changed)


def _merge_journal_rewrite(names: set[str], fix: Callable) -> int:
    """Fix the merge journal's snapshots (the loser's traits, combined lineage rows) under ``names``."""
    query = Q()
    for name in names:
        query |= Q(moved_text__contains=f'"{name}"')
    count = 0
    last = 0
    while True:
        with transaction.atomic():
            ids = list(Merge.objects.annotate(moved_text=Cast("moved", TextField())).filter(query, pk__gt=last)
                       .order_by("pk").values_list("pk", flat=True)[:RESEAL_CHUNK])
            if not ids:
                return count
            last = ids[-1]
            changed = []
            for merge in Merge.objects.select_for_update().filter(pk__in=ids).order_by("pk"):
                moved = merge.moved or {}
                touched = False
                loser = moved.get("loser")
                if isinstance(loser, dict):
                    traits, done = _rewrite_dict(loser.get("traits"), names, fix)
                    if done:
                        moved["loser"] = {**loser, "traits": traits}
                        touched = True
                for pair in (moved.get("trait_values") or {}).get("combined") or []:
                    for side in ("loser", "winner_before"):
                        row = pair.get(side)
                        if isinstance(row, dict) and row.get("name") in names:
                            value = fix(row.get("value"))
                            if value is not row.get("value"):
                                pair[side] = {**row, "value": value, "value_hash": _stored_hash(value)}
                                touched = True
                if touched:
                    merge.moved = moved
                    changed.append(merge)
            Merge.objects.bulk_update(changed, ["moved"], batch_size=200)
            count += len(changed)


def _stores_rewrite(names: set[str], fix: Callable) -> dict[str, int]:
    """Apply ``fix`` to every stored value of ``names``: golden record, lineage, events, merge journal. Returns
    how many rows changed per store."""
    counts = {"profiles": 0, "trait_values": 0, "events": 0, "merges": 0}
    if not names:
        return counts
    keys = list(names)
    for ids in _chunk_ids():
        with transaction.atomic():
            # The profiles first, in id order, as the pipeline and merges lock them: no deadlock, no lost update.
            locked = list(Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk")
                          .values_list("pk", flat=True))
            changed = []
            for profile in Profile.objects.filter(pk__in=locked, traits__has_any_keys=keys).only("pk", "traits"):
                traits, done = _rewrite_dict(profile.traits, names, fix)
                if done:
                    profile.traits = traits
                    changed.append(profile)
            Profile.objects.bulk_update(changed, ["traits"], batch_size=500)
            counts["profiles"] += len(changed)
            counts["trait_values"] += _lineage_rewrite(locked, names, fix)
            counts["events"] += _events_rewrite(locked, names, fix)
    counts["merges"] = _merge_journal_rewrite(names, fix)
    return counts


def trait_values_reseal(*, name: str) -> dict[str, int]:
    """Bring one trait's stored values in line with its classification now: encrypted when it is sensitive,
    decrypted otherwise. Idempotent (values already in the right form are left alone); returns how many rows
    changed per store. Raises ``crypto.DecryptionError`` when a sealed value cannot be decrypted."""
    sensitive = (TraitPolicy.objects.filter(trait=name).values_list("classification", flat=True).first()
                 == Classification.SENSITIVE)

    def fix(value):
        return _sealed(value, rotate=False) if sensitive else _plain(value)

    counts = _stores_rewrite({name}, fix)
    logger.info("Trait values %s: %s", "encrypted" if sensitive else "decrypted",
                ", ".join(f"{store} {n}" for store, n in counts.items()))
    return counts


def sensitive_values_rotate() -> int:
    """Encrypt every stored value of the sensitive traits again with the first key of CDP_ENCRYPTION_KEYS and
    compute their keyed hashes again (combining lineage rows that turn out equal). The rotation handler of
    ``profiles.sensitive_traits`` (cdp.core.crypto.register_rotation). Returns how many values were re-encrypted.
    Raises ``crypto.DecryptionError`` when a stored value cannot be decrypted with any configured key."""
    names = set(TraitPolicy.objects.filter(classification=Classification.SENSITIVE).values_list("trait", flat=True))
    rotated = 0

    def fix(value):
        nonlocal rotated
        new = _sealed(value, rotate=True)
        rotated += new is not value
        return new

    _stores_rewrite(names, fix)
    return rotated
