from django.apps import AppConfig


class ActivationConfig(AppConfig):
    name = "activation"
    verbose_name = "Activation"

    def ready(self) -> None:
        from activation import selectors, services
        from cdp.core import dashboard, registry

        registry.register("activation", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["activation.DeliveryItem", "activation.SyncMember"])

        dashboard.register_metric(dashboard.Metric(
            key="activations", label="Activations", count=selectors.activation_count, url_name="activation:list",
            permission="activation.view_activation", order=40))
