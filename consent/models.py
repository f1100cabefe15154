from django.conf import settings
from django.db import models
from django.utils import timezone


class Purpose(models.Model):
    """What personal data may be used for, with its legal basis (GDPR Art. 6)."""

    class LegalBasis(models.TextChoices):
        CONSENT = "consent", "Consent (Art. 6(1)(a))"
        CONTRACT = "contract", "Contract (Art. 6(1)(b))"
        LEGAL_OBLIGATION = "legal_obligation", "Legal obligation (Art. 6(1)(c))"
        LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest (Art. 6(1)(f))"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices, default=LegalBasis.CONSENT)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class ConsentRecord(models.Model):
    """One decision of a person about one purpose. Append-only: the latest record is the current state."""

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        DENIED = "denied", "Denied"
        WITHDRAWN = "withdrawn", "Withdrawn"

    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="consent_records")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="records")
    status = models.CharField(max_length=16, choices=Status.choices)
    source = models.CharField(max_length=64, blank=True, help_text="Where the decision was made")
    proof = models.JSONField(default=dict, blank=True, help_text="Form URL, text version, ...")
    recorded_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["profile", "purpose", "-recorded_at"], name="consent_latest")]

    def __str__(self) -> str:
        return f"{self.purpose_id} {self.status}"


class ConsentCategory(models.Model):
    """How a category of a consent manager (Segment's ``context.consent.categoryPreferences``) maps to a purpose.
    A category named like a purpose key maps to that purpose without a row here."""

    category = models.CharField(max_length=100, unique=True, help_text="As the consent manager names it")
    purpose = models.ForeignKey(Purpose, on_delete=models.CASCADE, related_name="categories")

    class Meta:
        ordering = ["category"]
        verbose_name_plural = "consent categories"

    def __str__(self) -> str:
        return f"{self.category} → {self.purpose_id}"


class DataSubjectRequest(models.Model):
    """A person's request under GDPR Art. 15-21, handled by the Privacy role within 30 days.

    The subject is found by any identifier through the identity graph. After an erasure the identifier is
    replaced by its keyed hash, and the subject's identifiers are removed from the notes."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access (Art. 15)"
        RECTIFICATION = "rectification", "Rectification (Art. 16)"
        ERASURE = "erasure", "Erasure (Art. 17)"
        RESTRICTION = "restriction", "Restriction (Art. 18)"
        OBJECTION = "objection", "Objection (Art. 21)"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        VERIFIED = "verified", "Identity verified"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"

    class IdentifierType(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        USER_ID = "user_id", "User id"
        ANONYMOUS_ID = "anonymous_id", "Anonymous id"
        PROFILE_ID = "profile_id", "Profile id"

    OPEN = (Status.RECEIVED, Status.VERIFIED)
    FREEZING = (Kind.RESTRICTION, Kind.OBJECTION)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    identifier_type = models.CharField(max_length=16, choices=IdentifierType.choices)
    identifier = models.CharField(max_length=255, blank=True, help_text="Emptied when the subject is erased")
    profile = models.ForeignKey("profiles.Profile", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="privacy_requests")
    verification_note = models.TextField(blank=True, help_text="How the requester's identity was verified")
    changes = models.JSONField(default=dict, blank=True, help_text="Rectification: the corrected traits")
    reference = models.CharField(max_length=100, blank=True, help_text="The ticket in another system")
    received_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True, help_text="Restriction or objection: when it ended")
    result = models.JSONField(default=dict, blank=True, help_text="What was done (rows erased per app, ...)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = "data-subject request"
        permissions = [("handle_datasubjectrequest", "Can handle data-subject requests")]
        indexes = [models.Index(fields=["profile", "kind", "status"], name="dsr_profile_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()

    @property
    def freezes(self) -> bool:
        """A completed restriction or objection that has not been lifted keeps the profile out of activation."""
        return self.kind in self.FREEZING and self.status == self.Status.COMPLETED and self.lifted_at is None


class RequestStep(models.Model):
    """The audit trail of a data-subject request: every step, who took it and when. Never names personal data."""

    class Action(models.TextChoices):
        RECEIVED = "received", "Received"
        VERIFIED = "verified", "Identity verified"
        NOTE = "note", "Note"
        EXPORTED = "exported", "Export downloaded"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"
        LIFTED = "lifted", "Lifted"

    request = models.ForeignKey(DataSubjectRequest, on_delete=models.CASCADE, related_name="steps")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.request_id} {self.action}"


class SuppressedIdentifier(models.Model):
    """An identifier of an erased person, as a keyed hash (HMAC-SHA256): new data carrying it is rejected, and
    the identifier itself is not kept."""

    digest = models.CharField(max_length=64, unique=True, help_text="HMAC-SHA256 of 'type:value', hex")
    identity_type = models.CharField(max_length=32)
    request = models.ForeignKey(DataSubjectRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="suppressed")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.identity_type}:{self.digest[:12]}…"


class SuppressionHit(models.Model):
    """How many messages were rejected because they named an erased person, per source and day."""

    source = models.CharField(max_length=64)
    day = models.DateField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "source"]
        constraints = [models.UniqueConstraint(fields=["source", "day"], name="suppression_hit_source_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.source}: {self.count}"


class RetentionPolicy(models.Model):
    """How long one category of data is kept (``cdp.core.retention`` names the categories)."""

    category = models.CharField(max_length=32)
    scope = models.CharField(max_length=100, blank=True,
                             help_text="Events: the event type (track, page, ...); empty: all of the category")
    days = models.PositiveIntegerField(help_text="Data older than this is deleted nightly")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "scope"]
        verbose_name_plural = "retention policies"
        constraints = [models.UniqueConstraint(fields=["category", "scope"], name="retention_category_scope")]

    def __str__(self) -> str:
        return f"{self.category}{f' ({self.scope})' if self.scope else ''}: {self.days} days"


class RetentionRun(models.Model):
    """One run of the retention policies: what was deleted per policy."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=16, default="nightly", help_text="nightly or manual")
    deleted = models.JSONField(default=list, blank=True,
                               help_text='[{"category", "scope", "days", "before", "deleted", "skipped"}]')
    total = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Retention {self.started_at:%Y-%m-%d %H:%M} {self.status}"
