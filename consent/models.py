from django.db import models


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
