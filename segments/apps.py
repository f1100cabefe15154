from django.apps import AppConfig


def _profile_memberships(profile):
    from segments.models import Membership

    return (Membership.objects.filter(profile=profile, exited_at__isnull=True).select_related("segment")
            .order_by("segment__name"))


def _profile_segments(profile, user) -> dict:
    """The segments panel of the 360° page: the segments the profile is in now, with the time it entered."""
    return {"memberships": list(_profile_memberships(profile))}


def _profile_segments_data(profile, user) -> list[dict]:
    return [{"id": m.segment_id, "slug": m.segment.slug, "name": m.segment.name, "entered_at": m.entered_at}
            for m in _profile_memberships(profile)]


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from cdp.core import dashboard, profile_panels, registry
        from profiles.signals import profile_changed
        from segments import selectors, services, tasks, views

        profile_changed.connect(tasks.profile_changed_enqueue_recheck, dispatch_uid="segments.profiles_recheck")

        registry.register("segments", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["segments.Membership"])
        dashboard.register_metric(dashboard.Metric(
            key="segments", label="Segments", count=selectors.segment_count, url_name="segments:list",
            permission="segments.view_segment", order=30))
        profile_panels.register(profile_panels.Panel(
            key="segments", title="Segments", template="segments/_profile_segments.html",
            context=_profile_segments, data=_profile_segments_data, permission="segments.view_segment",
            order=30))
        views.register_profile_list_actions()  # "Save as segment" on the profile list
