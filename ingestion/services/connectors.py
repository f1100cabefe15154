"""Connectors other than files: database sources (pulled on a schedule) and webhook sources (pushed to us).

Database source: its settings (``source.settings["database"]``) name a PostgreSQL database by URL, a table or a
query, a cursor column (``updated_at`` or an increasing ``id``), an interval and a mapping spec. A pull reads the
rows whose cursor is at or after the last value it stored, in a read-only transaction with a statement timeout,
through a server-side (named) cursor, so a large table streams with flat memory. Each pull is an ``Import`` of kind
"database" with the same counters and error report as a file import, and the cursor range it covered. A row's
messageId is a hash of the row, so the boundary rows a pull reads again (at the last cursor value) are duplicates
and stored once; a changed row (its cursor moved) is new.

The password in a database URL is never shown: the UI, the API and the logs get ``database_url_masked``.

Webhook source: any JSON POSTed to /v1/webhook/<slug>, mapped by ``source.settings["webhook"]["mapping"]``
(dotted paths into each record); a JSON array (or the list at ``records_path``) is many records. Valid records are
stored, bad ones kept as rejected with the reason that names the field. A record's messageId is a hash of the
record unless the mapping maps one, so a sender's retry of the same delivery is stored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.db import transaction
from django.utils import timezone

from cdp.core.services import audit_record
from ingestion import readers
from ingestion.mapping import MappingError, get_path, mapping_apply
from ingestion.models import Import, Source
from ingestion.services.imports import (
    ErrorReport,
    RunCounters,
    _claim,
    _finish,
    mapping_errors,
    mapping_suggest,
    purpose_keys,
    rows_to_inbox,
)
from ingestion.services.inbox import inbox_reject, inbox_store

logger = logging.getLogger(__name__)

MASK = "****"
DEFAULT_INTERVAL_MINUTES = 60
MAX_INTERVAL_MINUTES = 7 * 24 * 60
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 10
FETCH_SIZE = 1000
PROBE_ROWS = 5
# A running pull that has not saved progress for this long is taken for dead (its worker was lost).
STALE_AFTER = timedelta(minutes=30)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class ConnectorError(ValueError):
    """A bad setting or request; ``fields`` names what is wrong."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


# --- database URLs: the password never shows ---------------------------------------------------------------------

def database_url_masked(url: str) -> str:
    """The URL with its password replaced by ****."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(unquote(user), safe='')}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _password(url: str) -> str:
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def _scrub(text: str, url: str) -> str:
    """An error message with the URL's password (and the URL itself) taken out."""
    password = _password(url)
    text = text.replace(url, database_url_masked(url)) if url else text
    return text.replace(password, MASK) if password else text


def source_settings_public(source_settings: dict) -> dict:
    """A source's settings as the UI and the API may show them (the database password masked)."""
    public = dict(source_settings or {})
    database = public.get("database")
    if isinstance(database, dict) and database.get("url"):
        public["database"] = {**database, "url": database_url_masked(database["url"])}
    return public


def source_settings_incoming(source: Source, new_settings: dict) -> dict:
    """Settings written through the sources API: a database URL that comes back masked keeps its password."""
    database = (new_settings or {}).get("database") if isinstance(new_settings, dict) else None
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        return {**new_settings, "database": {**database, "url": database_url_resolve(source, database["url"])}}
    return new_settings


# --- database settings -------------------------------------------------------------------------------------------

@dataclass
class DatabaseConfig:
    url: str = ""
    table: str = ""
    query: str = ""
    cursor_column: str = ""
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    statement_timeout_seconds: int = DEFAULT_STATEMENT_TIMEOUT_SECONDS
    mapping: dict = field(default_factory=dict)
    reset_at: str = ""  # runs before this (ISO time) do not count for the cursor: a full pull follows

    @classmethod
    def of(cls, source: Source) -> DatabaseConfig:
        values = (source.settings or {}).get("database") or {}
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def collection(self) -> str:
        return self.table or "query"

    @property
    def configured(self) -> bool:
        return bool(self.url and (self.table or self.query) and self.cursor_column and self.mapping)


def _check_identifier(name: str, *, dotted: bool) -> bool:
    parts = name.split(".")
    return bool(name) and (len(parts) <= (2 if dotted else 1)) and all(_IDENTIFIER.match(part) for part in parts)


