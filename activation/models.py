import uuid

from django.conf import settings
from django.db import models


class Destination(models.Model):
    """Where profiles and segments go: a webhook, an email service, a file export, an audience API.

    ``config`` holds the settings that may be shown; ``secrets`` holds signing secrets, tokens and keys, each
    encrypted (cdp.core.crypto, ``{"token": "enc:v1:..."}``) and decrypted only for the request that uses it
    (``destinations.base.secret``). They are write-only: shown once when the CDP makes one, and never again (not in
    the UI, the API, the admin or a log)."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email service"
        FILE = "file", "File export"
        AUDIENCE_API = "audience_api", "HTTP audience API"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True)
    secrets = models.JSONField(default=dict, blank=True, editable=False,
                               help_text="Signing secrets, tokens and keys: never shown again")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_ok = models.BooleanField(null=True, blank=True, editable=False)
    last_test_message = models.CharField(max_length=500, blank=True, default="", editable=False)

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
    mapping = models.JSONField(default=dict, blank=True,
                               help_text='What goes out under which name: {"out_name": "trait.email" | '
                                         '"computed.<key>" | "profile.id"}')
    options = models.JSONField(default=dict, blank=True,
                               help_text="Per destination kind, e.g. an email activation's mode, subject and "
                                         "template")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_sync_at = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="When the last sync started (schedules count from it)")
    last_good_sync_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sync(models.Model):
    """One run of an activation: the delta since the last good sync, sent in batches, with its counts."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual"
        REALTIME = "realtime", "Real time"
        CONSENT = "consent", "Consent change"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partly failed"
        FAILED = "failed", "Failed"

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="syncs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    full = models.BooleanField(default=False, help_text="The first sync: everything was sent")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    members = models.PositiveIntegerField(default=0, help_text="Segment members at the start")
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    skipped_consent = models.PositiveIntegerField(default=0, help_text="Members not sent: no consent for the purpose")
    sent = models.PositiveIntegerField(default=0, help_text="Items the destination accepted")
    failed = models.PositiveIntegerField(default=0, help_text="Items in deliveries that failed for good")
    deliveries_total = models.PositiveIntegerField(default=0)
    deliveries_done = models.PositiveIntegerField(default=0, help_text="Delivered or dead: the sync's progress")
    error = models.TextField(blank=True, default="")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["activation", "-started_at"], name="sync_activation_started")]

    def __str__(self) -> str:
        return f"Sync {self.pk} of {self.activation_id}"


class SyncMember(models.Model):
    """The last state an activation sent for a profile: the hash of the mapped payload and the payload itself
    (a removal goes out with the identifiers last sent, even when the profile has changed since)."""

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="sync_members")
    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="activation_states")
    payload_hash = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["activation", "profile"], name="sync_member_unique")]
        indexes = [models.Index(fields=["profile"], name="sync_member_profile")]

    def __str__(self) -> str:
        return f"{self.profile_id} at {self.activation_id}"


class Delivery(models.Model):
    """One request (a batch) to a destination. Its idempotency key stays the same through retries and re-sends,
    so the destination can drop a repeat; a delivered delivery is never sent again by us."""

    class Action(models.TextChoices):
        UPSERT = "upsert", "Add or update"
        REMOVE = "remove", "Remove"
        FORGET = "forget", "Forget (erasure)"
        TEST = "test", "Connection test"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    activation = models.ForeignKey(Activation, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="deliveries")
    sync = models.ForeignKey(Sync, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.UPSERT)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    item_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    response_status = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the last attempt started")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due"),
            models.Index(fields=["destination", "status"], name="delivery_destination_status"),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.action}, {self.status})"


class DeliveryItem(models.Model):
    """One profile in a delivery, with the payload that goes out: the profile's delivery log. After an erasure
    the profile link is cut and only a forget delivery keeps the identifiers, until it is delivered."""

    class Change(models.TextChoices):
        ADDED = "added", "Added"
        CHANGED = "changed", "Changed"
        REMOVED = "removed", "Removed"
        FORGOTTEN = "forgotten", "Forgotten"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="items")
    profile = models.ForeignKey("profiles.Profile", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="activation_deliveries")
    change = models.CharField(max_length=16, choices=Change.choices)
    payload = models.JSONField(default=dict)
    payload_hash = models.CharField(max_length=64, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Per-item destinations (mail) mark each item, so a retry skips it")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["profile", "delivery"], name="delivery_item_profile")]

    def __str__(self) -> str:
        return f"{self.change} {self.profile_id} in {self.delivery_id}"


class Offer(models.Model):
    """A next-best offer of the personalization API: shown to the members of its segment who granted its consent
    purpose, while it is enabled and valid (and within its churn-risk bounds, if it has any). Among the offers a
    person qualifies for, the next best action (activation.selectors.nba) ranks those its goal scores for the
    person by their expected value in EUR; the others follow by the lowest priority number (1 before 100), then the
    oldest offer. Offers without a goal keep that priority order."""

    class Goal(models.TextChoices):
        NONE = "none", "None (priority only)"
        RETENTION = "retention", "Retention"
        CROSS_SELL = "cross_sell", "Cross-sell / upsell"
        WIN_BACK = "win_back", "Win-back"
        ACQUISITION = "acquisition", "Acquisition"

    name = models.CharField(max_length=120)
    segment = models.ForeignKey("segments.Segment", on_delete=models.PROTECT, related_name="offers",
                                help_text="Who qualifies: the segment's current members")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.PROTECT, related_name="offers",
                                help_text="Shown only to people who granted this purpose")
    priority = models.PositiveIntegerField(default=100, help_text="Lower comes first")
    goal = models.CharField(max_length=16, choices=Goal.choices, default=Goal.NONE,
                            help_text="What the offer is for; it decides how the offer is scored for a person")
    expected_value = models.FloatField(null=True, blank=True,
                                       help_text="EUR a conversion is worth to the company (e.g. its margin); scores "
                                                 "cross-sell, win-back and acquisition offers")
    product_ids = models.JSONField(default=list, blank=True,
                                   help_text="The product ids the offer promotes (cross-sell / upsell)")
    min_churn_risk = models.FloatField(null=True, blank=True,
                                       help_text="Only for people whose churn risk is at least this (0-1)")
    max_churn_risk = models.FloatField(null=True, blank=True,
                                       help_text="Only for people whose churn risk is at most this (0-1)")
    content = models.JSONField(default=dict, blank=True,
                               help_text='{"headline", "body", "cta_url", "image_url"}; headline and cta_url required')
    valid_from = models.DateTimeField(null=True, blank=True, help_text="Empty: from now on")
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Not shown from this time on; empty: no end")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        permissions = [("personalize", "Can read the personalization API")]

    def __str__(self) -> str:
        return self.name
