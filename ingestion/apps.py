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
