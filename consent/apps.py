from django.apps import AppConfig


def _profile_consent(profile, user) -> dict:
    """The consent panel of the 360° page: every purpose with the profile's current decision (or none)."""
    from consent import selectors
    from consent.forms import ConsentDecisionForm
    from consent.models import Purpose

    state = selectors.consent_state(profile=profile)
    may_record = user.has_perm("consent.add_consentrecord")
    return {"purposes": [{"purpose": purpose, "status": state.get(purpose.key, "")}
                         for purpose in Purpose.objects.order_by("key")],
            "history": selectors.consent_history(profile=profile), "profile_id": profile.pk,
            "restricted": selectors.profile_restricted(profile=profile),
            "decision_form": ConsentDecisionForm(auto_id=f"consent-%s-{profile.pk}") if may_record else None}


def _profile_consent_data(profile, user) -> dict:
    from consent import selectors

    return selectors.consent_state(profile=profile)


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and privacy"

    def ready(self) -> None:
        from cdp.core import processing, profile_panels, registry, retention
        from consent import selectors, services
        from profiles.models import Event

        registry.register("consent", export=services.personal_data_export, erase=services.personal_data_erase,
                          models=["consent.ConsentRecord", "consent.DataSubjectRequest"])
        # Retention of the tables of the layers below (profiles' events, the platform's audit log); ingestion and
        # activation register their own.
        retention.register("events", label="Events", delete_batch=services.events_delete_batch,
                           scope_label="Event type", scopes=tuple(Event.Type.values))
        retention.register("audit_entries", label="Audit entries", delete_batch=retention.audit_delete_batch)
        # Restriction and objection keep a person out of the insight models (profiling) as out of activation.
        processing.register_frozen(selectors.frozen_profile_ids)
        profile_panels.register(profile_panels.Panel(
            key="consent", title="Consent", template="consent/_profile_consent.html", context=_profile_consent,
            data=_profile_consent_data, permission="consent.view_consentrecord", order=20))
