from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Data collection"

    def ready(self) -> None:
        from cdp.core import registry
        from ingestion import services

        registry.register("ingestion", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["ingestion.InboxMessage"])
        # Uploaded files and error reports of imports (helper "connectors": ingestion/services/imports.py).
        from ingestion.services import imports

        registry.register("ingestion.imports", export=imports.imports_personal_data_export,
                          erase=imports.imports_personal_data_erase, models=["ingestion.Import"])
        # Retention (consent's nightly run, cdp.core.retention): handled inbox messages older than the policy.
        from cdp.core import retention
        from ingestion.models import InboxMessage

        retention.register("inbox_messages", label="Inbox messages", delete_batch=lambda before, scope, limit: (
            retention.delete_oldest(InboxMessage.objects.filter(received_at__lt=before)
                                    .exclude(status=InboxMessage.Status.PENDING), limit=limit)))
