from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "cdp.core"
    label = "core"
    verbose_name = "Platform"

    def ready(self) -> None:
        from cdp.core import registry
        from cdp.core.api.authentication import connect_receivers

        connect_receivers()

        registry.register(
            "core",
            export=registry.audit_export,
            erase=registry.audit_erase,
            models=["core.AuditEntry"],
        )
