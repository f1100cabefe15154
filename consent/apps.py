from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and privacy"

    def ready(self) -> None:
        from cdp.core import registry
        from consent import services

        registry.register("consent", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["consent.ConsentRecord"])
