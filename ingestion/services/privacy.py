"""Personal data held by ingestion (registered in the cdp.core registry).

Inbox messages carry identifiers in their payloads (userId, anonymousId, traits.email, ...). They are found by the
identities of the profile.
"""

from django.db.models import Q

from ingestion.models import InboxMessage


def _messages_of(profile):
    query = Q()
    for identity_type, value in profile.identities.values_list("type", "value"):
        if identity_type == "user_id":
            query |= Q(payload__userId=value)
        elif identity_type == "anonymous_id":
            query |= Q(payload__anonymousId=value)
        elif identity_type == "email":
            query |= Q(payload__traits__email=value) | Q(payload__context__traits__email=value)
    return InboxMessage.objects.filter(query) if query else InboxMessage.objects.none()


def personal_data_export(profile) -> dict:
    return {"inbox_messages": [
        {"source": m.source.slug, "type": m.type, "message_id": m.message_id, "received_at": m.received_at.isoformat(),
         "status": m.status, "payload": m.payload}
        for m in _messages_of(profile).select_related("source").order_by("received_at")]}


def personal_data_erase(profile) -> int:
    from ingestion.services.inbox import count_day, inbox_counts_add

    messages = _messages_of(profile)
    counts: dict = {}
    for source_id, status, received_at in messages.exclude(status="pending").values_list(
            "source_id", "status", "received_at"):
        processed, rejected = counts.get((source_id, count_day(received_at)), (0, 0))
        counts[(source_id, count_day(received_at))] = (processed - (status == "processed"),
                                                         rejected - (status == "rejected"))
    deleted, _ = messages.delete()
    inbox_counts_add(counts=counts)  # the live counts no longer include the erased messages
    return deleted
