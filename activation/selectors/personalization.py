"""What the personalization API answers for a person: the traits they allow to be shared, their segments and the
best offer, with only what consent allows leaving the CDP (see docs/architecture.md, "Personalization").

- The person is found through the identity graph (the value normalized as the pipeline does; a merged profile
  leads to the profile it became).
- Traits, computed traits and segments are shared only while the personalization purpose
  (``PERSONALIZATION_PURPOSE``) is granted, and only those on the allow-lists (``SHARED_TRAITS``,
  ``SHARED_COMPUTED_TRAITS``; settings of the same names override them); a sensitive trait never, allow-listed or
  not. Personal traits among them are masked
  for callers without ``core.view_pii``.
- The offer: the next best action (``activation.selectors.nba``) among the enabled offers valid now whose segment
  the person is in and whose own consent purpose is granted: offers scored by their goal from the person's
  insights (only while the personalization purpose is granted) first, the rest by the lowest priority number. It
  comes with its goal and a reason that holds none of the person's values.
- Recommendations (top N products, ``recommendations_for``) only when the caller asks for them and the
  personalization purpose is granted.
- A person whose processing is restricted (an open restriction or objection request) gets nothing.
- Someone unknown gets the same empty answer as someone who shares nothing, so the answer does not tell whether
  the CDP knows a person.

Queries per answer: one for the profile with every consent flag it needs (identity, profile and consent in one
statement, compiled to SQL once per process: ``cdp.core.prepared``) and the ids of its open memberships, and one
for the shared computed traits and the insights the scores read, when they are shared. Recommendations (asked
for, or for scoring an eligible cross-sell offer) add those of ``recommendations_for``. Enabled offers are cached
per process for ``OFFERS_CACHE_SECONDS``; the caller's token and permissions for ``TOKEN_CACHE_SECONDS``
(``cdp.core.api.authentication``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Aggregate, F, OuterRef, Subquery, TextField
from django.utils import timezone

from activation.models import Offer
from activation.selectors.nba import NBA_TRAITS, RECOMMENDATIONS_SCORED, NextBestAction, nba_rank
from cdp.core.masking import mask_traits
from cdp.core.prepared import PreparedValues, slot
from consent.selectors import consent_granted_exists, processing_restricted_exists
from profiles.models import ComputedTrait, ComputedValue, Profile
from profiles.search import identifier_candidates
from profiles.selectors import profile_resolve, recommendations_for, traits_without_sensitive
from segments.models import Membership, Segment

# The identifiers the API takes, each the identity type of the same name.
IDENTIFIER_TYPES = ("anonymous_id", "user_id", "email")
PERSONALIZATION_PURPOSE = "personalization"
# Profile traits that may be shared. Personal ones (cdp.core.masking.PII_KINDS) are masked for callers without
# core.view_pii. Identifiers (email, phone, customer numbers), addresses and agents' notes are not shared.
SHARED_TRAITS = ("first_name", "membership", "country", "city", "age_band", "customer_since", "language")
# Computed traits (profiles.ComputedTrait keys) that may be shared.
SHARED_COMPUTED_TRAITS = ("rfm_segment", "order_count", "days_since_last_order")
OFFERS_CACHE_SECONDS = 5.0
# The most recommendations an answer carries (the caller asks for 0 to this many).
MAX_RECOMMENDATIONS = 20


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
    goal: str = Offer.Goal.NONE
    expected_value: float | None = None
    product_ids: tuple[str, ...] = ()
    min_churn_risk: float | None = None
    max_churn_risk: float | None = None

    @property
    def goal_label(self) -> str:
        return Offer.Goal(self.goal).label

    def valid_at(self, when: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= when) and (
            self.valid_until is None or when < self.valid_until)


_offers_cache: tuple[float, list[CachedOffer]] = (0.0, [])


def offers_cache_clear() -> None:
    """Forget the cached offers and shared computed traits (this process at once; others within
    OFFERS_CACHE_SECONDS)."""
    global _offers_cache, _computed_cache, _segments_cache
    _offers_cache, _computed_cache, _segments_cache = (0.0, []), (0.0, {}), (0.0, {})


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
                          valid_from=o.valid_from, valid_until=o.valid_until, goal=o.goal,
                          expected_value=o.expected_value, product_ids=tuple(o.product_ids or ()),
                          min_churn_risk=o.min_churn_risk, max_churn_risk=o.max_churn_risk)
              for o in Offer.objects.filter(enabled=True).select_related("segment", "purpose")
              .order_by("priority", "id")]
    _offers_cache = (now + OFFERS_CACHE_SECONDS, offers)
    return offers


_computed_cache: tuple[float, dict[int, ComputedTrait]] = (0.0, {})


def computed_traits_read() -> dict[int, ComputedTrait]:
    """The enabled computed traits an answer reads, by id: those on the allow-list and those the next best action
    scores with (nba.NBA_TRAITS). Cached per process like the offers (a definition rarely changes; its values are
    read fresh on every call)."""
    global _computed_cache
    expires, traits = _computed_cache
    now = time.monotonic()
    if expires > now:
        return traits
    keys = {*shared_computed_traits(), *NBA_TRAITS}
    traits = {trait.pk: trait for trait in ComputedTrait.objects.filter(key__in=keys, enabled=True)}
    _computed_cache = (now + OFFERS_CACHE_SECONDS, traits)
    return traits


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
    recommendations: list[dict] | None = None  # None: not asked for (the answer has no such key)
    profile_id: int | None = None
    shares: bool = False
    restricted: bool = False
    nba: NextBestAction | None = None  # the ranking behind the offer, for the preview

    def as_data(self) -> dict:
        data = {"traits": self.traits, "computed_traits": self.computed, "segments": self.segments,
                "offer": self.offer}
        if self.recommendations is not None:
            data["recommendations"] = self.recommendations
        return data


class _IdList(Aggregate):
    """The ids of a group as one text, comma-separated: STRING_AGG on PostgreSQL, GROUP_CONCAT on SQLite."""

    function = "GROUP_CONCAT"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="STRING_AGG",
                           template="%(function)s(%(expressions)s::text, ',')", **extra)


def _open_segment_ids():
    """The ids of the profile's open memberships, as a column of the profile query (one query, both databases)."""
    stays = (Membership.objects.filter(profile=OuterRef("pk"), exited_at__isnull=True).order_by()
             .values("profile").annotate(ids=_IdList("segment_id")).values("ids"))
    return Subquery(stays, output_field=TextField())