def _clean_query(query: str) -> str:
    query = (query or "").strip()
    while query.endswith(";"):
        query = query[:-1].rstrip()
    return query


def database_config_check(config: DatabaseConfig, *, require_mapping: bool = True) -> dict[str, list[str]]:
    """The problems of a database configuration, by field (empty when it is valid)."""
    errors: dict[str, list[str]] = {}
    scheme = urlsplit(config.url).scheme if config.url else ""
    if not config.url:
        errors["url"] = ["the database URL is needed: postgres://user:password@host:5432/database"]
    elif scheme not in ("postgres", "postgresql"):
        errors["url"] = [f"a postgres:// URL, not {scheme or 'this'!r}"]
    elif not urlsplit(config.url).hostname and "host=" not in urlsplit(config.url).query:
        errors["url"] = ["the URL names no host"]
    if bool(config.table) == bool(config.query):
        errors["table"] = ["give a table or a query (one of them)"]
    elif config.table and not _check_identifier(config.table, dotted=True):
        errors["table"] = ["a table name, optionally with its schema: customers or crm.customers"]
    elif config.query:
        if not re.match(r"(?is)^\s*(select|with)\b", config.query):
            errors["query"] = ["a SELECT query (it runs in a read-only transaction)"]
        elif ";" in config.query:
            errors["query"] = ["one statement only, without ;"]
    if not _check_identifier(config.cursor_column, dotted=False):
        errors["cursor_column"] = ["the column that grows with every new or changed row: updated_at or id"]
    if not 1 <= int(config.interval_minutes or 0) <= MAX_INTERVAL_MINUTES:
        errors["interval_minutes"] = [f"between 1 and {MAX_INTERVAL_MINUTES} minutes"]
    if not 1 <= int(config.statement_timeout_seconds or 0) <= 3600:
        errors["statement_timeout_seconds"] = ["between 1 and 3600 seconds"]
    if require_mapping or config.mapping:
        errors.update(mapping_errors(config.mapping))
    return errors


def database_url_resolve(source: Source, url: str) -> str:
    """The URL a form sent back: the stored one when it came back masked (****), else the one given."""
    url = (url or "").strip()
    stored = DatabaseConfig.of(source).url
    if stored and MASK in url and database_url_masked(stored) == url:
        return stored
    return url


@transaction.atomic
def database_settings_save(*, source: Source, url: str, table: str = "", query: str = "", cursor_column: str,
                           interval_minutes: int = DEFAULT_INTERVAL_MINUTES, mapping: dict | None = None,
                           statement_timeout_seconds: int = DEFAULT_STATEMENT_TIMEOUT_SECONDS,
                           user=None) -> DatabaseConfig:
    """Save a database source's settings. A URL given back masked (****) keeps the stored password. Changing the
    table, the query or the cursor column starts the next pull from the beginning. Raises ConnectorError."""
    given, source = source, Source.objects.select_for_update().get(pk=source.pk)
    if source.kind != Source.Kind.DATABASE:
        raise ConnectorError(f"{source.slug!r} is not a database source.", {"source": ["not a database source"]})
    before = DatabaseConfig.of(source)
    url = database_url_resolve(source, url)
    try:
        interval = int(interval_minutes)
        timeout = int(statement_timeout_seconds)
    except (TypeError, ValueError):
        raise ConnectorError("The interval and the timeout are whole numbers.",
                             {"interval_minutes": ["a whole number of minutes"]}) from None
    config = DatabaseConfig(url=url, table=(table or "").strip(), query=_clean_query(query),
                            cursor_column=(cursor_column or "").strip(), interval_minutes=interval,
                            statement_timeout_seconds=timeout, mapping=mapping or {}, reset_at=before.reset_at)
    errors = database_config_check(config, require_mapping=False)
    if errors:
        raise ConnectorError("The database settings are not valid.", errors)
    if (config.table, config.query, config.cursor_column) != (before.table, before.query, before.cursor_column):
        config.reset_at = timezone.now().isoformat()
    source.settings = given.settings = {**(source.settings or {}), "database": config.as_dict()}
    source.save(update_fields=["settings"])
    audit_record(actor=user, action="change", object_type="ingestion.Source", object_id=source.pk,
                 summary=f"Database settings of {source.slug}: {config.collection}, cursor {config.cursor_column}",
                 fields=["url", "table", "query", "cursor_column", "interval_minutes", "mapping"])
    return config


