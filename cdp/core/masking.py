"""PII masking. A user without ``core.view_pii`` sees masked names, emails and phones, in the UI and the API.

Traits are normal, personal (PII) or sensitive. Which ones: ``PII_KINDS`` by name, and the classification profiles
registers (``register_classification``: profiles.TraitPolicy.classification, the one place where an administrator
classifies a trait). A sensitive trait's value is stored encrypted ("sealed": ``cdp.core.crypto.encrypt`` of its
JSON text); it is hidden entirely without ``core.view_pii`` and decrypted (``reveal``) for users who have it. Any
sealed value is treated as sensitive wherever it appears (event properties, context, traits).
"""

import json
import logging
from collections.abc import Callable

from cdp.core import crypto

PII_PERMISSION = "core.view_pii"
MASK = "•••"
SENSITIVE = "sensitive"  # the mask kind of a sensitive trait: nothing of the value is shown
UNREADABLE = "[encrypted: no configured key decrypts it]"

logger = logging.getLogger(__name__)


def can_view_pii(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(PII_PERMISSION))


def mask_email(value: str) -> str:
    local, _, domain = str(value).partition("@")
    if not domain:
        return mask_text(value)
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}{MASK}@{host[:1]}{MASK}.{tld}" if host else f"{local[:1]}{MASK}@{MASK}"


def mask_phone(value: str) -> str:
    digits = str(value)
    if len(digits) <= 4:
        return MASK
    return f"{digits[:3]}{MASK}{digits[-2:]}"


def mask_text(value: str) -> str:
    text = str(value).strip()
    return f"{text[:1]}{MASK}" if text else ""


MASKERS = {"email": mask_email, "phone": mask_phone, "name": mask_text, "text": mask_text,
           SENSITIVE: lambda value: MASK}

# Trait and identity names whose values are personal data, and how each is masked.
PII_KINDS = {
    "email": "email",
    "phone": "phone",
    "first_name": "name",
    "last_name": "name",
    "name": "name",
    "full_name": "name",
    "address": "text",
    "street": "text",
    "birthday": "text",
    "birth_date": "text",
    "user_id": "text",
    "crm_id": "text",
}


# --- classification -------------------------------------------------------------------------------------------
# profiles registers, from its AppConfig.ready(), a function answering {trait name: "normal" | "pii" | "sensitive"}
# for the traits an administrator classified (cached there); cdp imports no app.

_classification: Callable[[], dict[str, str]] | None = None


def register_classification(classify: Callable[[], dict[str, str]]) -> None:
    global _classification
    _classification = classify


def trait_kind(name) -> str | None:
    """How a trait's value is masked: a kind of ``PII_KINDS`` ("email", "phone", "name", "text"), ``SENSITIVE``, or
    None for a normal trait."""
    classified = _classification().get(name) if _classification is not None else None
    if classified == SENSITIVE:
        return SENSITIVE
    if classified == "pii":
        return PII_KINDS.get(name, "text")
    if classified == "normal":
        return None
    return PII_KINDS.get(name)


# --- sealed (encrypted) values ----------------------------------------------------------------------------------


def is_sealed(value) -> bool:
    return crypto.is_encrypted(value)


def unseal(value):
    """The plain value of a sealed one (the encrypted JSON text of the value); other values come back as they are.
    Raises ``crypto.DecryptionError`` when no configured key decrypts it."""
    if crypto.is_encrypted(value):
        return json.loads(crypto.decrypt(value))
    return value


def reveal(value, *, strict: bool = False, as_sent: bool = False):
    """Any JSON value with its sealed values decrypted, at every depth. A value no configured key decrypts shows as
    ``UNREADABLE``; ``as_sent``: as the text it is (a sender may send text that merely looks sealed); ``strict``:
    raises ``crypto.DecryptionError``."""
    if isinstance(value, str):
        if not crypto.is_encrypted(value):
            return value
        try:
            return unseal(value)
        except crypto.DecryptionError:
            if strict:
                raise
            if as_sent:
                return value
            logger.warning("A sealed value could not be decrypted: CDP_ENCRYPTION_KEYS lacks the key that "
                           "encrypted it.")
            return UNREADABLE
    if isinstance(value, dict):
        return {key: reveal(item, strict=strict, as_sent=as_sent) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item, strict=strict, as_sent=as_sent) for item in value]
    return value


# --- masking ----------------------------------------------------------------------------------------------------


def mask(value, kind: str = "text"):
    if value is None or value == "":
        return value
    if crypto.is_encrypted(value):
        return MASK
    return MASKERS.get(kind, mask_text)(value)


def mask_for(user, value, kind: str = "text"):
    """The value as this user may see it (a sealed value decrypted, or hidden)."""
    return reveal(value) if can_view_pii(user) else mask(value, kind)


def mask_data(value):
    """Any JSON value with its personal data masked, at every depth: values under personal and sensitive keys
    (``trait_kind``), sealed values, and email addresses and phone numbers inside any other text (event properties
    and context are free-form)."""
    from cdp.core.logging import redact

    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kind = trait_kind(key)
            if kind == SENSITIVE and item not in (None, ""):
                out[key] = MASK
            elif kind and not isinstance(item, dict | list):
                out[key] = mask(item, kind)
            else:
                out[key] = mask_data(item)
        return out
    if isinstance(value, list):
        return [mask_data(item) for item in value]
    if isinstance(value, str):
        return MASK if crypto.is_encrypted(value) else redact(value)
    return value


def mask_data_for(user, value):
    return reveal(value) if can_view_pii(user) else mask_data(value)


def mask_traits(user, traits: dict) -> dict:
    """Traits as this user may see them: sealed values decrypted for users with view_pii; otherwise personal ones
    masked and sensitive (or sealed) ones hidden."""
    if can_view_pii(user):
        return {key: reveal(value) for key, value in traits.items()}
    out = {}
    for key, value in traits.items():
        kind = trait_kind(key) or (SENSITIVE if crypto.is_encrypted(value) else None)
        out[key] = mask(value, kind) if kind else value
    return out
