"""Keyed hashes of erased people's identifiers.

The suppression list holds HMAC-SHA256 digests of ``type:value``, never the values: without the key a digest
cannot be tested against guessed addresses. The key comes from ``CDP_SUPPRESSION_KEY``; without it, one is derived
from SECRET_KEY (so rotating SECRET_KEY without setting CDP_SUPPRESSION_KEY forgets the list: set the variable in
production).
"""

import hashlib
import hmac
from functools import cache

from django.conf import settings

from profiles.search import identifier_candidates


@cache
def _key() -> bytes:
    configured = settings.CDP_SUPPRESSION_KEY
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"cdp.consent.suppression", hashlib.sha256).digest()


def digest(identity_type: str, value: str) -> str:
    return hmac.new(_key(), f"{identity_type}:{value}".encode(), hashlib.sha256).hexdigest()


def forms(identity_type: str, value: str) -> list[str]:
    """The forms an identifier may arrive in (emails in any case, phones as E.164, digits or as typed), so that a
    suppressed person is recognised however a source writes the identifier."""
    return identifier_candidates(identity_type, value) or [value]
