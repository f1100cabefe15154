"""File imports: upload, inspect and preview, map, run (streamed, in batches through the inbox), error reports.

The flow: ``import_create`` keeps the uploaded file under MEDIA_ROOT/imports/<source>/ and inspects it (format,
encoding, delimiter, columns, file-level problems); ``import_configure`` sets the mapping (and the encoding or
delimiter the user chose); ``import_start`` enqueues ``ingestion.tasks.import_run``; ``import_run`` streams the
file row by row, maps each row (ingestion.mapping) and stores the messages through ``inbox_store`` in batches of
``BATCH_SIZE``, updating the progress counters after each batch. A bad row goes to the per-row error report
(row, column, message, raw row) and the others are kept. Memory stays flat whatever the file's size.

Each row's messageId is ``import-<import id>-<row>`` (unless the mapping maps one), so running an import again,
after a crash or a retry, stores nothing twice.

A column mapped to ``consent.<purpose>`` carries the row's consent decision (ingestion.mapping); the pipeline records
it as it does the tracking API's ``context.consent``, with the import, the file and the row as proof. A consent
value that cannot be read is a line in the error report while the row's other fields are stored (``rows_partial``).
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from cdp.core.services import audit_record
from consent.models import Purpose
from ingestion import readers
from ingestion.mapping import (
    CONSENT_TIME,
    IDENTITY_TARGETS,
    MISSING,
    MappingError,
    consent_purpose,
    get_path,
    mapping_apply,
    mapping_validate,
    to_consent,
)
from ingestion.models import Import, Source
from ingestion.services.inbox import inbox_store

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
PREVIEW_ROWS = 10
REPORT_COLUMNS = ["row", "column", "message", "raw"]
REPORT_PREVIEW_ROWS = 50


class ImportProblem(ValueError):
    """A bad request about an import; ``fields`` names what is wrong ({"mapping.fields.2.to": ["..."]})."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}



# --- storage -----------------------------------------------------------------------------------------------------

def _open(name: str):
    return default_storage.open(name, "rb")


def _delete(name: str) -> None:
    if name and default_storage.exists(name):
        default_storage.delete(name)


def _safe_name(filename: str) -> str:
    stem = get_valid_filename(Path(filename or "upload").name)[-120:] or "upload"
    return f"{uuid.uuid4().hex[:12]}-{stem}"


# --- create, inspect, preview ------------------------------------------------------------------------------------

def _apply_inspection(imp: Import, inspection: readers.Inspection) -> None:
    imp.format = inspection.format
    imp.encoding = inspection.encoding
    imp.delimiter = inspection.delimiter
    imp.columns = inspection.columns
    imp.problems = [problem.as_dict() for problem in inspection.problems]


def _inspect(imp: Import, *, encoding: str = "", delimiter: str = "", format: str = "") -> readers.Inspection:
    with _open(imp.file.name) as raw:
        return readers.inspect(raw, imp.original_name, encoding=encoding, delimiter=delimiter, format=format)


@transaction.atomic
def import_create(*, source: Source, upload, filename: str = "", user=None, encoding: str = "",
                  delimiter: str = "", format: str = "") -> Import:
    """Keep an uploaded file (a Django UploadedFile or any binary file object) and inspect it. The import is
    created even when the file has problems: they are listed on it, and the user can choose another encoding or
    delete it."""
    if source.kind != Source.Kind.FILE:
        raise ImportProblem(f"The source {source.slug!r} is a {source.get_kind_display()} source; files are "
                           "imported into file sources.", {"source": ["not a file source"]})
    if format and format not in readers.FORMATS:
        raise ImportProblem(f"Unknown format {format!r}; csv or jsonl.", {"format": ["csv or jsonl"]})
    filename = filename or getattr(upload, "name", "") or "upload"
    imp = Import(source=source, kind=Import.Kind.FILE, original_name=Path(filename).name[:255], created_by=user)
    imp.file.save(_safe_name(filename), upload if isinstance(upload, File) else File(upload), save=False)
    imp.size_bytes = imp.file.size
    try:
        _apply_inspection(imp, _inspect(imp, encoding=encoding, delimiter=delimiter, format=format))
        if imp.columns and not imp.blocking_problems:
            imp.mapping = mapping_suggest(imp.columns, [row.record for row in _sample_rows(imp, PREVIEW_ROWS)],
                                          purposes=purpose_keys())
        imp.save()
    except BaseException:
        _delete(imp.file.name)
        raise
    audit_record(actor=user, action="import.create", object_type="ingestion.Import", object_id=imp.pk,
                 summary=f"Uploaded {imp.original_name} ({imp.size_bytes} bytes) to {source.slug}")
    return imp


