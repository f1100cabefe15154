from django.apps import AppConfig


def _profile_deliveries(profile, user) -> dict:
    """The delivery log panel of the 360° page: what was sent about the profile, where, and how it went."""
    from activation.selectors import profile_delivery_log

    return {"delivery_items": profile_delivery_log(profile=profile)}


class ActivationConfig(AppConfig):
    name = "activation"
    verbose_name = "Activation"

    def ready(self) -> None:
        from activation import selectors, services, tasks
        from cdp.core import crypto, dashboard, profile_panels, registry, retention
        from profiles.signals import profile_changed
        from segments.signals import segment_entered, segment_exited

        segment_entered.connect(tasks.segment_changed_enqueue, dispatch_uid="activation.segment_entered")
        segment_exited.connect(tasks.segment_changed_enqueue, dispatch_uid="activation.segment_exited")
        profile_changed.connect(tasks.profile_changed_enqueue, dispatch_uid="activation.profiles_reevaluate")

        registry.register("activation", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["activation.DeliveryItem", "activation.SyncMember"])
        crypto.register_rotation("activation.destination_secrets", services.destination_secrets_rotate)
        retention.register("delivery_logs", label="Delivery logs", delete_batch=services.delivery_logs_delete_batch)

        dashboard.register_metric(dashboard.Metric(
            key="activations", label="Activations", count=selectors.activation_count, url_name="activation:list",
            permission="activation.view_activation", order=40))
        dashboard.register_metric(dashboard.Metric(
            key="activation_failures", label="Failed deliveries", count=selectors.failed_deliveries_count,
            url_name="activation:dead-letters", permission="activation.view_delivery", order=41))
        profile_panels.register(profile_panels.Panel(
            key="deliveries", title="Deliveries", template="activation/_profile_deliveries.html",
            context=_profile_deliveries, permission="activation.view_delivery", order=50))
