"""Encryption at rest: Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) with the keys of
``CDP_ENCRYPTION_KEYS``.

The first key encrypts; every key decrypts, so a new key is put first, ``manage.py rotate_encryption_key``
re-encrypts what is stored, and the old key is then removed. What is stored is text: a Fernet token (url-safe
base64) prefixed with ``PREFIX`` so that an encrypted value is recognised wherever it sits (a JSON field, a
setting). Used for sensitive trait values (profiles) and destination secrets (activation); see docs/privacy.md,
"Encryption at rest".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "enc:v1:"


class DecryptionError(Exception):
    """A stored value could not be decrypted: none of the configured keys made it (a key was removed too early), or
    it was altered."""


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.CDP_ENCRYPTION_KEYS])


def keys_changed() -> None:
    """Forget the keys read from the settings (after a test or a rotation changes them)."""
    _fernet.cache_clear()
    _hash_key.cache_clear()


def is_encrypted(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(text: str) -> str:
    """``text`` encrypted with the first key, as ``PREFIX`` + the Fernet token."""
    return PREFIX + _fernet().encrypt(text.encode()).decode("ascii")


def decrypt(value: str) -> str:
    """The text of a value made by ``encrypt``, with whichever configured key made it."""
    if not is_encrypted(value):
        raise DecryptionError("not an encrypted value")
    try:
        return _fernet().decrypt(value[len(PREFIX):].encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as error:
        raise DecryptionError("no configured key decrypts this value (CDP_ENCRYPTION_KEYS)") from error


def rotate(value: str) -> str:
    """The same text encrypted with the first key (a value already under it is encrypted again)."""
    if not is_encrypted(value):
        raise DecryptionError("not an encrypted value")
    try:
        return PREFIX + _fernet().rotate(value[len(PREFIX):].encode("ascii")).decode("ascii")
    except InvalidToken as error:
        raise DecryptionError("no configured key decrypts this value (CDP_ENCRYPTION_KEYS)") from error


@cache
def _hash_key() -> bytes:
    return hmac.new(settings.CDP_ENCRYPTION_KEYS[0].encode(), b"cdp.core.crypto.hash", hashlib.sha256).digest()


def keyed_hash(text: str) -> str:
    """A keyed hash (HMAC-SHA256, hex) of ``text``: equal texts give equal hashes, so an encrypted value can still
    be compared and counted, but the hash cannot be tested against guesses without the key. Derived from the first
    key, so ``manage.py rotate_encryption_key`` computes stored hashes again as well."""
    return hmac.new(_hash_key(), text.encode(), hashlib.sha256).hexdigest()


# --- what is stored encrypted, for rotation ----------------------------------------------------------------------
# Each app registers, from its AppConfig.ready(), a handler that re-encrypts everything it stores with
# ``rotate()`` (and computes its ``keyed_hash`` values again) and returns how many values it re-encrypted;
# ``manage.py rotate_encryption_key`` calls them all.

_rotation_handlers: dict[str, Callable[[], int]] = {}


def register_rotation(label: str, rotate_all: Callable[[], int]) -> None:
    """Register (or replace, on a reload) the re-encryption of one store, e.g. "profiles.sensitive_traits"."""
    _rotation_handlers[label] = rotate_all


def rotation_handlers() -> dict[str, Callable[[], int]]:
    return dict(_rotation_handlers)
