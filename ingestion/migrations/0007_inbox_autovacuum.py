from django.db import migrations


def tune(apps, schema_editor):
    """The inbox is a queue: every row is inserted, updated once and read by id order. Vacuum and analyze it after
    1 % of changes (instead of 20 % and 10 %), so that dead index entries and stale statistics do not pile up."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ingestion_inboxmessage SET (autovacuum_vacuum_scale_factor = 0.01, "
                              "autovacuum_analyze_scale_factor = 0.01)")


def untune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ingestion_inboxmessage RESET (autovacuum_vacuum_scale_factor, "
                              "autovacuum_analyze_scale_factor)")


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0006_inbox_partial_indexes")]
    operations = [migrations.RunPython(tune, untune)]
