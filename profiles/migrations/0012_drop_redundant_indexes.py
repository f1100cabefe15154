"""Drop indexes that another index already covers; every processed event, identity and trait value paid for
writing them.

- profiles_event: profile_id alone (event_profile_time leads with it); name alone and the varchar_pattern_ops copies
  of name and channel that db_index adds on PostgreSQL (event_name_time leads with name; no query uses LIKE on
  these columns). channel keeps one plain index (event_channel).
- profiles_identity: profile_id alone ((profile_id, type) leads with it).
- profiles_traitvalue: profile_id alone and (profile_id, name) (the trait_value_unique index leads with both).

The queries on these columns were EXPLAINed on a loaded database without them (docs/benchmarks.md, Ingestion).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0011_identity_flagged_raw'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='traitvalue',
            name='trait_value_profile_name',
        ),
        migrations.AlterField(
            model_name='event',
            name='channel',
            field=models.CharField(blank=True, help_text='web, app, shop, crm, call_center, email, ...', max_length=32),
        ),
        migrations.AlterField(
            model_name='event',
            name='name',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AlterField(
            model_name='event',
            name='profile',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='events', to='profiles.profile'),
        ),
        migrations.AlterField(
            model_name='identity',
            name='profile',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='identities', to='profiles.profile'),
        ),
        migrations.AlterField(
            model_name='traitvalue',
            name='profile',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='trait_values', to='profiles.profile'),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(fields=['channel'], name='event_channel'),
        ),
    ]
