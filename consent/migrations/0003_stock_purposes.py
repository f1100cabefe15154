"""Every installation starts with the stock purposes and the consent-manager categories that map to them under
another name (as consent.services.purposes_install; idempotent, and nothing an administrator changed is
overwritten)."""

from django.db import migrations

STOCK_PURPOSES = [
    ("email_marketing", "Email marketing", "consent"),
    ("personalization", "Personalization", "consent"),
    ("analytics", "Analytics", "legitimate_interest"),
    ("profiling", "Profiling", "consent"),
    ("third_party_sharing", "Sharing with third parties", "consent"),
]
STOCK_CATEGORIES = {"marketing": "email_marketing", "advertising": "third_party_sharing"}


def install(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    ConsentCategory = apps.get_model("consent", "ConsentCategory")
    by_key = {}
    for key, name, basis in STOCK_PURPOSES:
        by_key[key] = Purpose.objects.get_or_create(key=key, defaults={"name": name, "legal_basis": basis})[0]
    for category, key in STOCK_CATEGORIES.items():
        ConsentCategory.objects.get_or_create(category=category, defaults={"purpose": by_key[key]})


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_privacy")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