@transaction.atomic
def database_cursor_reset(*, source: Source, user=None) -> None:
    """Make the next pull read every row again (what was stored already is skipped as duplicate)."""
    given, source = source, Source.objects.select_for_update().get(pk=source.pk)
    config = DatabaseConfig.of(source)
    config.reset_at = timezone.now().isoformat()
    source.settings = given.settings = {**(source.settings or {}), "database": config.as_dict()}
    source.save(update_fields=["settings"])
    audit_record(actor=user, action="change", object_type="ingestion.Source", object_id=source.pk,
                 summary=f"Reset the cursor of {source.slug}: the next pull reads every row")


# --- cursor values -----------------------------------------------------------------------------------------------

def cursor_dump(value: Any) -> dict | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool):
        return {"type": "string", "value": str(value)}
    if isinstance(value, int):
        return {"type": "integer", "value": value}
    if isinstance(value, Decimal | float):
        return {"type": "decimal", "value": str(value)}
    return {"type": "string", "value": str(value)}


def cursor_load(dumped: dict | None) -> Any:
    if not dumped:
        return None
    kind, value = dumped.get("type"), dumped.get("value")
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "integer":
        return int(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def cursor_display(dumped: dict | None) -> str:
    return "" if not dumped else str(dumped.get("value"))


def database_last_cursor(source: Source) -> dict | None:
    """Where the next pull starts: the last cursor value stored by a pull of the current table/query/cursor."""
    config = DatabaseConfig.of(source)
    runs = Import.objects.filter(source=source, kind=Import.Kind.DATABASE, cursor_column=config.cursor_column,
                                 cursor_end__isnull=False)
    if config.reset_at:
        runs = runs.filter(created_at__gt=datetime.fromisoformat(config.reset_at))
    run = runs.order_by("-created_at", "-id").first()
    return run.cursor_end if run else None


# --- reading a PostgreSQL database -------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """A database value as JSON (dates as ISO text, decimals as numbers)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _select(config: DatabaseConfig, *, after: Any, limit: int | None = None):
    from psycopg import sql

    if config.table:
        relation = sql.SQL(".").join(sql.Identifier(part) for part in config.table.split("."))
        source_sql = sql.SQL("SELECT * FROM {} AS cdp_src").format(relation)
    else:
        source_sql = sql.SQL("SELECT * FROM ({}) AS cdp_src").format(sql.SQL(config.query))
    cursor = sql.SQL("cdp_src.{}").format(sql.Identifier(config.cursor_column))
    params: list = []
    statement = source_sql
    if after is not None:
        statement = sql.SQL("{} WHERE {} >= %s").format(statement, cursor)
        params.append(after)
    statement = sql.SQL("{} ORDER BY {} NULLS FIRST").format(statement, cursor)
    if limit:
        statement = sql.SQL("{} LIMIT {}").format(statement, sql.Literal(limit))
    return statement, params


def _connect(config: DatabaseConfig):
    import psycopg

    connection = psycopg.connect(
        config.url, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="cdp-database-source",
        options=f"-c statement_timeout={config.statement_timeout_seconds * 1000} "
                "-c default_transaction_read_only=on")
    connection.read_only = True
    return connection


@dataclass
class DatabaseProbe:
    columns: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    error: str = ""
    mapping: dict = field(default_factory=dict)


def database_probe(config: DatabaseConfig) -> DatabaseProbe:
    """Connect and read the first rows (for the settings page: the columns to map and a preview). A read."""
    import psycopg

    errors = database_config_check(config, require_mapping=False)
    if errors:
        return DatabaseProbe(error="; ".join(f"{name}: {msgs[0]}" for name, msgs in errors.items()))
    probe = DatabaseProbe()
    try:
        with _connect(config) as connection, connection.cursor() as cursor:
            statement, params = _select(config, after=None, limit=PROBE_ROWS)
            cursor.execute(statement, params)
            probe.columns = [column.name for column in cursor.description or []]
            probe.rows = [{name: _jsonable(value) for name, value in zip(probe.columns, row, strict=True)}
                          for row in cursor.fetchall()]
            if config.cursor_column not in probe.columns:
                probe.error = f"The rows have no column {config.cursor_column!r} (the cursor column)."
    except psycopg.Error as error:
        probe.error = _scrub(str(error).strip(), config.url) or type(error).__name__
    if probe.columns:
        probe.mapping = mapping_suggest(probe.columns, probe.rows, purposes=purpose_keys())
    return probe


# --- pulls -------------------------------------------------------------------------------------------------------

def database_pull_enqueue(*, source: Source, user=None) -> Import:
    """Queue a pull now (the "pull now" button). When one is queued or running already, that one is returned."""
    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if source.kind != Source.Kind.DATABASE:
            raise ConnectorError(f"{source.slug!r} is not a database source.", {"source": ["not a database source"]})
        config = DatabaseConfig.of(source)
        errors = database_config_check(config)
        if errors:
            raise ConnectorError("Complete the database settings first.", errors)
        if not source.enabled:
            raise ConnectorError("The source is disabled.", {"enabled": ["the source is off"]})
        active = _active_run(source)
        if active is not None:
            return active
        run = Import.objects.create(source=source, kind=Import.Kind.DATABASE, status=Import.Status.QUEUED,
                                    original_name=config.collection, cursor_column=config.cursor_column,
                                    mapping=config.mapping, created_by=user)
        if user is not None:
            audit_record(actor=user, action="change", object_type="ingestion.Source",
                         object_id=source.pk, summary=f"Pull of {source.slug} queued")
        transaction.on_commit(lambda: _enqueue_pull(source.pk, run.pk))
    return run


def _enqueue_pull(source_id: int, import_id: int) -> None:
    from ingestion.tasks import database_source_pull

    database_source_pull.delay(source_id=source_id, import_id=import_id)


def _active_run(source: Source) -> Import | None:
    """The queued or running pull of a source; one that stopped saving progress long ago is marked failed."""
    run = Import.objects.filter(source=source, kind=Import.Kind.DATABASE, status__in=Import.ACTIVE).first()
    if run is not None and run.updated_at < timezone.now() - STALE_AFTER:
        Import.objects.filter(pk=run.pk, status__in=Import.ACTIVE).update(
            status=Import.Status.FAILED, finished_at=timezone.now(),
            error=f"No progress for {int(STALE_AFTER.total_seconds() // 60)} minutes: the worker was lost. The "
                  "next pull continues from the last stored cursor.")
        return None
    return run


def database_pulls_enqueue_due(*, now: datetime | None = None) -> list[int]:
    """Queue a pull of every enabled, configured database source whose interval has passed since its last pull.
    Returns the source ids."""
    now = now or timezone.now()
    due = []
    for source in Source.objects.filter(kind=Source.Kind.DATABASE, enabled=True):
        config = DatabaseConfig.of(source)
        if not config.configured:
            continue
        last = Import.objects.filter(source=source, kind=Import.Kind.DATABASE).order_by("-created_at").first()
        if last is not None and last.created_at > now - timedelta(minutes=config.interval_minutes):
            continue
        try:
            database_pull_enqueue(source=source)
        except ConnectorError as error:
            logger.warning("Database source %s is not pulled: %s", source.slug, error.message)
            continue
        due.append(source.pk)
    return due


def _raw_json(row: readers.Row) -> str:
    return json.dumps(row.record, ensure_ascii=False, default=str)[:readers.RAW_IN_REPORT]


def _row_message_id(source: Source, record: dict) -> str:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode())
    return f"db-{source.pk}-{digest.hexdigest()[:40]}"


