"""manage.py seed_demo: realistic multichannel demo data for a European retailer (see ingestion/demo)."""

import logging
import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ingestion.demo.loaders import DemoError, demo_counts, demo_load, demo_load_bulk
from profiles.models import Profile


class _Progress:
    """Progress on stderr: one line, rewritten at most twice a second on a terminal; otherwise a plain line at
    most every 5 seconds."""

    def __init__(self, stream, verbosity: int):
        self.stream = stream
        self.enabled = verbosity > 0
        self.tty = stream.isatty()
        self.started = self.stage_started = time.monotonic()
        self.last = 0.0
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        new_stage = stage != self.stage
        if not new_stage and now - self.last < (0.5 if self.tty else 5.0) and done != total:
            return
        if new_stage and self.stage and self.tty:
            self.stream.write("\n", ending="")
        if new_stage:
            self.stage_started = now
        self.stage, self.last = stage, now
        elapsed = now - self.started
        if total:
            in_stage = now - self.stage_started
            rate = done / in_stage if in_stage > 0.5 else 0
            line = f"seed_demo: {stage}: {done:,}/{total:,} people ({100 * done // total}%), {elapsed:,.1f} s"
            if rate and done < total:
                line += f", about {(total - done) / rate:,.0f} s left"
        else:
            line = f"seed_demo: {stage} ... {elapsed:,.1f} s"
        self.stream.write(("\r" + line + " " * 8) if self.tty else line + "\n", ending="")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled and self.tty and self.stage:
            self.stream.write("\n", ending="")
            self.stream.flush()


class Command(BaseCommand):
    help = ("Load realistic multichannel demo data (web sessions, shop orders, CRM contacts, call-center notes, "
            "e-mail engagement) through the real sources and pipeline, or in bulk for benchmarks. The same seed "
            "gives the same data.")

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=2000, help="How many people (default 2,000).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when there are profiles already.")
        parser.add_argument("--bulk", action="store_true",
                            help="Write profiles, identities, events and consent directly (COPY on PostgreSQL): "
                                 "the fast path for benchmarks; bypasses the inbox, the pipeline and signals.")
        parser.add_argument("--jobs", type=int, default=1,
                            help="Processes for --bulk on PostgreSQL (default 1).")
        parser.add_argument("--chunk", type=int, default=1000, help="People per transaction for --bulk.")
        parser.add_argument("--now", default="",
                            help="Generate up to this ISO date-time instead of now (for reproducible data).")

    def handle(self, *args, profiles, seed, if_empty, bulk, jobs, chunk, now, verbosity, **options):
        if profiles < 1 or profiles > 10_000_000:
            raise CommandError("--profiles must be between 1 and 10,000,000.")
        if jobs < 1 or chunk < 1:
            raise CommandError("--jobs and --chunk must be at least 1.")
        anchor = timezone.now()
        if now:
            try:
                anchor = datetime.fromisoformat(now.replace("Z", "+00:00"))
            except ValueError:
                raise CommandError(f"--now must be an ISO 8601 date-time, not {now!r}.") from None
            if timezone.is_naive(anchor):
                anchor = timezone.make_aware(anchor, timezone.utc)
        if if_empty and Profile.objects.exists():
            if verbosity:
                self.stdout.write("seed_demo: profiles exist already; nothing to do (--if-empty).")
            return
        style = self.stderr.style_func
        self.stderr.style_func = None  # progress is no error: not in red
        progress = _Progress(self.stderr, verbosity)
        # Eager tasks log every run of the pipeline at INFO: too much for a seed; -v 2 shows them.
        task_log = logging.getLogger("celery.app.trace")
        task_log_level = task_log.level
        if verbosity < 2:
            task_log.setLevel(logging.WARNING)
        try:
            if bulk:
                summary, counts = demo_load_bulk(profiles=profiles, seed=seed, now=anchor, progress=progress,
                                                 chunk=chunk, jobs=jobs)
            else:
                summary = demo_load(profiles=profiles, seed=seed, now=anchor, progress=progress)
        except DemoError as error:
            raise CommandError(str(error)) from None
        finally:
            progress.end()
            task_log.setLevel(task_log_level)
            self.stderr.style_func = style
        totals = demo_counts()
        if bulk:
            self.stdout.write(
                f"Bulk-loaded {counts.profiles:,} profiles, {counts.identities:,} identities, {counts.events:,} "
                f"events and {counts.consent_records:,} consent records in {summary.seconds:,.1f} s "
                f"({counts.events / max(summary.seconds, 1e-9):,.0f} events/s).")
        else:
            self.stdout.write(f"Sent {summary.records:,} records of {summary.people:,} people in "
                              f"{summary.seconds:,.1f} s:")
            for slug in summary.stored:
                self.stdout.write(f"  {slug:<15} {summary.stored[slug]:>9,} stored  "
                                  f"{summary.duplicates.get(slug, 0):>9,} already there  "
                                  f"{summary.rejected.get(slug, 0):>6,} rejected")
        self.stdout.write(
            f"Now: {totals['profiles']:,} profiles, {totals['identities']:,} identities, {totals['events']:,} "
            f"events, {totals['consent_records']:,} consent records, {totals['sources']} sources; inbox "
            f"{totals['inbox_processed']:,} processed, {totals['inbox_rejected']:,} rejected, "
            f"{totals['inbox_pending']:,} pending.")