_segments_cache: tuple[float, dict[int, tuple[str, str]]] = (0.0, {})


def _segment_names(ids: set[int]) -> dict[int, tuple[str, str]]:
    """(slug, name) of segments by id, cached per process; a segment newer than the cache reloads it."""
    global _segments_cache
    expires, segments = _segments_cache
    now = time.monotonic()
    if expires <= now or not ids <= segments.keys():
        segments = {pk: (slug, name) for pk, slug, name in Segment.objects.values_list("pk", "slug", "name")}
        _segments_cache = (now + OFFERS_CACHE_SECONDS, segments)
    return segments


@functools.lru_cache(maxsize=64)
def _profiles_flagged(purposes: tuple[str, ...]):
    """Profiles with a column per purpose (granted now, by consent's latest decision) and one for a restriction.
    Built once per set of purposes: resolving the EXISTS expressions costs more CPU than the query itself. The
    queryset is never evaluated, only filtered (which clones it)."""
    flags = {f"granted_{i}": consent_granted_exists(purpose_key=key, profile_ref=OuterRef("pk"))
             for i, key in enumerate(purposes)}
    flags["restricted"] = processing_restricted_exists(profile_ref=OuterRef("pk"))
    flags["segment_ids"] = _open_segment_ids()
    return Profile.objects.order_by().annotate(**flags), ("pk", "merged_into_id", "traits", *flags)


def _profile_rows(purposes: list[str], **lookup) -> list[dict]:
    queryset, columns = _profiles_flagged(tuple(purposes))
    return list(queryset.filter(**lookup).values(*columns))


@functools.lru_cache(maxsize=256)
def _profiles_by_identity(purposes: tuple[str, ...], by_raw_value: bool, count: int) -> PreparedValues:
    """The flagged profile query by identity (slot 0 the type, then ``count`` values), compiled once: by the
    normalized value (with the value that matched), or by the raw value of an identity that failed normalization."""
    queryset, columns = _profiles_flagged(purposes)
    values = [slot(number) for number in range(1, count + 1)]
    if by_raw_value:
        queryset = queryset.filter(identities__type=slot(0), identities__flagged=True,
                                   identities__raw_value__in=values).values(*columns)
    else:
        queryset = queryset.filter(identities__type=slot(0), identities__value__in=values).values(
            *columns, identity_value=F("identities__value"))
    return PreparedValues(queryset, count + 1)


def _profile_found(identity_type: str, value: str, purposes: list[str]) -> dict | None:
    """The profile row (with its consent flags) that carries the identifier, as profiles.selectors.profile_lookup
    finds it: the normalized value first, then the value as sent; an identifier that failed normalization by its
    raw value; a tombstone followed to the live profile."""
    candidates = identifier_candidates(identity_type, value)
    if not candidates:
        return None
    rows = _profiles_by_identity(tuple(purposes), False, len(candidates)).rows(identity_type, *candidates)
    rows.sort(key=lambda row: candidates.index(row["identity_value"]))
    if not rows:
        rows = _profiles_by_identity(tuple(purposes), True, len(candidates)).rows(identity_type, *candidates)
    if not rows:
        return None
    row = rows[0]
    if row["merged_into_id"]:
        live = profile_resolve(profile_id=row["pk"])
        if live is None or live.merged_into_id:
            return None
        row = _profile_rows(purposes, pk=live.pk)[0]
    return row


