"""Every write to ingestion. One module per area; this package re-exports the public services."""

from ingestion.services.privacy import personal_data_erase, personal_data_export
from ingestion.services.sources import source_create, write_key_hash

__all__ = ["personal_data_erase", "personal_data_export", "source_create", "write_key_hash"]
