from django.db import models

from ingestion.models.sources import Source


class SourceTransformation(models.Model):
    """A source's declarative transformations: one ordered list of steps (JSON), checked by
    ingestion.services.transforms.transforms_validate before it is saved."""

    source = models.OneToOneField(Source, on_delete=models.CASCADE, related_name="transformation")
    steps = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source__name"]

    def __str__(self) -> str:
        return f"Transformations of {self.source}"
