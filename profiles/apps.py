from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profiles"

    def ready(self) -> None:
        from cdp.core import dashboard, profile_panels, registry
        from profiles import selectors, services

        registry.register("profiles", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=services.PERSONAL_DATA_MODELS)
        dashboard.register_metric(dashboard.Metric(
            key="profiles", label="Profiles", count=selectors.profile_count, url_name="profiles:list",
            permission="profiles.view_profile", order=10))
        dashboard.register_metric(dashboard.Metric(
            key="events_today", label="Events today", count=selectors.events_today_count,
            permission="profiles.view_event", order=20))
        dashboard.register_series(dashboard.Series(
            key="events", label="Events per day", per_day=selectors.events_per_day,
            permission="profiles.view_event"))
        # Probabilistic matching for changed profiles: the receiver only enqueues profiles.tasks.match_profiles.
        from profiles import tasks
        from profiles.signals import profile_changed

        profile_changed.connect(tasks.profile_changed_enqueue_matching, dispatch_uid="profiles.match_profiles")
        # Computed traits on the 360° page and in the profile API (``computed``).
        from profiles import views_computed

        profile_panels.register(profile_panels.Panel(
            key="computed", title="Computed traits", template="profiles/computed_panel.html",
            context=views_computed.computed_panel_context,
            data=lambda profile, user: selectors.profile_computed(profile=profile, user=user),
            permission="profiles.view_computedvalue", order=5))
