from django.db import models

from ingestion.models.sources import Source


class TrackingPlan(models.Model):
    """A source's tracking plan: a JSON Schema per event name (for a track message's ``properties``) and one for
    identify ``traits``. Schemas are checked (JSON Schema Draft 2020-12) by the service that saves them.

    mode: what happens to a planned message that breaks its schema: allow (processed, nothing recorded),
    flag (processed, violation recorded) or block (rejected, violation recorded, replayable).
    unplanned: the same choice for a track event the plan does not name."""

    class Mode(models.TextChoices):
        ALLOW = "allow", "Allow"
        FLAG = "flag", "Flag"
        BLOCK = "block", "Block"

    source = models.OneToOneField(Source, on_delete=models.CASCADE, related_name="tracking_plan")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.FLAG)
    unplanned = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ALLOW,
                                 help_text="What to do with a track event the plan does not name")
    events = models.JSONField(default=dict, blank=True, help_text='{"Order Completed": {JSON Schema}, ...}')
    identify_schema = models.JSONField(null=True, blank=True, help_text="JSON Schema for identify traits")
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source__name"]

    def __str__(self) -> str:
        return f"Tracking plan of {self.source}"


class PlanViolation(models.Model):
    """Violations aggregated per (source, schema, path, message), with a bounded list of recent examples whose
    values are masked of personal data."""

    IDENTIFY = "identify"
    UNPLANNED_PATH = "event"
    UNPLANNED_MESSAGE = "unplanned event"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="plan_violations")
    schema = models.CharField(max_length=200, help_text="The event name, or identify")
    path = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=300)
    count = models.PositiveBigIntegerField(default=0)
    blocked = models.PositiveBigIntegerField(default=0, help_text="How many of them were blocked")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    examples = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-last_seen", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "schema", "path", "message"], name="plan_violation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.schema} {self.path}: {self.message}"
