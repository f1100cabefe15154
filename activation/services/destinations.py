"""Destinations: create and change them (the configuration checked per kind, secrets kept apart and shown once),
test the connection, and forget a person at every destination that can delete."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from activation.destinations import ConfigInvalid, DestinationError, config_clean, kind_module
from activation.models import Destination


@dataclass
class DestinationSaved:
    destination: Destination
    new_secrets: dict  # secrets made now (a webhook's signing secret): shown to the user this once


@transaction.atomic
def destination_create(*, name: str, kind: str, config: dict, secrets: dict | None = None, enabled: bool = True
                       ) -> DestinationSaved:
    if not str(name or "").strip():
        raise ConfigInvalid({"name": ["This field is required."]})
    clean, kept, made = config_clean(kind, config, secrets)
    destination = Destination.objects.create(name=name.strip(), kind=kind, config=clean, secrets=kept,
                                             enabled=enabled)
    return DestinationSaved(destination, made)


@transaction.atomic
def destination_update(*, destination: Destination, name: str | None = None, config: dict | None = None,
                       secrets: dict | None = None, enabled: bool | None = None) -> DestinationSaved:
    """Change a destination. An empty secret keeps the one set; ``secrets={"signing_secret": "rotate"}`` makes a
    new signing secret (shown once)."""
    made: dict = {}
    if name is not None:
        if not name.strip():
            raise ConfigInvalid({"name": ["This field is required."]})
        destination.name = name.strip()
    if config is not None or secrets:
        clean, kept, made = config_clean(destination.kind, destination.config if config is None else config,
                                         secrets, existing_secrets=destination.secrets)
        destination.config, destination.secrets = clean, kept
    if enabled is not None:
        destination.enabled = enabled
    destination.save()
    return DestinationSaved(destination, made)


@transaction.atomic
def destination_delete(*, destination: Destination) -> None:
    """Delete a destination without activations (they protect it)."""
    destination.delete()


def destination_test(*, destination: Destination) -> tuple[bool, str]:
    """Try the connection (a harmless request), record the outcome on the destination and return it."""
    try:
        result = kind_module(destination.kind).test_connection(destination)
        ok, message = True, result.message or "ok"
    except DestinationError as error:
        ok, message = False, error.message
    Destination.objects.filter(pk=destination.pk).update(last_tested_at=timezone.now(), last_test_ok=ok,
                                                         last_test_message=message[:500])
    destination.refresh_from_db(fields=["last_tested_at", "last_test_ok", "last_test_message"])
    return ok, message
