"""Personal data held by ingestion (registered in the cdp.core registry).

Inbox messages carry identifiers anywhere in their payloads: userId, anonymousId, traits.email, context.traits.phone,
externalIds, a webhook's or an import row's own fields. A message belongs to a person when any string in its
payload equals one of the person's identifiers, in any form it may have been sent in (as stored, as it arrived,
emails in any case, phones in E.164 or as digits). The payload is searched as JSON text for the quoted value, so
that "1" never matches "12" and nothing of another person is taken along.
"""

import json

from django.db.models import Q, TextField
from django.db.models.functions import Cast

from ingestion.models import InboxMessage
from profiles.search import identifier_candidates


def _needles(profile) -> set[str]:
    needles = set()
    for identity_type, value, raw_value in profile.identities.values_list("type", "value", "raw_value"):
        for text in (value, raw_value):
            needles.update(identifier_candidates(identity_type, text))
    return {needle for needle in needles if needle}


def _messages_of(profile):
    query = Q()
    for needle in sorted(_needles(profile)):
        query |= Q(payload_text__icontains=json.dumps(needle))
    if not query:
        return InboxMessage.objects.none()
    return InboxMessage.objects.annotate(payload_text=Cast("payload", TextField())).filter(query)


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
