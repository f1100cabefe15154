from django.db.models import Count, Exists, OuterRef, Subquery

from consent.models import ConsentRecord, Purpose


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
