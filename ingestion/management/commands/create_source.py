from django.core.management.base import BaseCommand, CommandError

from ingestion.models import Source
from ingestion.services import source_create


class Command(BaseCommand):
    help = "Create a source. The write key is printed on the last line, this once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", choices=Source.Kind.values, default=Source.Kind.HTTP)
        parser.add_argument("--slug", default="")
        parser.add_argument("--channel", default="")

    def handle(self, *args, name, kind, slug, channel, **options):
        try:
            source, write_key = source_create(name=name, kind=kind, slug=slug, channel=channel)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Created {source.get_kind_display()} source {source.slug!r}. Write key (shown once):")
        self.stdout.write(write_key)
