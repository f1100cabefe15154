from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0010_trait_classification"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="identity",
            index=models.Index(condition=models.Q(("flagged", True)), fields=["type", "raw_value"],
                               name="identity_flagged_raw"),
        ),
    ]
