"""Destination kinds, one module each, with the same small interface (see ``base``). ``kind_module(kind)`` finds
the module; ``config_clean`` checks a configuration against the kind's fields (addresses must be public:
``network``) and splits off its secrets, which it encrypts."""

from __future__ import annotations

import secrets as secrets_module
from types import ModuleType
from urllib.parse import urlsplit

from activation.destinations import audience_api, email, file, network, webhook
from activation.destinations.base import Batch, ConfigField, DestinationError, Item, Result, host_shape_error
from cdp.core import crypto

KINDS: dict[str, ModuleType] = {"webhook": webhook, "email": email, "file": file, "audience_api": audience_api}


class ConfigInvalid(ValueError):
    """A configuration that cannot be saved; ``errors`` maps each wrong field (``config.url``) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def kind_module(kind: str) -> ModuleType:
    return KINDS[kind]


def _value(spec: ConfigField, raw) -> tuple[object, str | None]:
    if spec.type == "bool":
        if isinstance(raw, str):
            return raw.lower() in ("1", "true", "on", "yes"), None
        return bool(raw), None
    if spec.type in ("int", "float"):
        try:
            value = int(raw) if spec.type == "int" else float(raw)
        except (TypeError, ValueError):
            return None, "Enter a number." if spec.type == "float" else "Enter a whole number."
        if isinstance(raw, bool) or (spec.type == "int" and isinstance(raw, float) and not raw.is_integer()):
            return None, "Enter a whole number."
        if spec.minimum is not None and value < spec.minimum:
            return None, f"Enter at least {spec.minimum:g}."
        if spec.maximum is not None and value > spec.maximum:
            return None, f"Enter at most {spec.maximum:g}."
        return value, None
    if not isinstance(raw, str):
        return None, "Enter text."
    value = raw.strip()
    if spec.type == "choice" and value not in dict(spec.choices):
        return None, f"Choose one of: {', '.join(dict(spec.choices))}."
    if spec.type == "host" and value and (error := host_shape_error(value)):
        return None, error
    if len(value) > 2000:
        return None, "Enter at most 2000 characters."
    return value, None


def config_clean(kind: str, config: dict, secrets: dict | None = None, *,
                 existing_secrets: dict | None = None) -> tuple[dict, dict, dict]:
    """Check ``config`` (and ``secrets``) against the kind. Returns (config, secrets to keep, encrypted, and secrets
    made now, in clear, to show once). An empty secret keeps the one already set. The hosts of addresses must
    resolve to public addresses (``network.host_error``). Raises ConfigInvalid naming ``config.<field>``."""
    if kind not in KINDS:
        raise ConfigInvalid({"kind": [f"Choose one of: {', '.join(KINDS)}."]})
    module = KINDS[kind]
    if not isinstance(config, dict):
        raise ConfigInvalid({"config": ["Send an object of settings."]})
    if secrets is not None and not isinstance(secrets, dict):
        raise ConfigInvalid({"secrets": ['Send an object of secrets, e.g. {"token": "..."}.']})
    secrets = dict(secrets or {})
    errors: dict[str, list[str]] = {}
    known = {spec.name for spec in module.FIELDS}
    for name in config:
        if name not in known:
            errors[f"config.{name}"] = ["Unknown setting for this kind."]
    clean: dict = {}
    kept = {k: v for k, v in (existing_secrets or {}).items() if k in known}
    made: dict = {}
    for spec in module.FIELDS:
        raw = (secrets.get(spec.name) if spec.name in secrets else config.get(spec.name)) if spec.secret \
            else config.get(spec.name)
        if spec.secret:
            if spec.generated:
                if not kept.get(spec.name) or raw == "rotate":
                    made[spec.name] = secrets_module.token_urlsafe(32)
                    kept[spec.name] = crypto.encrypt(made[spec.name])
                continue
            if raw not in (None, ""):
                if not isinstance(raw, str) or len(raw) > 2000:
                    errors[f"config.{spec.name}"] = ["Enter text of at most 2000 characters."]
                else:
                    kept[spec.name] = crypto.encrypt(raw)
            continue
        if raw in (None, ""):
            if spec.required and spec.default is None:
                errors[f"config.{spec.name}"] = ["This field is required."]
            elif spec.default is not None:
                clean[spec.name] = spec.default
            continue
        value, error = _value(spec, raw)
        if error:
            errors[f"config.{spec.name}"] = [error]
        else:
            clean[spec.name] = value
    for name, messages in module.config_check(clean, kept).items():
        errors.setdefault(f"config.{name}", messages)
    for spec in module.FIELDS:
        if spec.type in ("url", "host") and clean.get(spec.name) and f"config.{spec.name}" not in errors:
            host = urlsplit(clean[spec.name]).hostname if spec.type == "url" else clean[spec.name]
            if error := network.host_error(host):
                errors[f"config.{spec.name}"] = [error]
    if errors:
        raise ConfigInvalid(errors)
    return clean, kept, made


__all__ = ["KINDS", "Batch", "ConfigField", "ConfigInvalid", "DestinationError", "Item", "Result", "config_clean",
           "kind_module"]
