from django.conf import settings
from django.db import models
from django.utils import timezone

from profiles.search import search_text_expression


class Profile(models.Model):
    """One person: the golden record. ``traits`` holds the current winning value of each trait."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    traits = models.JSONField(default=dict, blank=True)
    trait_sources = models.JSONField(
        default=dict, db_default={}, blank=True,
        help_text='Why each trait won: name -> {"source", "observed_at", "strategy", "why"}')
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_profiles",
        help_text="Set on a profile that was merged into another: a tombstone, so lookups by its id follow it")
    search_text = models.GeneratedField(
        expression=search_text_expression(), output_field=models.TextField(), db_persist=True,
        help_text="Name, email, phone and company, folded for search (kept by the database; see profiles.search)")

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

    # No index of its own: the (profile, type) index below serves every lookup by profile.
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identities", db_index=False)
    type = models.CharField(max_length=32, choices=Type.choices)
    value = models.CharField(max_length=255, help_text="Normalized value")
    flagged = models.BooleanField(
        default=False, db_default=False,
        help_text="The value failed normalization: kept raw, never used to merge profiles")
    raw_value = models.CharField(max_length=255, blank=True, default="", db_default="",
                                 help_text="The value as it arrived")
    source = models.CharField(max_length=64, blank=True, help_text="Slug of the source that first sent it")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["type", "value"], name="identity_type_value_unique")]
        indexes = [models.Index(fields=["profile", "type"]),
                   # Lookups by an identifier that failed normalization (personalization, profile lookup): without
                   # it, every unknown visitor's call scanned all identities.
                   models.Index(fields=["type", "raw_value"], condition=models.Q(flagged=True),
                                name="identity_flagged_raw")]

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

    # Every stored event pays for each index, so there are no redundant ones: the profile and the name are served
    # by event_profile_time and event_name_time below (leading columns); channel keeps a plain index, without the
    # varchar_pattern_ops copy that db_index adds on PostgreSQL (no LIKE on these columns: istartswith is UPPER()).
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TRACK)
    name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=32, blank=True, help_text="web, app, shop, crm, call_center, email, ...")
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(db_index=True, help_text="When it happened (clock skew corrected)")
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=64, blank=True)
    message_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["profile", "-timestamp"], name="event_profile_time"),
            # Segment event conditions and computed traits: events by name in a time window. On PostgreSQL the
            # migration adds INCLUDE (profile_id), so the profile is read from the index (SQLite has no INCLUDE).
            models.Index(fields=["name", "timestamp"], name="event_name_time"),
            models.Index(fields=["channel"], name="event_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class IdentityRule(models.Model):
    """How one identity type behaves in the identity graph."""

    type = models.CharField(max_length=32, unique=True)
    priority = models.PositiveIntegerField(default=100, help_text="Lower wins when identities disagree")
    max_per_profile = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many values of this type one profile may carry (empty: no limit)")
    blocked_values = models.JSONField(
        default=list, blank=True, help_text="Values that never resolve or merge anything (besides the built-in ones)")
    unique_per_profile = models.BooleanField(
        default=False, help_text="Merge protection: never merge two profiles carrying different values of this type")

    class Meta:
        ordering = ["priority", "type"]

    def __str__(self) -> str:
        return self.type


class Merge(models.Model):
    """The merge journal: one row per merge, with what moved, so that it can be explained and undone."""

    class Reason(models.TextChoices):
        IDENTITY = "identity", "Shared identity"
        ALIAS = "alias", "Alias"
        MATCH = "match", "Probabilistic match"
        MANUAL = "manual", "Manual"

    winner = models.ForeignKey(Profile, null=True, on_delete=models.SET_NULL, related_name="merges_won")
    loser_id = models.BigIntegerField(db_index=True, help_text="The merged profile (kept as a tombstone)")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    rule = models.CharField(max_length=200, blank=True)
    score = models.FloatField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    moved = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Merge {self.pk}: {self.loser_id} into {self.winner_id}"


class MergeRefusal(models.Model):
    """A merge that a limit, a protection rule or a never-merge pair forbade, with its reason."""

    profile_a_id = models.BigIntegerField(db_index=True)
    profile_b_id = models.BigIntegerField(db_index=True)
    reason = models.CharField(max_length=300)
    rule = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Refused {self.profile_a_id}/{self.profile_b_id}: {self.reason}"


class NeverMerge(models.Model):
    """Two profiles that must never be merged (an ordered pair: profile_a has the smaller id)."""

    profile_a = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    profile_b = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile_a", "profile_b"], name="never_merge_pair_unique"),
            models.CheckConstraint(condition=models.Q(profile_a__lt=models.F("profile_b")),
                                   name="never_merge_pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"Never merge {self.profile_a_id} and {self.profile_b_id}"


class TraitValue(models.Model):
    """Lineage: every value a trait had, from which source and when. Repeats bump ``seen_count``."""

    # No index of its own: the unique constraint's index leads with the profile.
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="trait_values", db_index=False)
    name = models.CharField(max_length=200)
    value = models.JSONField(null=True, help_text="The value; for a sensitive trait its encrypted text")
    value_hash = models.CharField(max_length=32, help_text="md5 of the canonical JSON of the value; for a sensitive "
                                                           "trait a keyed hash (HMAC, cdp.core.crypto.keyed_hash)")
    source = models.CharField(max_length=64, blank=True)
    first_observed_at = models.DateTimeField()
    observed_at = models.DateTimeField(help_text="When this value was last observed from this source")
    seen_count = models.PositiveIntegerField(default=1)

    class Meta:
        # The unique constraint's index leads with (profile, name): it serves every lookup by profile or by profile
        # and name, so there is no other index to write on each lineage upsert.
        constraints = [models.UniqueConstraint(fields=["profile", "name", "source", "value_hash"],
                                               name="trait_value_unique")]

    def __str__(self) -> str:
        return f"{self.name}={self.value!r} ({self.source})"


class TraitPolicy(models.Model):
    """Per trait: survivorship and classification ("*": the default survivorship of every trait without its own
    policy). The one place that says which traits are personal (PII) or sensitive (encrypted at rest; see
    profiles.services.sensitive)."""

    class Strategy(models.TextChoices):
        SOURCE_PRIORITY = "source_priority", "Source priority"
        MOST_RECENT = "most_recent", "Most recent"
        MOST_FREQUENT = "most_frequent", "Most frequent"
        FIRST_NON_EMPTY = "first_non_empty", "First non-empty"

    class Classification(models.TextChoices):
        NORMAL = "normal", "Normal"
        PII = "pii", "Personal data (PII): masked without view_pii"
        SENSITIVE = "sensitive", "Sensitive (GDPR Art. 9): encrypted at rest, masked without view_pii"

    trait = models.CharField(max_length=200, unique=True)
    strategy = models.CharField(
        max_length=32, choices=Strategy.choices, default=Strategy.MOST_RECENT, blank=True,
        help_text='Empty: the default policy\'s ("*") strategy and source priority')
    source_priority = models.JSONField(
        default=list, blank=True, help_text="Source slugs, most trusted first (for source priority; also breaks ties)")
    classification = models.CharField(
        max_length=16, choices=Classification.choices, blank=True, default="", db_default="",
        help_text="Empty: PII for the known personal names (email, phone, names, address, birthday, ids; "
                  "cdp.core.masking.PII_KINDS), normal otherwise. Sensitive: special categories (health, religion, "
                  "ethnicity, political opinion, sexual orientation, trade union ...): encrypted at rest, segments "
                  "may only test whether it is set")

    class Meta:
        verbose_name_plural = "trait policies"
        ordering = ["trait"]

    def __str__(self) -> str:
        return f"{self.trait}: {self.strategy or 'default'}"


class MatchRule(models.Model):
    """A probabilistic match rule set (profiles.matching's rule format) and its two thresholds."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    rules = models.JSONField(default=dict)
    auto_merge_threshold = models.FloatField(default=0.99)
    review_threshold = models.FloatField(default=0.8)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MatchCandidate(models.Model):
    """A pair scored between the review and the auto-merge thresholds: the review queue."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        MERGED = "merged", "Merged"
        NEVER_MERGE = "never_merge", "Never merge"
        DISMISSED = "dismissed", "Dismissed"

    profile_a = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    profile_b = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    evidence = models.JSONField(default=dict, blank=True)
    rule = models.ForeignKey(MatchRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-score", "-id"]
        constraints = [models.UniqueConstraint(fields=["profile_a", "profile_b"], name="match_candidate_pair_unique")]

    def __str__(self) -> str:
        return f"Candidate {self.profile_a_id}/{self.profile_b_id} ({self.score:.3f})"


class MatchKey(models.Model):
    """A blocking key value of a profile (profiles.matching.blocking_key_values), for incremental candidate search."""

    # Derived data, rebuilt whole by every full run (millions of rows): no index of its own for the profile (the
    # unique constraint's index leads with it) and no per-row foreign-key check in the database. Deleting a profile
    # deletes its keys through Django's cascade, and erasure deletes them explicitly; a key whose profile is gone
    # is never used (candidates are read from live profiles).
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="match_keys", db_index=False,
                                db_constraint=False)
    key = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "key"], name="match_key_unique")]
        # Lookups by key are equality (IN); no varchar_pattern_ops copy, which db_index would add on PostgreSQL.
        indexes = [models.Index(fields=["key"], name="match_key_key")]

    def __str__(self) -> str:
        return self.key


class Note(models.Model):
    """A note or interaction an agent recorded on a profile."""

    class Channel(models.TextChoices):
        CALL_CENTER = "call_center", "Call center"
        STORE = "store", "Store"
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        CHAT = "chat", "Chat"

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        INTENT_TO_CANCEL = "intent_to_cancel", "Intends to cancel"
        COMPLAINT = "complaint", "Complaint"
        COMPLIMENT = "compliment", "Compliment"
        INTERACTION = "interaction", "Interaction"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NOTE)
    text = models.TextField()
    sentiment = models.FloatField(null=True, blank=True,
                                  help_text="-1 (negative) to 1 (positive), from profiles.insights.sentiment")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["profile", "-created_at"], name="note_profile_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.profile_id}"

    @property
    def sentiment_label(self) -> str | None:
        """negative, neutral or positive (profiles.insights.sentiment); None before it was scored."""
        from profiles.insights.sentiment import sentiment_label

        return None if self.sentiment is None else sentiment_label(self.sentiment)


class ComputedTrait(models.Model):
    """A measure derived from a profile's events (profiles.services.computed): an aggregation over the events
    that pass the event-name filter, the property filters and the time window. Segments use it by ``key``."""

    class Aggregation(models.TextChoices):
        COUNT = "count", "Count"
        SUM = "sum", "Sum"
        AVG = "avg", "Average"
        MIN = "min", "Minimum"
        MAX = "max", "Maximum"
        FIRST = "first", "First"
        LAST = "last", "Last"
        MOST_FREQUENT = "most_frequent", "Most frequent"
        DISTINCT_COUNT = "distinct_count", "Distinct count"
        RFM = "rfm", "RFM score"
        INSIGHT = "insight", "Insight (model)"

    class ValueType(models.TextChoices):
        NUMBER = "number", "Number"
        TEXT = "text", "Text"
        DATETIME = "datetime", "Date and time"
        DAYS_SINCE = "days_since", "Days since"

    class FieldType(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"

    class RFMPart(models.TextChoices):
        RECENCY = "recency", "Recency"
        FREQUENCY = "frequency", "Frequency"
        MONETARY = "monetary", "Monetary"
        SEGMENT = "segment", "Segment"

    key = models.SlugField(max_length=64, unique=True,
                           help_text='Used in segment rules: {"type": "computed", "trait": "<key>", ...}')
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    event_names = models.JSONField(default=list, blank=True, help_text="Event names to aggregate; empty: every event")
    filters = models.JSONField(default=list, blank=True,
                               help_text='Property filters, all must hold: [{"property", "op", "value"}]')
    field = models.CharField(
        max_length=200, blank=True, default="",
        help_text="What is aggregated: a property path (revenue, product.sku) or the event's channel, name or "
                  "timestamp")
    field_type = models.CharField(max_length=8, choices=FieldType.choices, default=FieldType.TEXT,
                                  help_text="How first, last and most frequent read a property: as text or number")
    as_days_since = models.BooleanField(default=False,
                                        help_text="A time (min/max/first/last of timestamp) shown as days since")
    window_days = models.PositiveIntegerField(null=True, blank=True, help_text="Only events of the last N days")
    window_start = models.DateField(null=True, blank=True, help_text="Only events from this day on")
    window_end = models.DateField(null=True, blank=True, help_text="Only events up to this day (inclusive)")
    rfm_part = models.CharField(max_length=16, choices=RFMPart.choices, blank=True, default="",
                                help_text="For the RFM aggregation: which score (or the segment name)")
    insight = models.CharField(max_length=32, blank=True, default="",
                               help_text="For the insight aggregation: the output of an insight model that fills "
                                         "this trait (profiles.insights), e.g. churn_risk")
    value_type = models.CharField(max_length=16, choices=ValueType.choices, editable=False,
                                  help_text="Derived from the definition (profiles.services.computed)")
    enabled = models.BooleanField(default=True)
    stock = models.BooleanField(default=False, editable=False, help_text="Installed by computed_traits_install")
    boundaries = models.JSONField(default=dict, blank=True, editable=False,
                                  help_text="RFM: the quintile boundaries of the last full run, per measure")
    run_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False,
                                       help_text="When the last full recompute finished")
    last_run_rows = models.PositiveIntegerField(null=True, blank=True, editable=False,
                                                help_text="Profiles with a value after the last full recompute")
    last_run_seconds = models.FloatField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def value_column(self) -> str:
        """The ComputedValue column that holds this trait's values."""
        return {"number": "value_number", "text": "value_text"}.get(self.value_type, "value_time")

    @property
    def running(self) -> bool:
        return bool(self.run_started_at and (self.last_run_at is None or self.run_started_at > self.last_run_at))


class ComputedValue(models.Model):
    """A profile's value of a computed trait. One column holds it (``ComputedTrait.value_column``); a days_since
    trait stores the time and the days are counted when read, so they are exact without a recompute."""

    # No index of its own: the unique (trait, profile) index leads with the trait.
    trait = models.ForeignKey(ComputedTrait, on_delete=models.CASCADE, related_name="values", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="computed_values")
    value_number = models.FloatField(null=True, blank=True)
    value_text = models.CharField(max_length=255, null=True, blank=True)
    value_time = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(help_text="When the value was last written (a recompute that finds the same "
                                                 "value leaves the row alone)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trait", "profile"], name="computed_value_unique")]
        indexes = [
            # One column holds a row's value: each index covers only the rows that use its column.
            models.Index(fields=["trait", "value_number"], name="computed_value_number",
                         condition=models.Q(value_number__isnull=False)),
            models.Index(fields=["trait", "value_text"], name="computed_value_text",
                         condition=models.Q(value_text__isnull=False)),
            models.Index(fields=["trait", "value_time"], name="computed_value_time",
                         condition=models.Q(value_time__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.trait_id}:{self.profile_id}"

    @property
    def value(self):
        """The value as its trait's type reads it: a number, text, a time, or whole days since the time."""
        value_type = self.trait.value_type
        if value_type == ComputedTrait.ValueType.NUMBER:
            return self.value_number
        if value_type == ComputedTrait.ValueType.TEXT:
            return self.value_text
        if value_type == ComputedTrait.ValueType.DAYS_SINCE:
            return days_since(self.value_time)
        return self.value_time


def days_since(when, now=None) -> int | None:
    """Whole days from ``when`` to now (0 on the same day-length interval; never negative)."""
    if when is None:
        return None
    return max(0, ((now or timezone.now()) - when).days)


class InsightModel(models.Model):
    """One training run of an insight model (profiles.insights): what was fitted, on how much data, how well it
    did on the held-out time split beside its naive baseline, and the fitted parameters that score profiles. The
    newest successful run of a kind scores; older runs stay as the history shown in the UI. Parameters are plain
    JSON (coefficients, distribution parameters), never pickles."""

    class Kind(models.TextChoices):
        CHURN = "churn", "Churn risk"
        CLV = "clv", "Predicted lifetime value"
        RECOMMENDATIONS = "recommendations", "Product recommendations"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "Trained"
        HEURISTIC = "heuristic", "Heuristic (too little data)"
        FAILED = "failed", "Failed"

    # The statuses of a run whose parameters score profiles.
    SCORING = (Status.OK, Status.HEURISTIC)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    method = models.CharField(max_length=64, blank=True, default="",
                              help_text="What scores: logistic_regression, bg_nbd_gamma_gamma, item_to_item, "
                                        "heuristic ...")
    reason = models.TextField(blank=True, default="", help_text="Why a heuristic stands in, or why the run failed")
    cutoff_at = models.DateTimeField(null=True, blank=True, help_text="Features up to here; the labels after it")
    training_rows = models.PositiveIntegerField(default=0)
    scored_rows = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True,
                               help_text="Quality on the held-out time split beside the naive baseline")
    params = models.JSONField(default=dict, blank=True, help_text="The fitted parameters that score profiles")
    train_seconds = models.FloatField(null=True, blank=True)
    score_seconds = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "-started_at"], name="insight_model_kind_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.method or self.status}, {self.started_at:%Y-%m-%d %H:%M})"


class Product(models.Model):
    """A product as the events describe it (Product Viewed / Product Added / Order Completed properties), with
    how often it was viewed and bought: the catalog of the recommendations and their popularity fallback."""

    product_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=300, blank=True, default="")
    category = models.CharField(max_length=200, blank=True, default="")
    price = models.FloatField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)
    buyers = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-buyers", "-views", "product_id"]  # popularity, as the fallback and the API rank it

    def __str__(self) -> str:
        return self.name or self.product_id


class ProductAffinity(models.Model):
    """Item to item: how strongly people who bought or viewed ``product`` also bought or viewed ``other``
    (co-purchase and co-view counts and the combined similarity score). Rebuilt by the recommendations run."""

    product = models.CharField(max_length=200)
    other = models.CharField(max_length=200)
    score = models.FloatField()
    co_purchases = models.PositiveIntegerField(default=0)
    co_views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "other"], name="product_affinity_unique")]

    def __str__(self) -> str:
        return f"{self.product} -> {self.other}"
