from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from cdp.core import dashboard, registry
        from segments import selectors, services

        registry.register("segments", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["segments.Membership"])
        dashboard.register_metric(dashboard.Metric(
            key="segments", label="Segments", count=selectors.segment_count, url_name="segments:list",
            permission="segments.view_segment", order=30))
