"""What the personalization API answers for a person: the traits they allow to be shared, their segments and the
best offer, with only what consent allows leaving the CDP (see docs/architecture.md, "Personalization").

- The person is found through the identity graph (the value normalized as the pipeline does; a merged profile
  leads to the profile it became).
- Traits, computed traits and segments are shared only while the personalization purpose
  (``PERSONALIZATION_PURPOSE``) is granted, and only those on the allow-lists (``SHARED_TRAITS``,
  ``SHARED_COMPUTED_TRAITS``; settings of the same names override them). Personal traits among them are masked
  for callers without ``core.view_pii``.
- The offer: the enabled offer valid now with the lowest priority number whose segment the person is in and
  whose own consent purpose is granted.
- A person whose processing is restricted (an open restriction or objection request) gets nothing.
- Someone unknown gets the same empty answer as someone who shares nothing, so the answer does not tell whether
  the CDP knows a person.

Queries per answer: one for the profile with every consent flag it needs (identity, profile and consent in one
statement), one for its open memberships, and one for shared computed traits when they are shared. Enabled
offers are cached per process for ``OFFERS_CACHE_SECONDS``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import F, OuterRef
from django.utils import timezone

from activation.models import Offer
from cdp.core.masking import mask_traits
from consent.selectors import consent_granted_exists, processing_restricted_exists
from profiles.models import ComputedValue, Profile
from profiles.search import identifier_candidates
from profiles.selectors import profile_resolve
from segments.models import Membership

# The identifiers the API takes, each the identity type of the same name.
IDENTIFIER_TYPES = ("anonymous_id", "user_id", "email")
PERSONALIZATION_PURPOSE = "personalization"
# Profile traits that may be shared. Personal ones (cdp.core.masking.PII_KINDS) are masked for callers without
# core.view_pii. Identifiers (email, phone, customer numbers), addresses and agents' notes are not shared.
SHARED_TRAITS = ("first_name", "membership", "country", "city", "age_band", "customer_since", "language")
# Computed traits (profiles.ComputedTrait keys) that may be shared.
SHARED_COMPUTED_TRAITS = ("rfm_segment", "order_count", "days_since_last_order")
OFFERS_CACHE_SECONDS = 5.0


def personalization_purpose() -> str:
    return getattr(settings, "PERSONALIZATION_PURPOSE", PERSONALIZATION_PURPOSE)


def shared_traits() -> tuple[str, ...]:
    return tuple(getattr(settings, "PERSONALIZATION_SHARED_TRAITS", SHARED_TRAITS))


def shared_computed_traits() -> tuple[str, ...]:
    return tuple(getattr(settings, "PERSONALIZATION_SHARED_COMPUTED_TRAITS", SHARED_COMPUTED_TRAITS))


# --- offers, cached per process ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedOffer:
    id: int
    name: str
    priority: int
    segment_id: int
    segment_slug: str
    purpose_key: str
    content: dict
    valid_from: datetime | None
    valid_until: datetime | None

    def valid_at(self, when: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= when) and (
            self.valid_until is None or when < self.valid_until)


_offers_cache: tuple[float, list[CachedOffer]] = (0.0, [])


def offers_cache_clear() -> None:
    """Forget the cached offers (this process at once; others within OFFERS_CACHE_SECONDS)."""
    global _offers_cache
    _offers_cache = (0.0, [])


def offers_enabled() -> list[CachedOffer]:
    """Enabled offers, best first (lowest priority number, then the oldest), cached per process for a few
    seconds: the personalization API reads them on every call."""
    global _offers_cache
    expires, offers = _offers_cache
    now = time.monotonic()
    if expires > now:
        return offers
    offers = [CachedOffer(id=o.pk, name=o.name, priority=o.priority, segment_id=o.segment_id,
                          segment_slug=o.segment.slug, purpose_key=o.purpose.key, content=dict(o.content),
                          valid_from=o.valid_from, valid_until=o.valid_until)
              for o in Offer.objects.filter(enabled=True).select_related("segment", "purpose")
              .order_by("priority", "id")]
    _offers_cache = (now + OFFERS_CACHE_SECONDS, offers)
    return offers


def offer_list():
    return Offer.objects.select_related("segment", "purpose")


# --- the answer -------------------------------------------------------------------------------------------------


@dataclass
class Personalization:
    """The answer. ``profile_id`` is for the preview and the audit log; the API does not return it."""

    traits: dict = field(default_factory=dict)
    computed: dict = field(default_factory=dict)
    segments: list[dict] = field(default_factory=list)
    offer: dict | None = None
    profile_id: int | None = None
    shares: bool = False
    restricted: bool = False

    def as_data(self) -> dict:
        return {"traits": self.traits, "computed_traits": self.computed, "segments": self.segments,
                "offer": self.offer}


def _flags(purposes: list[str]) -> dict:
    flags = {f"granted_{i}": consent_granted_exists(purpose_key=key, profile_ref=OuterRef("pk"))
             for i, key in enumerate(purposes)}
    flags["restricted"] = processing_restricted_exists(profile_ref=OuterRef("pk"))
    return flags


def _profile_rows(queryset, purposes: list[str], *extra) -> list[dict]:
    flags = _flags(purposes)
    return list(queryset.order_by().annotate(**flags).values("pk", "merged_into_id", "traits", *flags, *extra))


def _profile_found(identity_type: str, value: str, purposes: list[str]) -> dict | None:
    """The profile row (with its consent flags) that carries the identifier, as profiles.selectors.profile_lookup
    finds it: the normalized value first, then the value as sent; an identifier that failed normalization by its
    raw value; a tombstone followed to the live profile."""
    candidates = identifier_candidates(identity_type, value)
    if not candidates:
        return None
    rows = _profile_rows(Profile.objects.filter(identities__type=identity_type, identities__value__in=candidates)
                         .annotate(identity_value=F("identities__value")), purposes, "identity_value")
    rows.sort(key=lambda row: candidates.index(row["identity_value"]))
    if not rows:
        rows = _profile_rows(Profile.objects.filter(identities__type=identity_type, identities__flagged=True,
                                                    identities__raw_value__in=candidates), purposes)
    if not rows:
        return None
    row = rows[0]
    if row["merged_into_id"]:
        live = profile_resolve(profile_id=row["pk"])
        if live is None or live.merged_into_id:
            return None
        row = _profile_rows(Profile.objects.filter(pk=live.pk), purposes)[0]
    return row


def _computed_values(profile_id: int, keys: tuple[str, ...]) -> dict:
    if not keys:
        return {}
    values = (ComputedValue.objects.filter(profile_id=profile_id, trait__key__in=keys, trait__enabled=True)
              .select_related("trait"))
    return {value.trait.key: value.value for value in values}


def _offer_data(offer: CachedOffer) -> dict:
    return {"id": offer.id, "name": offer.name, "segment": offer.segment_slug, "priority": offer.priority,
            "content": offer.content, "valid_until": offer.valid_until}


def personalization_for(*, identity_type: str, value: str, user, now: datetime | None = None) -> Personalization:
    """The answer for the person carrying the identifier (see the module), for ``user`` (masking)."""
    offers = offers_enabled()
    purpose = personalization_purpose()
    purposes = list(dict.fromkeys([purpose, *(offer.purpose_key for offer in offers)]))
    row = _profile_found(identity_type, value, purposes)
    if row is None:
        return Personalization()
    return _answer(row, purposes, offers, user=user, now=now or timezone.now())


def personalization_for_profile(*, profile_id: int, user, now: datetime | None = None) -> Personalization:
    """The answer for a profile by its id (the offer preview of the UI; a merged id leads to its profile)."""
    offers = offers_enabled()
    purposes = list(dict.fromkeys([personalization_purpose(), *(offer.purpose_key for offer in offers)]))
    live = profile_resolve(profile_id=profile_id)
    if live is None:
        return Personalization()
    row = _profile_rows(Profile.objects.filter(pk=live.pk), purposes)[0]
    return _answer(row, purposes, offers, user=user, now=now or timezone.now())


def _answer(row: dict, purposes: list[str], offers: list[CachedOffer], *, user, now: datetime) -> Personalization:
    answer = Personalization(profile_id=row["pk"])
    if row["restricted"]:
        answer.restricted = True
        return answer
    granted = {key for i, key in enumerate(purposes) if row[f"granted_{i}"]}
    memberships = list(Membership.objects.filter(profile_id=row["pk"], exited_at__isnull=True)
                       .order_by("segment__name").values_list("segment_id", "segment__slug", "segment__name"))
    member_of = {segment_id for segment_id, _, _ in memberships}
    best = next((offer for offer in offers if offer.segment_id in member_of and offer.purpose_key in granted
                 and offer.valid_at(now)), None)
    answer.offer = _offer_data(best) if best else None
    if purposes[0] in granted:
        answer.shares = True
        traits = row["traits"] or {}
        answer.traits = mask_traits(user, {name: traits[name] for name in shared_traits() if name in traits})
        answer.computed = _computed_values(row["pk"], shared_computed_traits())
        answer.segments = [{"slug": slug, "name": name} for _, slug, name in memberships]
    return answer