def import_reinspect(*, imp: Import, encoding: str = "", delimiter: str = "", format: str = "") -> Import:
    """Inspect the file again with the encoding, delimiter or format the user chose."""
    _require_editable(imp)
    if encoding and encoding not in readers.ENCODINGS:
        raise ImportProblem(f"Unknown encoding {encoding!r}.", {"encoding": [f"one of {', '.join(readers.ENCODINGS)}"]})
    if delimiter and delimiter not in readers.DELIMITERS:
        raise ImportProblem(f"Unknown delimiter {delimiter!r}.", {"delimiter": ["comma, semicolon, tab or pipe"]})
    columns_before = list(imp.columns)
    _apply_inspection(imp, _inspect(imp, encoding=encoding, delimiter=delimiter, format=format or imp.format))
    if imp.columns != columns_before or not imp.mapping:
        imp.mapping = mapping_suggest(imp.columns, [row.record for row in _sample_rows(imp, PREVIEW_ROWS)],
                                      purposes=purpose_keys()) if imp.columns and not imp.blocking_problems else {}
        imp.status = Import.Status.UPLOADED
    imp.save()
    return imp


def _sample_rows(imp: Import, count: int) -> Iterator[readers.Row]:
    if imp.blocking_problems or not imp.file:
        return
    with _open(imp.file.name) as raw:
        rows = readers.read_rows(raw, format=imp.format, encoding=imp.encoding, delimiter=imp.delimiter)
        for index, row in enumerate(rows):
            if index >= count:
                break
            if row.record is not None:
                yield row


@dataclass
class PreviewRow:
    line: int
    values: list
    error: str = ""
    column: str = ""
    message: dict | None = None
    mapping_error: str = ""
    warnings: list[str] = field(default_factory=list)  # values left out of the message (a consent decision)


def row_proof(imp: Import, line: int) -> dict:
    """The proof a row's consent decisions carry: the import, the file (or a pull's table) and the row."""
    where = "file" if imp.kind == Import.Kind.FILE else "table"
    return {"import": imp.pk, where: imp.original_name, "row": line}


def problem_text(error: MappingError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


@dataclass
class Preview:
    columns: list[str]
    rows: list[PreviewRow] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)


def import_preview(imp: Import, *, rows: int = PREVIEW_ROWS, mapping: dict | None = None) -> Preview:
    """The first rows, parsed (with their errors), and, when a mapping is given or set, the message each row
    becomes. A read: it changes nothing."""
    preview = Preview(columns=list(imp.columns), problems=list(imp.problems))
    if imp.blocking_problems or not imp.file:
        return preview
    spec = mapping if mapping is not None else imp.mapping
    if spec and mapping_errors(spec):
        spec = None
    with _open(imp.file.name) as raw:
        for index, row in enumerate(readers.read_rows(raw, format=imp.format, encoding=imp.encoding,
                                                      delimiter=imp.delimiter)):
            if index >= rows:
                break
            if row.record is None:
                preview.rows.append(PreviewRow(row.line, [row.raw], error=row.error, column=row.column))
                continue
            values = [_display(row.record, column) for column in preview.columns]
            item = PreviewRow(row.line, values)
            if spec:
                problems: list[MappingError] = []
                try:
                    item.message = mapping_apply(spec, row.record, source_slug=imp.source.slug,
                                                 collection=imp.original_name, proof=row_proof(imp, row.line),
                                                 problems=problems)
                except MappingError as error:
                    item.mapping_error = problem_text(error)
                item.warnings = [problem_text(problem) for problem in problems]
            preview.rows.append(item)
    return preview


