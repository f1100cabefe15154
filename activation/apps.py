from django.apps import AppConfig


class ActivationConfig(AppConfig):
    name = "activation"
    verbose_name = "Activation"

    def ready(self) -> None:
        from activation import selectors
        from cdp.core import dashboard

        dashboard.register_metric(dashboard.Metric(
            key="activations", label="Activations", count=selectors.activation_count, url_name="activation:list",
            permission="activation.view_activation", order=40))
