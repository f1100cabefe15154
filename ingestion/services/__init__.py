"""Every write to ingestion. One module per area; this package re-exports the public services."""

from ingestion.services.inbox import StoreResult, inbox_reject, inbox_store
from ingestion.services.privacy import personal_data_erase, personal_data_export
from ingestion.services.sources import (
    source_create,
    source_delete,
    source_enabled_set,
    source_key_rotate,
    source_update,
    write_key_hash,
)

__all__ = ["StoreResult", "inbox_reject", "inbox_store", "personal_data_erase", "personal_data_export",
           "source_create", "source_delete", "source_enabled_set", "source_key_rotate", "source_update",
           "write_key_hash"]
