"""Imports: one run that brings rows into a source other than through the tracking API.

A file import (CSV or JSON Lines, uploaded through the UI, the API or ``manage.py import_file``) and a pull of a
database source are both an ``Import``: rows read, mapped (ingestion.mapping) and stored in the inbox in batches,
with progress counters, a per-row error report and, for a database pull, the cursor range it covered.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from ingestion.models.sources import Source


def import_upload_to(instance, filename: str) -> str:
    # The caller passes a name already made safe and unique (services.imports.import_create).
    return f"imports/{instance.source.slug}/{filename}"


class Import(models.Model):
    """An import of a file, or a pull of a database source. The uploaded file and the error report hold personal
    data: both live under MEDIA_ROOT/imports/ and go with the import, or with a person's erasure."""

    personal_data = True

    class Kind(models.TextChoices):
        FILE = "file", "File"
        DATABASE = "database", "Database pull"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded, to map"
        READY = "ready", "Mapped, ready to run"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FILE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    error = models.TextField(blank=True, help_text="Why the run failed as a whole (rows have the error report)")

    # The file (kind=file).
    file = models.FileField(upload_to=import_upload_to, max_length=500, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    encoding = models.CharField(max_length=16, blank=True, help_text="Empty until known (detected or chosen)")
    delimiter = models.CharField(max_length=4, blank=True)
    columns = models.JSONField(default=list, blank=True, help_text="Column names (CSV header, JSON paths)")
    problems = models.JSONField(default=list, blank=True,
                                help_text='File-level problems: [{"code", "message", "blocking"}]')
    file_erased_at = models.DateTimeField(null=True, blank=True,
                                          help_text="When the file was deleted for a person's erasure")

    # The mapping spec of ingestion.mapping.
    mapping = models.JSONField(default=dict, blank=True)

    # Progress.
    rows_read = models.PositiveBigIntegerField(default=0)
    rows_stored = models.PositiveBigIntegerField(default=0)
    rows_duplicate = models.PositiveBigIntegerField(default=0)
    rows_failed = models.PositiveBigIntegerField(default=0)
    rows_partial = models.PositiveBigIntegerField(
        default=0, help_text="Rows stored without a value that could not be read (a consent decision), as the "
                             "error report says")
    bytes_read = models.BigIntegerField(default=0)
    error_report = models.FileField(upload_to=import_upload_to, max_length=500, blank=True)

    # A database pull: the cursor column and the range of its values that this run read.
    cursor_column = models.CharField(max_length=120, blank=True)
    cursor_start = models.JSONField(null=True, blank=True,
                                    help_text='{"type": ..., "value": ...}; null: from the start')
    cursor_end = models.JSONField(null=True, blank=True, help_text="The last cursor value stored so far")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Also the heartbeat of a running import")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source", "kind", "-created_at"], name="import_source_kind_created")]

    def __str__(self) -> str:
        return self.original_name or f"{self.get_kind_display()} {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def blocking_problems(self) -> list[dict]:
        return [problem for problem in self.problems or [] if problem.get("blocking")]

    @property
    def percent(self) -> int | None:
        """How far a run is, by bytes read of the file; None when unknown (a database pull)."""
        if self.status == self.Status.DONE:
            return 100
        if self.kind != self.Kind.FILE or not self.size_bytes:
            return None
        return max(0, min(99 if not self.is_finished else 100, int(100 * self.bytes_read / self.size_bytes)))

    @property
    def elapsed_seconds(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far, while running a file import."""
        if self.status != self.Status.RUNNING or self.kind != self.Kind.FILE or not self.size_bytes:
            return None
        elapsed = self.elapsed_seconds
        if not elapsed or self.bytes_read <= 0:
            return None
        return max(0.0, elapsed * (self.size_bytes - self.bytes_read) / self.bytes_read)

    @property
    def rows_per_second(self) -> float | None:
        elapsed = self.elapsed_seconds
        return self.rows_read / elapsed if elapsed and self.rows_read else None
