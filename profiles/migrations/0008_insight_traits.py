from django.db import migrations


def install(apps, schema_editor):
    """The insight traits (filled by the insight models) and the stock traits added since 0004 (service_sentiment),
    through the install services with the historical model."""
    from profiles.services.computed import computed_traits_install, insight_traits_install

    model = apps.get_model("profiles", "ComputedTrait")
    computed_traits_install(model=model)
    insight_traits_install(model=model)


class Migration(migrations.Migration):
    dependencies = [("profiles", "0007_insights")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
