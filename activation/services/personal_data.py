"""The personal-data registry's handlers for activation: the delivery log and the last state sent per activation."""
from activation.models import DeliveryItem, SyncMember
from activation.services.deliveries import destinations_forget


def personal_data_export(profile) -> dict:
    items = (DeliveryItem.objects.filter(profile=profile)
             .select_related("delivery__destination", "delivery__activation").order_by("delivery__created_at", "id"))
    states = SyncMember.objects.filter(profile=profile).select_related("activation").order_by("activation__name")
    return {
        "deliveries": [
            {"destination": item.delivery.destination.name,
             "activation": item.delivery.activation.name if item.delivery.activation else None,
             "change": item.change, "status": item.delivery.status, "payload": item.payload,
             "created_at": item.delivery.created_at.isoformat(),
             "delivered_at": item.delivery.delivered_at and item.delivery.delivered_at.isoformat()}
            for item in items],
        "sent_state": [
            {"activation": state.activation.name, "payload": state.payload, "sent_at": state.sent_at.isoformat()}
            for state in states],
    }


def personal_data_erase(profile) -> int:
    """Ask the destinations that can delete to forget the person (with the identifiers last sent to each, read
    now, before profiles erases the identities), then delete the delivery log and the state sent."""
    destinations_forget(profile=profile)
    deleted_items, _ = DeliveryItem.objects.filter(profile=profile).delete()
    deleted_states, _ = SyncMember.objects.filter(profile=profile).delete()
    return deleted_items + deleted_states
