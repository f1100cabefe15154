from django.conf import settings
from django.db import models


class Segment(models.Model):
    """A group of profiles described by a rule tree (JSON). Dynamic segments stay current; static ones are
    snapshots."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Dynamic"
        STATIC = "static", "Static"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    size = models.PositiveIntegerField(default=0, help_text="Current members, kept by every refresh and re-check")
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_refresh_ms = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="How long the last full refresh took")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A stay of a profile in a segment: open while exited_at is empty."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-entered_at"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "profile"], condition=models.Q(exited_at__isnull=True),
                                    name="membership_one_open_stay")
        ]
        indexes = [models.Index(fields=["profile", "segment"], name="membership_profile_segment")]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.segment_id}"


class SegmentSize(models.Model):
    """The size of a segment on a day (the last refresh of the day wins): the size-over-time chart."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes")
    day = models.DateField()
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField(default=0, help_text="Profiles that entered on this day")
    exited = models.PositiveIntegerField(default=0, help_text="Profiles that left on this day")

    class Meta:
        ordering = ["segment", "day"]
        constraints = [models.UniqueConstraint(fields=["segment", "day"], name="segment_size_day_unique")]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.day}: {self.size}"
