"""Match keys are derived data that every full unification rewrites whole (about 3.8 million rows for 1,000,000
profiles): drop the index the unique (profile, key) index covers, the varchar_pattern_ops copy of the key index
(lookups are by equality), and the per-row foreign-key check at commit (the ORM's cascade and the erasure delete
the keys of a deleted profile; see MatchKey)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0012_drop_redundant_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='matchkey',
            name='key',
            field=models.CharField(max_length=255),
        ),
        migrations.AlterField(
            model_name='matchkey',
            name='profile',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='match_keys', to='profiles.profile'),
        ),
        migrations.AddIndex(
            model_name='matchkey',
            index=models.Index(fields=['key'], name='match_key_key'),
        ),
    ]
