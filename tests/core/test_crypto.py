"""Encryption at rest (cdp.core.crypto): round trip, key rotation, tampering, keyed hashes."""

import pytest
from cryptography.fernet import Fernet

from cdp.core import crypto


def test_a_value_round_trips_and_is_not_readable_at_rest(encryption_keys):
    encryption_keys(Fernet.generate_key().decode())
    stored = crypto.encrypt("diabetes type 2")
    assert crypto.is_encrypted(stored) and "diabetes" not in stored
    assert crypto.decrypt(stored) == "diabetes type 2"
    assert crypto.encrypt("diabetes type 2") != stored  # a fresh IV each time: equal values do not show as equal


def test_rotation_decrypts_with_the_old_key_and_re_encrypts_with_the_new(encryption_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    encryption_keys(old)
    stored = crypto.encrypt("catholic")
    encryption_keys(new, old)
    assert crypto.decrypt(stored) == "catholic"
    rotated = crypto.rotate(stored)
    encryption_keys(new)
    assert crypto.decrypt(rotated) == "catholic"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored)


def test_an_altered_or_plain_value_is_refused(encryption_keys):
    encryption_keys(Fernet.generate_key().decode())
    stored = crypto.encrypt("x")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored[:-4] + "AAAA")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("plain text")


def test_the_keyed_hash_compares_equal_values_and_depends_on_the_key(encryption_keys):
    encryption_keys(Fernet.generate_key().decode())
    first = crypto.keyed_hash("catholic")
    assert first == crypto.keyed_hash("catholic") != crypto.keyed_hash("protestant")
    encryption_keys(Fernet.generate_key().decode())
    assert crypto.keyed_hash("catholic") != first
