from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profiles"

    def ready(self) -> None:
        from cdp.core import dashboard, profile_panels, registry
        from profiles import selectors, services

        registry.register("profiles", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=services.PERSONAL_DATA_MODELS)
        # Trait classification (TraitPolicy) for masking everywhere, and the re-encryption of sensitive traits.
        from cdp.core import crypto, masking
        from profiles.services.golden import Policies

        masking.register_classification(lambda: Policies.cached().classification)
        crypto.register_rotation("profiles.sensitive_traits", services.sensitive_values_rotate)
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
        # Insights on the 360° page and in the profile API (``insights``), and their spread on the dashboard.
        from profiles import views_insights

        profile_panels.register(profile_panels.Panel(
            key="insights", title="Insights", template="profiles/insights_panel.html",
            context=views_insights.insights_panel_context, data=views_insights.insights_panel_data,
            permission=views_insights.VIEW_PERMISSION, order=6))
        dashboard.register_distribution(dashboard.Distribution(
            key="churn_risk_level", label="Churn risk", kind="bar", axis="Level",
            data=lambda: views_insights.insight_distribution_chart("churn_risk_level", label="Customers"),
            description="Customers per churn risk level", url_name="profiles:insights",
            empty="No churn scores yet: the insight models have not run.",
            permission=views_insights.VIEW_PERMISSION, order=10))
        dashboard.register_distribution(dashboard.Distribution(
            key="predicted_clv_12m", label="Predicted 12-month value", kind="bar", axis="Predicted value",
            data=lambda: views_insights.insight_distribution_chart("predicted_clv_12m", label="Customers"),
            description="Customers per range of predicted value", url_name="profiles:insights",
            empty="No predicted values yet: the insight models have not run.",
            permission=views_insights.VIEW_PERMISSION, order=20))