def _computed_values(profile_id: int) -> tuple[dict, dict]:
    """(the shared computed traits, the values the next best action scores with), in one query."""
    traits = computed_traits_read()
    shared, insights = {}, {}
    if not traits:
        return shared, insights
    allowed = set(shared_computed_traits())
    for value in ComputedValue.objects.filter(profile_id=profile_id, trait_id__in=traits):
        value.trait = traits[value.trait_id]
        if value.trait.key in allowed:
            shared[value.trait.key] = value.value
        if value.trait.key in NBA_TRAITS:
            insights[value.trait.key] = value.value
    return shared, insights


def _offer_data(offer: CachedOffer, reason: str) -> dict:
    return {"id": offer.id, "name": offer.name, "segment": offer.segment_slug, "priority": offer.priority,
            "goal": offer.goal, "reason": reason, "content": offer.content, "valid_until": offer.valid_until}


def _recommendation_data(recommendation: dict) -> dict:
    # Catalog facts only: the reason ("Bought together with X") would tell what the person bought.
    return {key: recommendation.get(key) for key in ("product_id", "name", "category")}


def personalization_for(*, identity_type: str, value: str, user, now: datetime | None = None,
                        recommendations: int = 0, complete: bool = False) -> Personalization:
    """The answer for the person carrying the identifier (see the module), for ``user`` (masking). With
    ``recommendations`` (1 to MAX_RECOMMENDATIONS) the answer carries up to that many recommended products. With
    ``complete`` every eligible offer is scored (the preview's ranking), not only those that can win
    (``nba.nba_rank``)."""
    offers = offers_enabled()
    purpose = personalization_purpose()
    purposes = list(dict.fromkeys([purpose, *(offer.purpose_key for offer in offers)]))
    row = _profile_found(identity_type, value, purposes)
    if row is None:
        return Personalization(recommendations=[] if recommendations else None)
    return _answer(row, purposes, offers, user=user, now=now or timezone.now(), recommendations=recommendations,
                   complete=complete)


def personalization_for_profile(*, profile_id: int, user, now: datetime | None = None,
                                recommendations: int = 0, complete: bool = False) -> Personalization:
    """The answer for a profile by its id (the offer preview of the UI; a merged id leads to its profile)."""
    offers = offers_enabled()
    purposes = list(dict.fromkeys([personalization_purpose(), *(offer.purpose_key for offer in offers)]))
    live = profile_resolve(profile_id=profile_id)
    if live is None:
        return Personalization(recommendations=[] if recommendations else None)
    row = _profile_rows(purposes, pk=live.pk)[0]
    return _answer(row, purposes, offers, user=user, now=now or timezone.now(), recommendations=recommendations,
                   complete=complete)


def _answer(row: dict, purposes: list[str], offers: list[CachedOffer], *, user, now: datetime,
            recommendations: int = 0, complete: bool = False) -> Personalization:
    answer = Personalization(profile_id=row["pk"], recommendations=[] if recommendations else None)
    if row["restricted"]:
        answer.restricted = True
        return answer
    granted = {key for i, key in enumerate(purposes) if row[f"granted_{i}"]}
    member_of = {int(pk) for pk in (row["segment_ids"] or "").split(",") if pk}
    insights = None
    recommended = None
    if purposes[0] in granted:
        answer.shares = True
        traits = row["traits"] or {}
        # A sensitive trait never leaves the CDP here, even on the allow-list (its value is encrypted at rest).
        answer.traits = mask_traits(user, traits_without_sensitive(
            {name: traits[name] for name in shared_traits() if name in traits}))
        answer.computed, insights = _computed_values(row["pk"])
        names = _segment_names(member_of)
        answer.segments = sorted(({"slug": names[pk][0], "name": names[pk][1]} for pk in member_of if pk in names),
                                 key=lambda segment: segment["name"])
        recommended = functools.cache(lambda: recommendations_for(
            profile_id=row["pk"], limit=max(recommendations, RECOMMENDATIONS_SCORED)))
        if recommendations:
            answer.recommendations = [_recommendation_data(rec) for rec in recommended()[:recommendations]]
    answer.nba = nba_rank(offers=offers, member_of=member_of, granted=granted, now=now, insights=insights,
                          recommendations=recommended, complete=complete or bool(recommendations))
    choice = answer.nba.choice
    answer.offer = _offer_data(choice.offer, choice.summary) if choice else None
    return answer