def database_pull(*, source_id: int, import_id: int | None = None) -> Import | None:
    """Pull the rows of a database source whose cursor is at or after the last stored one, map and store them.
    Runs the queued pull ``import_id``, or a new one. A database error fails the run with its message (the
    password taken out); the next pull continues from the last stored cursor."""
    import psycopg

    if import_id is None:
        source = Source.objects.get(pk=source_id)
        import_id = database_pull_enqueue_now(source=source)
    run = _claim(import_id, Import.Kind.DATABASE)
    if run is None:
        return None
    source = run.source
    config = DatabaseConfig.of(source)
    counters = RunCounters()
    report = ErrorReport(run, "pull")
    errors = database_config_check(config)
    if errors or not source.enabled:
        reason = "The source is disabled." if not source.enabled else "The database settings are incomplete: " + \
            "; ".join(f"{name}: {msgs[0]}" for name, msgs in errors.items())
        return _finish(run, counters, report, status=Import.Status.FAILED, error=reason)
    start = database_last_cursor(source)
    Import.objects.filter(pk=run.pk).update(cursor_column=config.cursor_column, cursor_start=start,
                                            mapping=config.mapping, original_name=config.collection)
    state: dict[str, Any] = {"last": None, "number": 0}

    def rows(cursor, columns):
        cursor_index = columns.index(config.cursor_column)
        while True:
            batch = cursor.fetchmany(FETCH_SIZE)
            if not batch:
                return
            for values in batch:
                state["number"] += 1
                record = {name: _jsonable(value) for name, value in zip(columns, values, strict=True)}
                if values[cursor_index] is not None:
                    state["last"] = values[cursor_index]
                yield readers.Row(state["number"], record, "")

    def checkpoint() -> dict:
        return {"cursor_end": cursor_dump(state["last"])} if state["last"] is not None else {}

    try:
        with _connect(config) as connection:
            with connection.cursor(name=f"cdp_pull_{run.pk}") as cursor:
                cursor.itersize = FETCH_SIZE
                statement, params = _select(config, after=cursor_load(start))
                cursor.execute(statement, params)
                columns = [column.name for column in cursor.description or []]
                if config.cursor_column not in columns:
                    return _finish(run, counters, report, status=Import.Status.FAILED,
                                   error=f"The rows have no column {config.cursor_column!r} (the cursor column).")
                finished = rows_to_inbox(
                    imp=run, rows=rows(cursor, columns), spec=config.mapping, collection=config.collection,
                    message_id=lambda row: _row_message_id(source, row.record),
                    raw_text=_raw_json,
                    report=report, counters=counters, checkpoint=checkpoint)
            connection.rollback()  # read-only: nothing to commit
    except psycopg.Error as error:
        message = _scrub(str(error).strip(), config.url) or type(error).__name__
        logger.warning("Pull of database source %s failed: %s", source.slug, message)
        return _finish(run, counters, report, status=Import.Status.FAILED,
                       error=f"The database answered: {message}")
    return _finish(run, counters, report, status=Import.Status.DONE if finished else Import.Status.CANCELLED)


