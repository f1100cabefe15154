from django.db import models
from django.utils import timezone

from ingestion.models.sources import Source


class InboxMessage(models.Model):
    """A message as it arrived, kept until processing has handed it to profiles (or rejected it, with a reason).
    Idempotent by (source, message_id)."""

    personal_data = True

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        REJECTED = "rejected", "Rejected"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=128)
    type = models.CharField(max_length=16)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "message_id"], name="inbox_source_message_unique")
        ]
        indexes = [
            models.Index(fields=["status", "id"], name="inbox_status_id"),
            # The live stats and the event debugger of one source.
            models.Index(fields=["source", "status"], name="inbox_source_status"),
            models.Index(fields=["source", "received_at"], name="inbox_source_received"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
