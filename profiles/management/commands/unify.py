"""manage.py unify: probabilistic matching of profiles, in full or for what changed since the last run."""

import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cdp.core.models import AuditEntry
from cdp.core.services import audit_record
from profiles.models import MatchRule, Profile
from profiles.services import matching

RUN_OBJECT_TYPE = "profiles.unify"
NOUNS = {"read": "profiles", "encode": "profiles", "score": "pairs", "merge": "merges", "rematch": "profiles",
         "keys": "profiles"}


class _Progress:
    """Progress on stderr: one line rewritten on a terminal (at most twice a second), else a line every 5 s."""

    def __init__(self, stream, verbosity: int):
        self.stream, self.enabled, self.tty = stream, verbosity > 0, stream.isatty()
        self.started = time.monotonic()
        self.last, self.stage = 0.0, ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage == self.stage and now - self.last < (0.5 if self.tty else 5.0) and done != total:
            return
        if stage != self.stage and self.stage and self.tty:
            self.stream.write("\n", ending="")
        self.stage, self.last = stage, now
        percent = f" ({100 * done // total}%)" if total else ""
        line = (f"unify: {stage}: {done:,}/{total:,} {NOUNS.get(stage, '')}{percent}, "
                f"{now - self.started:,.1f} s")
        self.stream.write(("\r" + line + " " * 8) if self.tty else line + "\n", ending="")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled and self.tty and self.stage:
            self.stream.write("\n", ending="")
            self.stream.flush()


class Command(BaseCommand):
    help = ("Match profiles probabilistically (the enabled match rules; the default one is installed if there is "
            "none): --full compares every profile through the blocking keys; without it, the profiles changed "
            "since the last run. Pairs above the auto-merge threshold are merged (journaled), pairs between the "
            "thresholds go to the review queue.")

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Match every profile, not only the changed ones.")
        parser.add_argument("--dry-run", action="store_true",
                            help="With --full: count what would be merged and queued, change nothing.")
        parser.add_argument("--since", help="Incremental: profiles changed since this ISO date/time (default: the "
                                            "last run).")

    def handle(self, *args, full: bool = False, since: str | None = None, dry_run: bool = False, **options):
        if dry_run and not full:
            raise CommandError("--dry-run needs --full.")
        if not matching.enabled_rules():
            if MatchRule.objects.exists():
                raise CommandError("Every match rule is disabled; enable one (admin, or the API) first.")
            matching.match_rules_install()
            self.stderr.write("unify: installed the default match rule 'people'.")
        started = time.monotonic()
        progress = _Progress(self.stderr, options.get("verbosity", 1))
        if dry_run:
            result = matching.unify_full(progress=progress, dry_run=True)
            progress.end()
            self.stdout.write(f"Dry run (nothing changed): {result.profiles:,} profiles, {result.compared:,} pairs "
                              f"compared, {result.auto_merged:,} would be auto-merged, {result.sent_to_review:,} "
                              f"would go to review, {result.skipped_decided:,} left alone (decided before), "
                              f"{time.monotonic() - started:,.1f} s")
            return
        last_start = (AuditEntry.objects.filter(object_type=RUN_OBJECT_TYPE, object_id="started")
                      .order_by("-at").values_list("at", flat=True).first())
        # The next incremental run starts from when this one started (so changes made during it are picked up).
        audit_record(actor=None, action="change", object_type=RUN_OBJECT_TYPE, object_id="started",
                     summary=f"{'Full' if full else 'Incremental'} unification started")
        if full:
            result = matching.unify_full(progress=progress)
        else:
            if since:
                try:
                    moment = datetime.fromisoformat(since)
                except ValueError as exc:
                    raise CommandError(f"--since: not an ISO date/time: {since!r}") from exc
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)
            else:
                moment = last_start
            profiles = Profile.objects.filter(merged_into__isnull=True)
            if moment is not None:
                profiles = profiles.filter(updated_at__gte=moment)
            ids = list(profiles.order_by("pk").values_list("pk", flat=True))
            result = matching.MatchResult()
            for start in range(0, len(ids), 2000):
                result += matching.match_incremental(profile_ids=ids[start:start + 2000])
                progress("incremental", min(start + 2000, len(ids)), len(ids))
        progress.end()
        seconds = time.monotonic() - started
        summary = (f"{'Full' if full else 'Incremental'} unification: {result.profiles:,} profiles, "
                   f"{result.compared:,} pairs compared, {result.auto_merged:,} auto-merged, "
                   f"{result.sent_to_review:,} sent to review, {result.refused:,} refused, "
                   f"{result.skipped_decided:,} left alone (decided before), {seconds:,.1f} s")
        audit_record(actor=None, action="change", object_type=RUN_OBJECT_TYPE, object_id="finished",
                     summary=summary)
        self.stdout.write(summary)
