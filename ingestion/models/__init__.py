from ingestion.models.imports import Import
from ingestion.models.inbox import InboxCount, InboxMessage
from ingestion.models.plans import PlanViolation, TrackingPlan
from ingestion.models.sources import Source
from ingestion.models.transforms import SourceTransformation

__all__ = ["Import", "InboxCount", "InboxMessage", "PlanViolation", "Source", "SourceTransformation", "TrackingPlan"]
