"""``manage.py rotate_encryption_key``: every registered encrypted store is re-encrypted with the first key, so the
old key can be removed; sensitive traits (profiles) are the store tested here end to end."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from cdp.core import crypto
from cdp.core.masking import unseal
from profiles.models import Merge, Profile, TraitValue
from profiles.services import Observation, merge_undo, observations_apply, profiles_merge, trait_classify

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 5, 1, 8, tzinfo=UTC)
SECRET = "hiv positive"


def see(value, *, at, who=("user_id", "u-1"), source="clinic"):
    [pk] = observations_apply(observations=[Observation(
        identities=[who], timestamp=at, source=source, traits={"diagnosis": value}, event_type="identify",
        properties={"diagnosis": value})])
    return Profile.objects.get(pk=pk)


def tokens() -> list[str]:
    """Every encrypted value stored in a profiles table (raw SQL)."""
    found = []
    with connection.cursor() as cursor:
        for table in [t for t in connection.introspection.table_names() if t.startswith("profiles_")]:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found += re.findall(re.escape(crypto.PREFIX) + r"[A-Za-z0-9_=-]+", repr(cursor.fetchall()))
    return found


def rotate() -> str:
    out = StringIO()
    call_command("rotate_encryption_key", stdout=out)
    return out.getvalue()


def test_rotation_with_two_keys_then_dropping_the_old_one(encryption_keys, django_capture_on_commit_callbacks):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    encryption_keys(old)
    with django_capture_on_commit_callbacks(execute=True):
        trait_classify(trait="diagnosis", classification="sensitive")
    see(SECRET, at=T0)
    see(SECRET, at=T0 + timedelta(days=1))
    other = see(SECRET, at=T0 + timedelta(days=2), who=("email", "x@example.org"))
    merge = profiles_merge(winner=Profile.objects.get(identities__value="u-1"), loser=other, reason="manual")
    assert tokens()

    encryption_keys(new, old)  # the new key first: it encrypts new values, the old one still decrypts
    winner = see(SECRET, at=T0 + timedelta(days=3))
    # Hashes of the old key and of the new one: two lineage rows of one value until the rotation combines them.
    assert TraitValue.objects.filter(profile=winner, name="diagnosis", source="clinic").count() == 2

    output = rotate()
    assert re.search(r"profiles\.sensitive_traits: [1-9]\d* re-encrypted", output), output
    assert "Done" in output

    encryption_keys(new)  # the old key is gone: everything still decrypts
    stored = tokens()
    assert stored and all(crypto.decrypt(token) for token in stored)
    [row] = TraitValue.objects.filter(profile=winner, name="diagnosis", source="clinic")
    assert row.seen_count == 4 and unseal(row.value) == SECRET
    assert row.first_observed_at == T0 and row.observed_at == T0 + timedelta(days=3)
    winner = see(SECRET, at=T0 + timedelta(days=4))  # the recomputed hash is the one the write path makes
    assert TraitValue.objects.get(profile=winner, name="diagnosis", source="clinic").seen_count == 5
    assert unseal(Profile.objects.get(pk=winner.pk).traits["diagnosis"]) == SECRET
    # The merge journal was re-encrypted too: the undo gives the loser a value the new key reads.
    winner, loser = merge_undo(merge=Merge.objects.get(pk=merge.pk))
    assert unseal(loser.traits["diagnosis"]) == SECRET
    assert rotate().count("profiles.sensitive_traits:") == 1  # idempotent: runs again


def test_a_value_no_key_decrypts_stops_the_rotation_with_a_clear_error(
        encryption_keys, django_capture_on_commit_callbacks):
    encryption_keys(Fernet.generate_key().decode())
    with django_capture_on_commit_callbacks(execute=True):
        trait_classify(trait="diagnosis", classification="sensitive")
    see(SECRET, at=T0)
    encryption_keys(Fernet.generate_key().decode())  # the old key was removed before rotating
    with pytest.raises(CommandError) as caught:
        rotate()
    message = str(caught.value)
    assert "profiles.sensitive_traits" in message and "CDP_ENCRYPTION_KEYS" in message
    assert "Put the key that encrypted it back" in message and SECRET not in message


def test_rotation_without_sensitive_traits_reports_nothing_to_do(encryption_keys):
    encryption_keys(Fernet.generate_key().decode())
    assert "profiles.sensitive_traits: 0 re-encrypted" in rotate()
