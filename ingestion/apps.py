from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Data collection"

    def ready(self) -> None:
        from cdp.core import registry
        from ingestion import services

        registry.register("ingestion", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["ingestion.InboxMessage"])
