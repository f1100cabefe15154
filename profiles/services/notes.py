"""Notes and interactions an agent records on a profile (call center, store, chat ...).

A note is personal data (covered by profiles' personal-data handlers: export and erase). Adding one also puts an
event on the timeline (type "note") and sets traits through the golden record's lineage, so segments can use
them: ``last_note_at`` always, ``intends_to_cancel`` (true) and ``intends_to_cancel_at`` for a cancellation
intent, ``last_complaint_at`` for a complaint.

The note's text is scored for sentiment (profiles.insights.sentiment): the Note keeps the score, and the event
carries ``sentiment`` and ``sentiment_label`` (never the text), so the ``service_sentiment`` computed trait and
churn risk read it like the sentiment of any other event.
"""

from django.db import transaction
from django.utils import timezone

from cdp.core.services import audit_record
from profiles.insights.sentiment import sentiment_score
from profiles.models import Event, Note, Profile
from profiles.services.golden import golden_record_recompute, trait_values_record
from profiles.signals import profile_changed_on_commit

# The source of the traits a note sets, in the lineage.
NOTE_SOURCE = "agent"

EVENT_NAMES = {
    Note.Kind.NOTE: "Note Added",
    Note.Kind.INTENT_TO_CANCEL: "Cancellation Intent Noted",
    Note.Kind.COMPLAINT: "Complaint Noted",
    Note.Kind.COMPLIMENT: "Compliment Noted",
    Note.Kind.INTERACTION: "Interaction Noted",
}


class NoteInvalid(ValueError):
    """A note that cannot be recorded; ``field`` names the wrong input."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _traits_for(kind: str, at_iso: str) -> dict:
    traits = {"last_note_at": at_iso}
    if kind == Note.Kind.INTENT_TO_CANCEL:
        traits.update(intends_to_cancel=True, intends_to_cancel_at=at_iso)
    elif kind == Note.Kind.COMPLAINT:
        traits["last_complaint_at"] = at_iso
    return traits


@transaction.atomic
def note_add(*, profile: Profile, text: str, kind: str = Note.Kind.NOTE, channel: str = Note.Channel.CALL_CENTER,
             author=None) -> Note:
    """Record a note: the Note with its sentiment, an event on the timeline and the traits (see the module);
    audited; sends ``profile_changed`` on commit."""
    text = (text or "").strip()
    if not text:
        raise NoteInvalid("text", "A note needs a text.")
    if kind not in Note.Kind.values:
        raise NoteInvalid("kind", f"Unknown kind {kind!r}; one of {', '.join(Note.Kind.values)}.")
    if channel not in Note.Channel.values:
        raise NoteInvalid("channel", f"Unknown channel {channel!r}; one of {', '.join(Note.Channel.values)}.")
    if profile.merged_into_id:
        raise NoteInvalid("profile", f"Profile {profile.pk} was merged into {profile.merged_into_id}.")
    user = author if author is not None and getattr(author, "is_authenticated", False) else None
    sentiment = sentiment_score(text)
    note = Note.objects.create(profile=profile, author=user, kind=kind, channel=channel, text=text,
                               sentiment=sentiment.score)
    at = note.created_at
    Event.objects.create(profile=profile, type=Event.Type.NOTE, name=EVENT_NAMES[kind], channel=channel,
                         properties={"kind": kind, "note_id": note.pk, "sentiment": sentiment.score,
                                     "sentiment_label": sentiment.label}, timestamp=at, source=NOTE_SOURCE)
    traits = _traits_for(kind, at.isoformat(timespec="seconds"))
    trait_values_record([(profile.pk, name, value, NOTE_SOURCE, at) for name, value in traits.items()])
    golden_record_recompute(profile=profile, names=list(traits))
    profile.refresh_from_db()
    if profile.last_seen_at is None or profile.last_seen_at < at:
        Profile.objects.filter(pk=profile.pk).update(last_seen_at=at, updated_at=timezone.now())
    audit_record(actor=user, action="create", object_type="profiles.note", object_id=note.pk,
                 profile_id=profile.pk, summary=f"Added a note ({note.get_kind_display()})",
                 fields=["text", "kind", "channel"])
    profile_changed_on_commit([profile.pk])
    return note
