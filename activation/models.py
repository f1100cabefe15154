from django.db import models


class Destination(models.Model):
    """Where profiles and segments go: a webhook, an email service, a file export, an audience API."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email service"
        FILE = "file", "File export"
        AUDIENCE_API = "audience_api", "HTTP audience API"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Activation(models.Model):
    """A segment sent to a destination on a schedule."""

    class Schedule(models.TextChoices):
        REALTIME = "realtime", "Real time"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        MANUAL = "manual", "Manual"

    name = models.CharField(max_length=120)
    segment = models.ForeignKey("segments.Segment", on_delete=models.PROTECT, related_name="activations")
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="activations")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.PROTECT, related_name="activations",
                                help_text="Members without consent for this purpose are not sent.")
    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.MANUAL)
    mapping = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