def _value(record: dict, column: str):
    value = get_path(record, column)
    return None if value is MISSING else value


def _display(record: dict, column: str) -> str:
    value = _value(record, column)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- mapping -----------------------------------------------------------------------------------------------------

_TARGET_BY_NAME = {
    "userid": "userId", "user_id": "userId", "customerid": "userId", "customer_id": "userId",
    "customer_number": "userId", "customer_no": "userId", "customernumber": "userId", "member_id": "userId",
    "anonymousid": "anonymousId", "anonymous_id": "anonymousId", "anon_id": "anonymousId",
    "device_id": "anonymousId", "cookie_id": "anonymousId",
    "external_id": "externalId", "externalid": "externalId", "record_id": "externalId", "id": "externalId",
    "crm_id": "externalId", "contact_id": "externalId",
    "message_id": "messageId", "messageid": "messageId",
    "timestamp": "timestamp", "event_time": "timestamp", "occurred_at": "timestamp", "event_timestamp": "timestamp",
    "event": "event", "event_name": "event", "event_type": "event",
    "email": "traits.email", "e_mail": "traits.email", "email_address": "traits.email", "mail": "traits.email",
    "phone": "traits.phone", "phone_number": "traits.phone", "mobile": "traits.phone", "telephone": "traits.phone",
    "first_name": "traits.first_name", "firstname": "traits.first_name", "given_name": "traits.first_name",
    "last_name": "traits.last_name", "lastname": "traits.last_name", "surname": "traits.last_name",
    "family_name": "traits.last_name",
}
_TYPE_BY_TARGET = {"timestamp": "datetime"}
_BOOLEAN_WORDS = {"true", "false", "yes", "no"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_INTEGER = re.compile(r"^-?(0|[1-9]\d{0,15})$")
_FLOAT = re.compile(r"^-?\d+\.\d+$")


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _infer_type(values: list) -> str | None:
    values = [v for v in values if v not in (None, "")]
    if not values:
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "integer" if all(isinstance(v, int) for v in values) else "float"
    if not all(isinstance(v, str) for v in values):
        return None  # objects or lists: kept as they are
    if all(v.strip().lower() in _BOOLEAN_WORDS for v in values):
        return "boolean"
    if all(_INTEGER.match(v.strip()) for v in values):
        return "integer"
    if all(_FLOAT.match(v.strip()) for v in values):
        return "float"
    if all(_ISO_DATETIME.match(v.strip()) for v in values):
        return "datetime"
    if all(_ISO_DATE.match(v.strip()) for v in values):
        return "date"
    return "string"


def consent_purposes() -> list[tuple[str, str]]:
    """(key, name) of every consent purpose, the targets ``consent.<key>`` a mapping may name."""
    return list(Purpose.objects.order_by("name", "key").values_list("key", "name"))


def purpose_keys() -> set[str]:
    return {key for key, _ in consent_purposes()}


_CONSENT_TIME_NAMES = {"consent_time", "consent_timestamp", "consent_at", "consented_at", "consent_date",
                       "opt_in_date", "opt_in_at", "optin_date"}


def _consent_target(column: str, values: list, purposes: set[str]) -> str | None:
    """consent.<purpose> for a column named like a purpose (``newsletter`` no; ``email_marketing``,
    ``consent_email_marketing``, ``email_marketing_consent`` yes) whose sample values are all decisions."""
    name = _normal(column)
    for key in purposes:
        if name in (key, f"consent_{key}", f"{key}_consent", f"{key}_opt_in", f"opt_in_{key}"):
            try:
                [to_consent(value) for value in values if value is not None]
            except ValueError:
                return None
            return f"consent.{key}"
    return None


def target_for(column: str) -> str:
    """The target a column name suggests: email -> traits.email, user_id/customer_id -> userId, ..., else
    traits.<column in snake case>."""
    name = _normal(column)
    if name in _TARGET_BY_NAME:
        return _TARGET_BY_NAME[name]
    last = _normal(column.rsplit(".", 1)[-1])
    if last in _TARGET_BY_NAME and _TARGET_BY_NAME[last].startswith("traits."):
        return _TARGET_BY_NAME[last]
    return f"traits.{name or 'field'}"


def mapping_suggest(columns: list[str], sample: list[dict | None], *, purposes: Collection[str] = ()) -> dict:
    """A mapping inferred from column names and sample values: an identify of every column, an event column
    making it a track. Identifier columns stay text (so "007" keeps its zeros). With ``purposes`` (the purpose keys,
    ``purpose_keys()``), a column named like one whose values are decisions becomes consent.<purpose>."""
    sample = [record for record in sample if record]
    fields = []
    used: set[str] = set()
    consent_columns = {column: target for column in columns
                       if (target := _consent_target(column, [_value(r, column) for r in sample], purposes))}
    for column in columns:
        target = consent_columns.get(column)
        if target:
            used.add(target)
            fields.append({"from": column, "to": target})
            continue
        if consent_columns and _normal(column) in _CONSENT_TIME_NAMES and CONSENT_TIME not in used:
            used.add(CONSENT_TIME)
            fields.append({"from": column, "to": CONSENT_TIME, "type": "datetime"})
            continue
        target = target_for(column)
        if target in used and target != "externalId":
            target = f"traits.{_normal(column) or 'field'}"
        if target in used and target != "externalId":
            continue
        used.add(target)
        if target in IDENTITY_TARGETS or target in ("messageId", "event") or target.endswith(("email", "phone")):
            type_name = "string"
        else:
            type_name = _TYPE_BY_TARGET.get(target) or _infer_type([_value(r, column) for r in sample])
        item = {"from": column, "to": target}
        if type_name:
            item["type"] = type_name
        fields.append(item)
    spec = {"type": "track" if "event" in used else "identify", "event": None, "event_from": None, "fields": fields}
    return spec


def mapping_errors(spec) -> dict[str, list[str]]:
    """The mapping's problems as {"mapping.<path>": [message]} (empty when it is valid). A field mapped to
    consent.<purpose> must name a purpose that exists."""
    fields = spec.get("fields") if isinstance(spec, dict) else None
    consent = isinstance(fields, list) and any(isinstance(item, dict) and consent_purpose(item.get("to"))
                                               for item in fields)
    try:
        mapping_validate(spec, purposes=purpose_keys() if consent else None)
    except MappingError as error:
        return {f"mapping.{error.field}" if error.field else "mapping": [error.message]}
    return {}


def _require_editable(imp: Import) -> None:
    if imp.status not in (Import.Status.UPLOADED, Import.Status.READY):
        raise ImportProblem(f"The import is {imp.get_status_display().lower()}; it can no longer be changed.",
                           {"status": [imp.status]})


@transaction.atomic
def import_configure(*, imp: Import, mapping: dict, encoding: str = "", delimiter: str = "", user=None) -> Import:
    """Set the mapping (and the encoding or delimiter, when the user chose one). Raises ImportProblem naming the
    wrong field; the import is then unchanged."""
    imp = Import.objects.select_for_update().get(pk=imp.pk)
    _require_editable(imp)
    if (encoding and encoding != imp.encoding) or (delimiter and delimiter != imp.delimiter):
        import_reinspect(imp=imp, encoding=encoding or imp.encoding, delimiter=delimiter or imp.delimiter)
    if imp.blocking_problems:
        messages = [problem["message"] for problem in imp.blocking_problems]
        raise ImportProblem(messages[0], {"file": messages})
    errors = mapping_errors(mapping)
    if errors:
        raise ImportProblem("The mapping is not valid.", errors)
    unknown = [item["from"] for item in mapping["fields"]
               if imp.kind == Import.Kind.FILE and imp.format == Import.Format.CSV and item["from"] not in imp.columns]
    if unknown:
        index = next(i for i, item in enumerate(mapping["fields"]) if item["from"] == unknown[0])
        raise ImportProblem("The mapping reads a column the file does not have.",
                           {f"mapping.fields.{index}.from": [f"no column {unknown[0]!r} in the file"]})
    imp.mapping = mapping
    imp.status = Import.Status.READY
    imp.save()
    audit_record(actor=user, action="import.configure", object_type="ingestion.Import", object_id=imp.pk,
                 summary=f"Mapped {len(mapping['fields'])} columns of {imp.original_name}")
    return imp


# --- running -----------------------------------------------------------------------------------------------------

def import_start(*, imp: Import, user=None) -> Import:
    """Queue the import (a Celery task on the ingestion queue). It must be mapped and have no file problem."""
    with transaction.atomic():
        imp = Import.objects.select_for_update().get(pk=imp.pk)
        if imp.status != Import.Status.READY:
            raise ImportProblem(
                "Map the columns first." if imp.status == Import.Status.UPLOADED
                else f"The import is {imp.get_status_display().lower()}; it cannot be started again.",
                {"status": [imp.status]})
        if imp.blocking_problems or not imp.file:
            raise ImportProblem("The file cannot be imported: " + "; ".join(p["message"] for p in imp.blocking_problems)
                               if imp.file else "The file of this import was deleted.", {"file": ["not importable"]})
        imp.status = Import.Status.QUEUED
        imp.save(update_fields=["status", "updated_at"])
        audit_record(actor=user, action="import.start", object_type="ingestion.Import", object_id=imp.pk,
                     summary=f"Started the import of {imp.original_name}")

        def enqueue():
            from ingestion.tasks import import_run as import_run_task

            import_run_task.delay(import_id=imp.pk)

        transaction.on_commit(enqueue)
    return imp


def import_cancel(*, imp: Import, user=None) -> Import:
    """Stop a queued or running import after its current batch; what was stored stays stored."""
    updated = Import.objects.filter(pk=imp.pk, status__in=Import.ACTIVE).update(
        status=Import.Status.CANCELLED, finished_at=timezone.now())
    if not updated:
        raise ImportProblem("Only a queued or running import can be cancelled.", {"status": [imp.status]})
    audit_record(actor=user, action="import.cancel", object_type="ingestion.Import", object_id=imp.pk,
                 summary=f"Cancelled the import of {imp.original_name}")
    imp.refresh_from_db()
    return imp


class ErrorReport:
    """The per-row error report: a CSV file (row, column, message, raw) written as rows fail, under
    MEDIA_ROOT/imports/<source>/."""

    def __init__(self, imp: Import, prefix: str):
        self.imp = imp
        self.name = f"imports/{imp.source.slug}/{prefix}-{imp.pk}-errors.csv"
        self.count = 0
        self._handle = None
        self._writer = None

    def add(self, row: int | str, column: str, message: str, raw: str) -> None:
        if self._writer is None:
            path = Path(default_storage.path(self.name))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("w", newline="", encoding="utf-8", errors="backslashreplace")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(REPORT_COLUMNS)
        self._writer.writerow([row, column, message, readers.printable(raw)])
        self.count += 1

    def close(self) -> str:
        """Close it; returns the storage name, or "" when no row failed."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        return self.name if self.count else ""

    def discard(self) -> None:
        self.close()
        _delete(self.name)


@dataclass
class RunCounters:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    partial: int = 0
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)


Progress = Callable[[Import, RunCounters], None]


def _claim(import_id: int, kind: str) -> Import | None:
    """Move a queued import to running (a retried task finds it running and starts over, which is safe)."""
    with transaction.atomic():
        imp = Import.objects.select_for_update().select_related("source").filter(pk=import_id, kind=kind).first()
        if imp is None or imp.status not in Import.ACTIVE:
            return None
        imp.status = Import.Status.RUNNING
        imp.started_at = timezone.now()
        imp.finished_at = None
        imp.error = ""
        imp.rows_read = imp.rows_stored = imp.rows_duplicate = imp.rows_failed = imp.rows_partial = 0
        imp.bytes_read = 0
        imp.save()
        return imp


def _save_progress(imp: Import, counters: RunCounters, extra: dict | None = None) -> bool:
    """Write the counters (and ``extra`` fields); False when the import was cancelled meanwhile."""
    values = {"rows_read": counters.read, "rows_stored": counters.stored, "rows_duplicate": counters.duplicates,
              "rows_failed": counters.failed, "rows_partial": counters.partial, "bytes_read": counters.bytes_read,
              "updated_at": timezone.now(),
              **(extra or {})}
    for name, value in values.items():
        setattr(imp, name, value)
    return bool(Import.objects.filter(pk=imp.pk, status=Import.Status.RUNNING).update(**values))


def _finish(imp: Import, counters: RunCounters, report: ErrorReport, *, status: str, error: str = "") -> Import:
    report_name = report.close()
    values = {"rows_read": counters.read, "rows_stored": counters.stored, "rows_duplicate": counters.duplicates,
              "rows_failed": counters.failed, "rows_partial": counters.partial, "bytes_read": counters.bytes_read,
              "error_report": report_name,
              "finished_at": timezone.now(), "error": error, "status": status}
    if imp.kind == Import.Kind.FILE and status == Import.Status.DONE:
        values["bytes_read"] = imp.size_bytes
    # A cancellation that came in while the last batch ran wins.
    if Import.objects.filter(pk=imp.pk, status=Import.Status.CANCELLED).exists():
        values["status"] = Import.Status.CANCELLED
    Import.objects.filter(pk=imp.pk).update(**values)
    imp.refresh_from_db()
    return imp


def rows_to_inbox(*, imp: Import, rows: Iterable[readers.Row], spec: dict, collection: str,
                  message_id: Callable[[readers.Row], str], raw_text: Callable[[readers.Row], str],
                  report: ErrorReport, counters: RunCounters, position: Callable[[], int] | None = None,
                  progress: Progress | None = None, checkpoint: Callable[[], dict] | None = None) -> bool:
    """Map rows and store them through the inbox in batches of BATCH_SIZE, a bad row to the error report (and a
    value left out of a stored row, such as an unreadable consent decision, too: the row counts as partial).
    After each batch the counters are saved, with the fields ``checkpoint`` returns (a database pull saves its
    cursor there: every row yielded so far is then stored or reported). Returns False when the import was
    cancelled on the way."""
    batch: list[dict] = []
    slug = imp.source.slug

    def flush() -> bool:
        if batch:
            if not Import.objects.filter(pk=imp.pk, status=Import.Status.RUNNING).exists():
                return False  # cancelled (or deleted) meanwhile: this batch is not stored
            result = inbox_store(source=imp.source, messages=batch)
            counters.stored += result.stored
            counters.duplicates += result.duplicates
            counters.failed += result.rejected
            batch.clear()
        if position:
            counters.bytes_read = position()
        alive = _save_progress(imp, counters, checkpoint() if checkpoint else None)
        if progress:
            progress(imp, counters)
        return alive

    since_flush = 0
    for row in rows:
        counters.read += 1
        since_flush += 1
        if row.record is None:
            report.add(row.line, row.column, row.error, row.raw)
            counters.failed += 1
        else:
            problems: list[MappingError] = []
            try:
                message = mapping_apply(spec, row.record, source_slug=slug, collection=collection,
                                        proof=row_proof(imp, row.line), problems=problems)
            except MappingError as problem:
                for left_out in problems:
                    report.add(row.line, left_out.field, left_out.message, raw_text(row))
                report.add(row.line, problem.field, problem.message, raw_text(row))
                counters.failed += 1
            else:
                if problems:
                    for left_out in problems:
                        report.add(row.line, left_out.field, left_out.message, raw_text(row))
                    counters.partial += 1
                if not message.get("messageId"):
                    message["messageId"] = message_id(row)
                batch.append(message)
        # Store a full batch; write the progress at least every BATCH_SIZE rows, even when they all fail.
        if len(batch) >= BATCH_SIZE or since_flush >= BATCH_SIZE:
            since_flush = 0
            if not flush():
                return False
    return flush()


def import_run(*, import_id: int, progress: Progress | None = None) -> Import | None:
    """Run a queued file import to its end. Idempotent: a second run stores nothing twice (messageIds are
    ``import-<id>-<row>``) and rewrites the error report. Returns None when there was nothing to run."""
    imp = _claim(import_id, Import.Kind.FILE)
    if imp is None:
        return None
    counters = RunCounters()
    report = ErrorReport(imp, "import")
    fmt, delimiter = imp.format, imp.delimiter or ","
    try:
        with _open(imp.file.name) as raw:
            def position() -> int:
                try:
                    return raw.tell()
                except (OSError, ValueError):
                    return counters.bytes_read

            rows = readers.read_rows(raw, format=fmt, encoding=imp.encoding, delimiter=delimiter,
                                     columns=imp.columns if fmt == Import.Format.CSV else None)
            finished = rows_to_inbox(
                imp=imp, rows=rows, spec=imp.mapping, collection=imp.original_name,
                message_id=lambda row: f"import-{imp.pk}-{row.line}",
                raw_text=lambda row: readers.raw_of(row, format=fmt, delimiter=delimiter),
                report=report, counters=counters, position=position, progress=progress)
    except readers.FileProblem as problem:
        return _finish(imp, counters, report, status=Import.Status.FAILED, error=str(problem))
    except Exception as error:
        logger.exception("Import %s failed", imp.pk)
        _finish(imp, counters, report, status=Import.Status.FAILED,
                error=f"The import stopped after {counters.read} rows ({type(error).__name__}). The rows before "
                      "it are stored; running it again stores nothing twice.")
        raise
    return _finish(imp, counters, report, status=Import.Status.DONE if finished else Import.Status.CANCELLED)


# --- error report, deletion ------------------------------------------------------------------------------------------

def error_report_rows(imp: Import, *, limit: int = REPORT_PREVIEW_ROWS) -> list[dict]:
    """The first rows of the error report (a read)."""
    if not imp.error_report:
        return []
    out = []
    with default_storage.open(imp.error_report.name, "rb") as raw:
        text = readers.open_text(raw, "utf-8")
        try:
            for index, row in enumerate(csv.DictReader(text)):
                if index >= limit:
                    break
                out.append(row)
        finally:
            readers.release_text(text)
    return out


@transaction.atomic
def import_delete(*, imp: Import, user=None) -> None:
    """Delete an import with its file and error report (the messages it stored stay in the inbox). A running
    import is cancelled first."""
    if imp.is_active:
        Import.objects.filter(pk=imp.pk).update(status=Import.Status.CANCELLED)
    names = [imp.file.name, imp.error_report.name]
    audit_record(actor=user, action="import.delete", object_type="ingestion.Import", object_id=imp.pk,
                 summary=f"Deleted the import {imp.original_name or imp.pk} and its files")
    imp.delete()
    transaction.on_commit(lambda: [_delete(name) for name in names])


# --- personal data (registered in the cdp.core registry as "ingestion.imports") -------------------------------------

IDENTITY_FIELDS = {"userId": "user_id", "anonymousId": "anonymous_id", "externalId": "record",
                   "traits.email": "email", "traits.phone": "phone"}
_DIGITS = re.compile(r"\D+")
PHONE_MATCH_DIGITS = 9


def _phone_key(value: str) -> str:
    digits = _DIGITS.sub("", value)
    return digits[-PHONE_MATCH_DIGITS:] if len(digits) >= PHONE_MATCH_DIGITS else ""


def _profile_keys(profile) -> dict[str, set[str]]:
    """The profile's identifiers, as an import's identity columns would hold them."""
    keys: dict[str, set[str]] = {kind: set() for kind in IDENTITY_FIELDS.values()}
    for identity_type, value in profile.identities.values_list("type", "value"):
        if identity_type == "email":
            keys["email"].add(value.strip().lower())
        elif identity_type == "phone":
            keys["phone"].add(_phone_key(value))
        elif identity_type in keys:
            keys[identity_type].add(value)
    email = (profile.traits or {}).get("email")
    if isinstance(email, str) and email.strip():
        keys["email"].add(email.strip().lower())
    keys["phone"].discard("")
    return keys


def _identity_columns(imp: Import) -> list[tuple[str, str]]:
    """(record field, identity kind) of the import's mapping (or of the suggested one, if it was never mapped)."""
    spec = imp.mapping or (mapping_suggest(imp.columns, []) if imp.columns else {})
    return [(item["from"], IDENTITY_FIELDS[item["to"]]) for item in spec.get("fields", [])
            if item.get("to") in IDENTITY_FIELDS]


def _matches(record: dict, columns: list[tuple[str, str]], keys: dict[str, set[str]], slug: str) -> bool:
    for column, kind in columns:
        value = _value(record, column)
        if value is None or value == "" or isinstance(value, dict | list):
            continue
        text = str(value).strip()
        if kind == "email":
            text = text.lower()
        elif kind == "phone":
            text = _phone_key(text)
        elif kind == "record":
            text = f"{slug}:{text}"
        if text and text in keys[kind]:
            return True
    return False


def _person_rows(imp: Import, keys: dict[str, set[str]]) -> Iterator[tuple[str, int | str, dict]]:
    """("file" or "error_report", row, record) of every row of the import's files that names the person."""
    columns = _identity_columns(imp)
    if not columns:
        return
    slug = imp.source.slug
    if imp.file and not imp.blocking_problems and default_storage.exists(imp.file.name):
        with _open(imp.file.name) as raw:
            for row in readers.read_rows(raw, format=imp.format, encoding=imp.encoding, delimiter=imp.delimiter):
                if row.record is not None and _matches(row.record, columns, keys, slug):
                    yield "file", row.line, row.record
    if imp.error_report and default_storage.exists(imp.error_report.name):
        for report_row in _report_records(imp):
            number, record = report_row
            if _matches(record, columns, keys, slug):
                yield "error_report", number, record


def _report_records(imp: Import) -> Iterator[tuple[str, dict]]:
    """The raw rows of the error report, read back as records (as far as they can be)."""
    with default_storage.open(imp.error_report.name, "rb") as raw:
        text = readers.open_text(raw, "utf-8")
        try:
            for entry in csv.DictReader(text):
                raw_row = entry.get("raw") or ""
                record = None
                if imp.kind == Import.Kind.DATABASE or imp.format == Import.Format.JSONL:
                    try:
                        record = json.loads(raw_row)
                    except ValueError:
                        record = None
                elif imp.columns:
                    fields = next(csv.reader([raw_row], delimiter=imp.delimiter or ","), [])
                    record = dict(zip(imp.columns, fields, strict=False))
                if isinstance(record, dict):
                    yield entry.get("row", ""), record
        finally:
            readers.release_text(text)


def _imports_with_files():
    return (Import.objects.select_related("source").exclude(file="", error_report="")
            .order_by("id"))


def imports_personal_data_export(profile) -> dict:
    """The rows of uploaded files and error reports that name the person."""
    keys = _profile_keys(profile)
    rows = []
    if any(keys.values()):
        for imp in _imports_with_files():
            for where, number, record in _person_rows(imp, keys):
                rows.append({"import": imp.pk, "source": imp.source.slug, "name": imp.original_name, "in": where,
                             "row": number, "record": record})
    return {"import_rows": rows}


def imports_personal_data_erase(profile) -> int:
    """Delete every uploaded file and error report that names the person (the import keeps its counters and
    says when its file was erased). Returns the number of files deleted."""
    keys = _profile_keys(profile)
    if not any(keys.values()):
        return 0
    deleted = 0
    for imp in _imports_with_files():
        if next(_person_rows(imp, keys), None) is None:
            continue
        if imp.is_active:
            Import.objects.filter(pk=imp.pk).update(status=Import.Status.CANCELLED, finished_at=timezone.now())
        for name in (imp.file.name, imp.error_report.name):
            if name and default_storage.exists(name):
                default_storage.delete(name)
                deleted += 1
        Import.objects.filter(pk=imp.pk).update(file="", error_report="", file_erased_at=timezone.now())
    return deleted