def database_pull_enqueue_now(*, source: Source) -> int:
    """A queued run for a pull made right here (the shell, a test), not through the broker."""
    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if source.kind != Source.Kind.DATABASE:
            raise ConnectorError(f"{source.slug!r} is not a database source.", {"source": ["not a database source"]})
        active = _active_run(source)
        if active is not None:
            raise ConnectorError("A pull of this source is queued or running already.", {"source": ["busy"]})
        config = DatabaseConfig.of(source)
        return Import.objects.create(source=source, kind=Import.Kind.DATABASE, status=Import.Status.QUEUED,
                                     original_name=config.collection, cursor_column=config.cursor_column).pk


# --- webhooks ----------------------------------------------------------------------------------------------------

WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_MAX_RECORDS = 1000
WEBHOOK_MAX_MESSAGE_BYTES = 32 * 1024


@dataclass
class WebhookConfig:
    mapping: dict = field(default_factory=dict)
    records_path: str = ""

    @classmethod
    def of(cls, source: Source) -> WebhookConfig:
        values = (source.settings or {}).get("webhook") or {}
        return cls(mapping=values.get("mapping") or {}, records_path=values.get("records_path") or "")

    def as_dict(self) -> dict:
        return {"mapping": self.mapping, "records_path": self.records_path}


