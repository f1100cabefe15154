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
    deleted, _ = _messages_of(profile).delete()
    return deleted
