"""manage.py import_file --source SLUG PATH [--mapping FILE]

Imports a CSV or JSON Lines file into a file source, here in the shell (not through the broker): the same
service as the UI and the API (the file is kept under MEDIA_ROOT/imports/, rows are stored through the inbox in
batches, bad rows go to the error report). Progress goes to stderr; the last line on stdout is the summary.

Without --mapping, a mapping is inferred from the column names (email -> traits.email, user_id/customer_id ->
userId, id -> externalId, ...) and printed, so it can be saved, edited and passed back with --mapping.
"""

import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingestion import readers
from ingestion.models import Import, Source
from ingestion.services import imports as services


class Command(BaseCommand):
    help = "Import a CSV or JSON Lines file into a file source; progress on stderr, a summary line at the end."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The CSV or JSON Lines file")
        parser.add_argument("--source", required=True, help="The slug of a file source")
        parser.add_argument("--mapping", help="A JSON file with the mapping spec (see docs); inferred without it")
        parser.add_argument("--format", choices=readers.FORMATS, default="", help="Detected from the name")
        parser.add_argument("--encoding", choices=list(readers.ENCODINGS), default="",
                            help="UTF-8 is detected; a file that is not UTF-8 needs this")
        parser.add_argument("--delimiter", default="", help="Detected; one of , ; | or 'tab'")
        parser.add_argument("--quiet", action="store_true", help="No progress on stderr")

    def handle(self, *args, path, source, mapping, format, encoding, delimiter, quiet, **options):
        file_path = Path(path)
        if not file_path.is_file():
            raise CommandError(f"No file at {path}.")
        found = Source.objects.filter(slug=source).first()
        if found is None:
            raise CommandError(f"No source with the slug {source!r}. Create one: manage.py create_source --kind file "
                               "NAME")
        delimiter = "\t" if delimiter.lower() in ("tab", "\\t") else delimiter
        spec = None
        if mapping:
            try:
                spec = json.loads(Path(mapping).read_text(encoding="utf-8"))
            except OSError as error:
                raise CommandError(f"Cannot read the mapping file: {error}") from None
            except ValueError as error:
                raise CommandError(f"The mapping file is not valid JSON: {error}") from None
        try:
            with file_path.open("rb") as handle:
                imp = services.import_create(source=found, upload=handle, filename=file_path.name, format=format,
                                             encoding=encoding, delimiter=delimiter)
        except services.ImportProblem as problem:
            raise CommandError(problem.message) from None
        if imp.blocking_problems:
            messages = "\n".join(f"  - {problem['message']}" for problem in imp.blocking_problems)
            services.import_delete(imp=imp)
            raise CommandError(f"{file_path.name} cannot be imported:\n{messages}")
        if spec is None:
            spec = imp.mapping
            self.stderr.write("No --mapping given; inferred from the column names (save it, edit it, and pass it "
                              "with --mapping):")
            self.stderr.write(json.dumps(spec, indent=2))
        try:
            imp = services.import_configure(imp=imp, mapping=spec)
        except services.ImportProblem as problem:
            details = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in problem.fields.items())
            services.import_delete(imp=imp)
            raise CommandError(f"{problem.message} {details}".strip()) from None
        Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
        started = time.monotonic()
        progress = None if quiet else _Progress(self.stderr, imp.size_bytes)
        imp = services.import_run(import_id=imp.pk, progress=progress)
        if progress:
            progress.done()
        elapsed = time.monotonic() - started
        report = f" Error report: {Path(imp.error_report.path)}" if imp.error_report else ""
        summary = (f"{imp.get_status_display()}: {file_path.name} into {found.slug} (import {imp.pk}): "
                   f"{imp.rows_read:,} rows read, {imp.rows_stored:,} stored, {imp.rows_duplicate:,} already there, "
                   f"{imp.rows_failed:,} failed in {elapsed:.1f}s ({imp.rows_read / elapsed if elapsed else 0:,.0f} "
                   f"rows/s).{report}")
        if imp.status == Import.Status.FAILED:
            raise CommandError(f"{summary} {imp.error}")
        self.stdout.write(summary)


class _Progress:
    """One line on stderr, rewritten at most every half second."""

    def __init__(self, stream, size: int):
        self.stream, self.size, self.last = stream, size, 0.0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, imp, counters) -> None:
        now = time.monotonic()
        if now - self.last < (0.5 if self.tty else 5.0):
            return
        self.last = now
        percent = 100 * counters.bytes_read / self.size if self.size else 0
        elapsed = now - self.started
        eta = elapsed * (self.size - counters.bytes_read) / counters.bytes_read if counters.bytes_read else 0
        line = (f"{percent:5.1f}%  {counters.read:,} rows read, {counters.stored:,} stored, {counters.failed:,} "
                f"failed  {counters.read / elapsed if elapsed else 0:,.0f} rows/s  ETA {eta:,.0f}s")
        self.stream.write(("\r" + line) if self.tty else line, ending="" if self.tty else "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("")
