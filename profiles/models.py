from django.db import models


class Profile(models.Model):
    """One person: the golden record. ``traits`` holds the current winning value of each trait."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    traits = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Profile {self.pk}"

    @property
    def display_name(self) -> str:
        traits = self.traits or {}
        name = " ".join(str(traits[k]) for k in ("first_name", "last_name") if traits.get(k))
        return name or traits.get("name") or traits.get("email") or f"Profile {self.pk}"


class Identity(models.Model):
    """An identifier of a person: a (type, normalized value) pair that points to one profile."""

    class Type(models.TextChoices):
        USER_ID = "user_id", "User id"
        ANONYMOUS_ID = "anonymous_id", "Anonymous id"
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        RECORD = "record", "Source record"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identities")
    type = models.CharField(max_length=32, choices=Type.choices)
    value = models.CharField(max_length=255, help_text="Normalized value")
    source = models.CharField(max_length=64, blank=True, help_text="Slug of the source that first sent it")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["type", "value"], name="identity_type_value_unique")]
        indexes = [models.Index(fields=["profile", "type"])]

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


class Event(models.Model):
    """Something a person did or that happened to them, on any channel: the timeline."""

    class Type(models.TextChoices):
        TRACK = "track", "Track"
        PAGE = "page", "Page"
        SCREEN = "screen", "Screen"
        IDENTIFY = "identify", "Identify"
        GROUP = "group", "Group"
        ALIAS = "alias", "Alias"
        NOTE = "note", "Note"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TRACK)
    name = models.CharField(max_length=200, blank=True, db_index=True)
    channel = models.CharField(max_length=32, blank=True, db_index=True,
                               help_text="web, app, shop, crm, call_center, email, ...")
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(db_index=True, help_text="When it happened (clock skew corrected)")
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=64, blank=True)
    message_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["profile", "-timestamp"], name="event_profile_time")]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()
