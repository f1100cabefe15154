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

    # No index of its own: the unique (source, message_id) constraint leads with it. No database constraint either:
    # its deferred check is a lookup and a lock per inserted row at commit, a quarter of the database's work per
    # stored event. Every store names a source it has just looked up, deleting a source deletes its messages
    # (Django's cascade), and processing drops the messages of a source deleted meanwhile.
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="messages", db_index=False,
                               db_constraint=False)
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
        # Few indexes, and partial ones for the short-lived and the rare states: every message is inserted once
        # and updated once (pending -> processed), and each index costs both.
        indexes = [
            # Claiming (oldest first, SKIP LOCKED), the sweep and the pending counts (pending rows are few).
            models.Index(fields=["id"], name="inbox_pending", condition=models.Q(status="pending")),
            # The rejected count and the debugger's "rejected" view.
            models.Index(fields=["source", "id"], name="inbox_rejected_source", condition=models.Q(status="rejected")),
            # The event debugger (latest first) and the received-today count of one source.
            models.Index(fields=["source", "received_at"], name="inbox_source_received"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"


class InboxCount(models.Model):
    """How many of a source's messages received on a day ended processed or rejected (the live stats, without
    counting inbox rows). Written in the same transaction as the status change; pending messages are counted from
    their small partial index instead. A few rows per (source, day): ``shard`` spreads concurrent workers over
    separate rows, so that they never wait for each other's counter."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="inbox_counts", db_index=False)
    day = models.DateField(help_text="The day the messages were received (in TIME_ZONE)")
    shard = models.PositiveSmallIntegerField(default=0)
    processed = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "day", "shard"], name="inbox_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.day}: {self.processed} processed, {self.rejected} rejected"
