"""manage.py computed_traits: list the computed traits (type, coverage, last run); ``--recompute`` recomputes
them in full now, in this process (``--trait KEY`` for one), with one line per trait as it finishes;
``--install`` creates the stock traits that are missing."""

import time

from django.core.management.base import BaseCommand, CommandError

from profiles import selectors
from profiles.models import ComputedTrait
from profiles.services import computed_traits_install, computed_traits_recompute_all


class Command(BaseCommand):
    help = "List computed traits; --recompute recomputes them in full now (--trait KEY for one)."

    def add_arguments(self, parser):
        parser.add_argument("--recompute", action="store_true", help="Recompute in full now, in this process.")
        parser.add_argument("--trait", action="append", default=[], metavar="KEY",
                            help="Only this trait (repeatable).")
        parser.add_argument("--install", action="store_true", help="Create the stock traits that are missing.")

    def handle(self, *args, recompute: bool, trait: list[str], install: bool, verbosity: int, **options):
        if install:
            created = computed_traits_install()
            self.stdout.write(f"computed_traits: {created} stock trait{'s' if created != 1 else ''} created")
        traits = ComputedTrait.objects.filter(key__in=trait) if trait else ComputedTrait.objects.all()
        missing = sorted(set(trait) - set(traits.values_list("key", flat=True)))
        if missing:
            raise CommandError(f"No computed trait with the key {', '.join(missing)}.")
        if recompute:
            started = time.monotonic()
            # Insight traits are filled by their models (manage.py insights); named with --trait, their model runs.
            chosen = list((traits if trait else traits.filter(enabled=True).exclude(
                aggregation=ComputedTrait.Aggregation.INSIGHT)).order_by("pk"))

            def done(item, rows):
                self.stdout.write(f"computed_traits: {chosen.index(item) + 1}/{len(chosen)} {item.key}: {rows:,} "
                                  f"profiles in {item.last_run_seconds:,.1f} s")

            computed_traits_recompute_all(traits=chosen, done=done)
            self.stdout.write(f"computed_traits: done in {time.monotonic() - started:,.1f} s")
            return
        for item in selectors.computed_traits_with_coverage().filter(pk__in=traits.values("pk")):
            last = item.last_run_at.strftime("%Y-%m-%d %H:%M") if item.last_run_at else "never"
            state = "" if item.enabled else " (off)"
            self.stdout.write(f"{item.key:<28} {item.value_type:<10} {item.coverage:>10,} profiles  last run "
                              f"{last}{state}")
