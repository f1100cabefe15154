"""PII masking. A user without ``core.view_pii`` sees masked names, emails and phones, in the UI and the API."""

PII_PERMISSION = "core.view_pii"
MASK = "•••"


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


MASKERS = {"email": mask_email, "phone": mask_phone, "name": mask_text, "text": mask_text}

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


def mask(value, kind: str = "text"):
    if value is None or value == "":
        return value
    return MASKERS.get(kind, mask_text)(value)


def mask_for(user, value, kind: str = "text"):
    """The value as this user may see it."""
    return value if can_view_pii(user) else mask(value, kind)


def mask_data(value):
    """Any JSON value with its personal data masked, at every depth: values under personal keys (PII_KINDS), and
    email addresses and phone numbers inside any other text (event properties and context are free-form)."""
    from cdp.core.logging import redact

    if isinstance(value, dict):
        return {key: mask(item, PII_KINDS[key]) if key in PII_KINDS and not isinstance(item, dict | list)
                else mask_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_data(item) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value


def mask_data_for(user, value):
    return value if can_view_pii(user) else mask_data(value)


def mask_traits(user, traits: dict) -> dict:
    if can_view_pii(user):
        return dict(traits)
    return {key: mask(value, PII_KINDS[key]) if key in PII_KINDS else value for key, value in traits.items()}
