from ingestion.models.inbox import InboxMessage
from ingestion.models.sources import Source

__all__ = ["InboxMessage", "Source"]
