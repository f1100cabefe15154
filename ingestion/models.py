from django.db import models


class Source(models.Model):
    """Where data comes from. The write key is shown once and stored hashed."""

    class Kind(models.TextChoices):
        HTTP = "http", "Tracking API"
        FILE = "file", "File"
        DATABASE = "database", "Database"
        WEBHOOK = "webhook", "Webhook"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.CharField(max_length=32, blank=True, help_text="web, app, shop, crm, call_center, email, ...")
    write_key_hash = models.CharField(max_length=128, unique=True)
    write_key_prefix = models.CharField(max_length=12, help_text="The first characters, to recognise a key")
    enabled = models.BooleanField(default=True)
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "message_id"], name="inbox_source_message_unique")
        ]
        indexes = [models.Index(fields=["status", "id"], name="inbox_status_id")]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
