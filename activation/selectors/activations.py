"""Reads of activation: activations with their last sync, syncs, deliveries, dead letters and a profile's log."""

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from activation.models import Activation, Delivery, DeliveryItem, Destination, Sync


def activation_count() -> int:
    return Activation.objects.filter(enabled=True).count()


def failed_deliveries_count() -> int:
    """Dead letters: deliveries that failed for good and wait for a re-send (the dashboard's failure count)."""
    return Delivery.objects.filter(status=Delivery.Status.DEAD).count()


def _dead_letters(field: str):
    """The number of dead letters of the outer row (a subquery on the (destination, status) index, not a join of
    every delivery)."""
    dead = (Delivery.objects.filter(**{field: OuterRef("pk")}, status=Delivery.Status.DEAD).order_by()
            .values(field).annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(dead), 0)


def activations_with_status():
    """Activations with their last sync's status and their dead letters."""
    last = Sync.objects.filter(activation=OuterRef("pk")).order_by("-started_at", "-id")
    return (Activation.objects.select_related("segment", "destination", "purpose")
            .annotate(last_sync_status=Subquery(last.values("status")[:1]),
                      last_sync_id=Subquery(last.values("id")[:1]), dead_letters=_dead_letters("activation"))
            .order_by("name", "pk"))


def destinations_with_usage():
    return (Destination.objects.annotate(activation_total=Count("activations", distinct=True),
                                         dead_letters=_dead_letters("destination"))
            .order_by("name", "pk"))


def sync_list():
    return Sync.objects.select_related("activation", "activation__destination")


def delivery_list():
    return Delivery.objects.select_related("destination", "activation", "sync")


def dead_letters():
    return delivery_list().filter(status=Delivery.Status.DEAD)


def profile_delivery_log(*, profile, limit: int = 50) -> list[DeliveryItem]:
    """What was sent where about the profile, newest first: each item with its delivery's status."""
    return list(DeliveryItem.objects.filter(profile=profile)
                .select_related("delivery", "delivery__destination", "delivery__activation")
                .order_by("-delivery__created_at", "-id")[:limit])
