"""Destinations: create and change them (the configuration checked per kind, hosts public only, secrets kept apart,
encrypted, and shown once), test the connection, and re-encrypt their secrets with the newest key."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from activation.destinations import ConfigInvalid, DestinationError, config_clean, kind_module
from activation.models import Destination
from cdp.core import crypto


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


@transaction.atomic
def destination_secrets_rotate() -> int:
    """Re-encrypt every destination's secrets with the first key of CDP_ENCRYPTION_KEYS (the rotation handler
    "activation.destination_secrets" of ``manage.py rotate_encryption_key``); a secret stored in clear (from before
    encryption) is encrypted. Returns how many secrets it re-encrypted."""
    count = 0
    for destination in Destination.objects.select_for_update().only("id", "secrets").order_by("pk"):
        if not destination.secrets:
            continue
        destination.secrets = {name: crypto.rotate(value) if crypto.is_encrypted(value) else crypto.encrypt(value)
                               for name, value in destination.secrets.items() if value}
        Destination.objects.filter(pk=destination.pk).update(secrets=destination.secrets)
        count += len(destination.secrets)
    return count


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