@transaction.atomic
def webhook_settings_save(*, source: Source, mapping: dict, records_path: str = "", user=None) -> WebhookConfig:
    given, source = source, Source.objects.select_for_update().get(pk=source.pk)
    if source.kind != Source.Kind.WEBHOOK:
        raise ConnectorError(f"{source.slug!r} is not a webhook source.", {"source": ["not a webhook source"]})
    errors = mapping_errors(mapping)
    records_path = (records_path or "").strip()
    if records_path and not all(part for part in records_path.split(".")):
        errors["records_path"] = ["a dotted path such as data.items, or empty"]
    if errors:
        raise ConnectorError("The webhook settings are not valid.", errors)
    config = WebhookConfig(mapping=mapping, records_path=records_path)
    source.settings = given.settings = {**(source.settings or {}), "webhook": config.as_dict()}
    source.save(update_fields=["settings"])
    audit_record(actor=user, action="change", object_type="ingestion.Source", object_id=source.pk,
                 summary=f"Webhook mapping of {source.slug}: {len(mapping['fields'])} fields", fields=["mapping"])
    return config


@dataclass
class WebhookResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: dict[str, list[str]] = field(default_factory=dict)
    message_ids: list[str] = field(default_factory=list)
    # Values left out of stored records (a consent decision that cannot be read), named like ``errors``.
    warnings: dict[str, list[str]] = field(default_factory=dict)


def webhook_records(body: Any, records_path: str = "") -> list:
    """The records of a webhook body: the list at ``records_path``, a JSON array, or the one object."""
    if records_path:
        value = get_path(body, records_path)
        if not isinstance(value, list | dict):
            raise ConnectorError(f"The body has no list or object at {records_path!r} (the records path).",
                                 {records_path: ["missing"]})
        body = value
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return [body]
    raise ConnectorError("The body must be a JSON object or an array of objects.",
                         {"body": [f"a JSON {type(body).__name__}"]})


def webhook_record_message_id(source: Source, record: Any) -> str:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode())
    return f"wh-{source.pk}-{digest.hexdigest()[:40]}"


def webhook_receive(*, source: Source, body: Any, config: WebhookConfig | None = None,
                    received_at: datetime | None = None) -> WebhookResult:
    """Map each record of a parsed webhook body and store the valid ones; the bad ones are kept as rejected with
    the reason that names the field, and listed in ``errors`` ({"<index>.<field>": [...]}; just "<field>" for a
    body that is one object). Raises ConnectorError when the body as a whole is wrong."""
    config = config or WebhookConfig.of(source)
    records = webhook_records(body, config.records_path)
    if len(records) > WEBHOOK_MAX_RECORDS:
        raise ConnectorError(f"{len(records)} records in one body; at most {WEBHOOK_MAX_RECORDS}.",
                             {"body": ["too many records"]})
    result = WebhookResult(received=len(records))
    single = isinstance(body, dict) and not config.records_path
    good: list[dict] = []
    bad: list[tuple[Any, str]] = []

    def fail(index: int, name: str, message: str, record: Any) -> None:
        key = name if single else (f"{index}.{name}" if name else str(index))
        result.errors.setdefault(key or "body", []).append(message)
        where = f" (field {name})" if name else ""
        bad.append(({"webhook_record": record} if not isinstance(record, dict) else record,
                    f"webhook record {index}{where}: {message}"))

    if not config.mapping:
        for index, record in enumerate(records):
            fail(index, "", "the webhook source has no field mapping yet; set it on the source's page", record)
    else:
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                fail(index, "", f"a record is a JSON object, not a JSON {type(record).__name__}", record)
                continue
            problems: list[MappingError] = []
            try:
                message = mapping_apply(config.mapping, record, source_slug=source.slug, collection="webhook",
                                        problems=problems)
            except MappingError as error:
                fail(index, error.field, error.message, record)
                continue
            for problem in problems:
                key = problem.field if single else f"{index}.{problem.field}"
                result.warnings.setdefault(key, []).append(problem.message)
            size = len(json.dumps(message, ensure_ascii=False, default=str).encode())
            if size > WEBHOOK_MAX_MESSAGE_BYTES:
                fail(index, "", f"the mapped message is {size:,} bytes; the limit is {WEBHOOK_MAX_MESSAGE_BYTES:,}",
                     record)
                continue
            message.setdefault("messageId", webhook_record_message_id(source, record))
            good.append(message)
    if good:
        stored = inbox_store(source=source, messages=good, received_at=received_at)
        result.stored, result.duplicates, result.message_ids = stored.stored, stored.duplicates, stored.message_ids
        result.rejected += stored.rejected
    if bad:
        result.rejected += inbox_reject(source=source, messages_with_reasons=bad)
    return result
