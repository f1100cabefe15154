"""Destination secrets are stored encrypted (cdp.core.crypto, CDP_ENCRYPTION_KEYS): encrypt the ones stored in clear
before. Reversible: going back decrypts them."""

from django.db import migrations


def encrypt_secrets(apps, schema_editor):
    from cdp.core import crypto

    Destination = apps.get_model("activation", "Destination")
    for destination in Destination.objects.only("id", "secrets").order_by("pk"):
        if destination.secrets and not all(map(crypto.is_encrypted, destination.secrets.values())):
            destination.secrets = {name: value if crypto.is_encrypted(value) else crypto.encrypt(value)
                                   for name, value in destination.secrets.items() if value}
            destination.save(update_fields=["secrets"])


def decrypt_secrets(apps, schema_editor):
    from cdp.core import crypto

    Destination = apps.get_model("activation", "Destination")
    for destination in Destination.objects.only("id", "secrets").order_by("pk"):
        if any(map(crypto.is_encrypted, destination.secrets.values())):
            destination.secrets = {name: crypto.decrypt(value) if crypto.is_encrypted(value) else value
                                   for name, value in destination.secrets.items()}
            destination.save(update_fields=["secrets"])


class Migration(migrations.Migration):

    dependencies = [
        ("activation", "0004_offer_nba"),
    ]

    operations = [
        migrations.RunPython(encrypt_secrets, decrypt_secrets, elidable=False),
    ]
