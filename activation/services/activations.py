"""Activations: a segment sent to a destination for one consent purpose, with a field mapping and a schedule."""

from __future__ import annotations

from django.db import transaction

from activation.destinations import kind_module
from activation.mapping import MappingInvalid, mapping_clean
from activation.models import Activation, Destination


class ActivationInvalid(ValueError):
    """An activation that cannot be saved; ``errors`` maps each wrong field (``mapping.email``) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def _checked(*, name: str, destination: Destination, schedule: str, mapping, options) -> tuple[dict, dict]:
    errors: dict[str, list[str]] = {}
    if not str(name or "").strip():
        errors["name"] = ["This field is required."]
    if schedule not in Activation.Schedule.values:
        errors["schedule"] = [f"Choose one of: {', '.join(Activation.Schedule.values)}."]
    try:
        mapping = mapping_clean(mapping)
    except MappingInvalid as error:
        errors.update(error.errors)
    if not isinstance(options, dict):
        errors["options"] = ["Send an object."]
        options = {}
    module = kind_module(destination.kind)
    if hasattr(module, "options_check"):
        for key, messages in module.options_check(destination, options, mapping if isinstance(mapping, dict)
                                                  else {}).items():
            errors.setdefault(key, []).extend(messages)
    elif options:
        errors["options"] = ["This destination kind takes no options."]
    if errors:
        raise ActivationInvalid(errors)
    return mapping, options


@transaction.atomic
def activation_create(*, name: str, segment, destination: Destination, purpose, mapping: dict,
                      schedule: str = Activation.Schedule.MANUAL, options: dict | None = None,
                      enabled: bool = True) -> Activation:
    mapping, options = _checked(name=name, destination=destination, schedule=schedule, mapping=mapping,
                                options=options or {})
    return Activation.objects.create(name=name.strip(), segment=segment, destination=destination, purpose=purpose,
                                     schedule=schedule, mapping=mapping, options=options, enabled=enabled)


@transaction.atomic
def activation_update(*, activation: Activation, **fields) -> Activation:
    """Change an activation. A new mapping changes every payload, so the next sync sends every member again as a
    change (the hashes differ); a new segment or purpose sends the difference."""
    allowed = {"name", "segment", "destination", "purpose", "schedule", "mapping", "options", "enabled"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    moved = "destination" in fields and fields["destination"].pk != activation.destination_id
    for key, value in fields.items():
        setattr(activation, key, value)
    activation.mapping, activation.options = _checked(
        name=activation.name, destination=activation.destination, schedule=activation.schedule,
        mapping=activation.mapping, options=activation.options or {})
    activation.name = activation.name.strip()
    activation.save()
    if moved:  # the new destination has been sent nothing: its first sync sends everything
        activation.sync_members.all().delete()
        Activation.objects.filter(pk=activation.pk).update(last_good_sync_at=None)
    return activation


@transaction.atomic
def activation_delete(*, activation: Activation) -> None:
    activation.delete()
