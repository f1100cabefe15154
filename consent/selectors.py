from django.db.models import Count, Exists, OuterRef, Subquery, Sum

from consent import suppression
from consent.models import ConsentRecord, DataSubjectRequest, Purpose, SuppressedIdentifier, SuppressionHit


def purposes_with_rates():
    """Each purpose with the number of profiles whose latest decision grants it."""
    latest = (ConsentRecord.objects.filter(profile=OuterRef("profile"), purpose=OuterRef("purpose"))
              .order_by("-recorded_at", "-id").values("id")[:1])
    current = ConsentRecord.objects.filter(id=Subquery(latest))
    granted = dict(current.filter(status=ConsentRecord.Status.GRANTED).values("purpose")
                   .annotate(n=Count("id")).values_list("purpose", "n"))
    decided = dict(current.values("purpose").annotate(n=Count("id")).values_list("purpose", "n"))
    return [{"purpose": p, "granted": granted.get(p.pk, 0), "decided": decided.get(p.pk, 0)}
            for p in Purpose.objects.all()]


def consent_state(*, profile) -> dict[str, str]:
    """The current status per purpose key, from the latest record of each."""
    state: dict[str, str] = {}
    for key, status in (profile.consent_records.order_by("purpose__key", "-recorded_at", "-id")
                        .values_list("purpose__key", "status")):
        state.setdefault(key, status)
    return state


def purpose_exists(key: str) -> bool:
    return Purpose.objects.filter(key=key).exists()


def consent_granted_exists(*, purpose_key: str, profile_ref) -> Exists:
    """An ``EXISTS`` that is true when the profile's latest decision about the purpose grants it. ``profile_ref``
    names the profile in the outer query (``OuterRef("pk")`` from a profile query). Segments and activation use
    it to keep people without consent out of one SQL query."""
    later = ConsentRecord.objects.filter(profile=OuterRef("profile"), purpose=OuterRef("purpose"),
                                         recorded_at__gt=OuterRef("recorded_at"))
    return Exists(ConsentRecord.objects.filter(profile=profile_ref, purpose__key=purpose_key,
                                               status=ConsentRecord.Status.GRANTED).exclude(Exists(later)))


# --- data-subject requests, restriction and suppression ----------------------------------------------------------


def processing_restricted_exists(*, profile_ref) -> Exists:
    """An ``EXISTS`` that is true while a restriction or objection request freezes the profile out of activation
    (completed and not lifted). ``profile_ref`` names the profile in the outer query (``OuterRef("pk")``)."""
    return Exists(DataSubjectRequest.objects.filter(
        profile=profile_ref, kind__in=DataSubjectRequest.FREEZING, status=DataSubjectRequest.Status.COMPLETED,
        lifted_at__isnull=True))


def profile_may_activate(*, profile, purpose_key: str) -> bool:
    """Whether the profile may be used for the purpose: its latest decision grants it and no restriction or
    objection freezes it."""
    from profiles.models import Profile

    return (Profile.objects.filter(pk=profile.pk)
            .filter(consent_granted_exists(purpose_key=purpose_key, profile_ref=OuterRef("pk")))
            .exclude(processing_restricted_exists(profile_ref=OuterRef("pk"))).exists())


def suppressed_identities(identities: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The identities (type, value) of the list that belong to an erased person. One query."""
    if not identities:
        return set()
    by_digest: dict[str, set[tuple[str, str]]] = {}
    for identity_type, value in set(identities):
        for form in suppression.forms(identity_type, str(value)):
            by_digest.setdefault(suppression.digest(identity_type, form), set()).add((identity_type, value))
    found = SuppressedIdentifier.objects.filter(digest__in=list(by_digest)).values_list("digest", flat=True)
    return {identity for hit in found for identity in by_digest[hit]}


def suppressed_count() -> int:
    return SuppressedIdentifier.objects.count()


def suppression_hits_total() -> int:
    return SuppressionHit.objects.aggregate(total=Sum("count"))["total"] or 0


def observations_suppressed(observations) -> set[int]:
    """The positions of the observations (``profiles.services.Observation``) that name an erased person by any of
    their identifiers (an alias's previousId counts as a user id and an anonymous id). One query for the batch:
    the ingestion pipeline drops these messages and counts them (``suppression_hits_record``)."""
    keyed: list[tuple[int, tuple[str, str]]] = []
    for index, obs in enumerate(observations):
        for identity in [*obs.identities, *obs.flagged_identities]:
            keyed.append((index, (identity[0], str(identity[1]))))
        if obs.previous_id:
            keyed += [(index, ("user_id", obs.previous_id)), (index, ("anonymous_id", obs.previous_id))]
    suppressed = suppressed_identities([identity for _, identity in keyed])
    return {index for index, identity in keyed if identity in suppressed}
