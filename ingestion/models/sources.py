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
