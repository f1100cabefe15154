"""The durable inbox: where every message lands before processing.

``inbox_store`` writes already-enveloped messages in ONE statement per batch
(``INSERT ... ON CONFLICT (source_id, message_id) DO NOTHING RETURNING id``, on PostgreSQL and SQLite alike) and
enqueues processing once the transaction commits. ``inbox_reject`` keeps messages that failed the envelope check,
as rejected with their reason, so that they are visible and countable: nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections, transaction
from django.utils import timezone

from cdp.core.prepared import prepared_execute
from ingestion.models import InboxCount, InboxMessage, Source

logger = logging.getLogger(__name__)

MESSAGE_ID_MAX = InboxMessage._meta.get_field("message_id").max_length
TYPE_MAX = InboxMessage._meta.get_field("type").max_length
# A rejected message keeps at most this much of its raw text (an oversize or unparseable body is not stored whole).
REJECTED_RAW_MAX = 2048

# Processing is enqueued at most this often per source and process; the task drains everything pending, and the
# periodic sweep catches whatever a skipped enqueue might have left behind.
ENQUEUE_DEBOUNCE_SECONDS = 1.0
_last_enqueued: dict[int, float] = {}
_enqueue_lock = threading.Lock()


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    # Messages that cannot be stored as they are (a NUL character or a lone UTF-16 surrogate, which PostgreSQL's
    # jsonb refuses): kept as rejected, with their reason, instead.
    rejected: int = 0
    message_ids: list[str] = field(default_factory=list)


def new_message_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID as text: 48 bits of Unix time in milliseconds, then 74 random
    bits. Time-ordered, the ids the inbox generates land at the end of its unique (source, message id) index
    instead of at a random place in it: about a quarter less PostgreSQL CPU per stored row, measured (a random id
    reads and dirties a different leaf page for nearly every row). Built without the UUID object: it is on the
    tracking API's hot path, once per event that has no messageId. The bits come from the random module, not
    os.urandom: os.urandom releases the GIL for its system call, and among a worker's request threads every
    release costs a GIL hand-off. The id has to be unique, not secret; the module's generator is seeded from
    os.urandom, and seeded again in every forked process (gunicorn and Celery workers), so processes never share a
    sequence."""
    h = f"{(time.time_ns() // 1_000_000) << 80 | random.getrandbits(80):032x}"
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def message_id_of(message: dict) -> str:
    """The message's id as the inbox keys it: a given messageId (hashed if longer than the column), else a new
    one (``new_message_id``) written into the message."""
    message_id = message.get("messageId")
    if message_id is None or message_id == "":
        message_id = new_message_id()
        message["messageId"] = message_id
    message_id = str(message_id)
    if len(message_id) > MESSAGE_ID_MAX:
        message_id = "sha256:" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return message_id


def unstorable_reason(text: str) -> str | None:
    """Why a JSON text cannot go into the inbox (PostgreSQL jsonb refuses NUL and lone surrogates), or None."""
    if "\\u0000" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate, which is not valid Unicode"
    return None


def _storable_copy(value):
    """A copy of a JSON value with NUL characters removed and lone surrogates replaced, to keep a rejected
    message visible."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable_copy(str(k)): _storable_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable_copy(v) for v in value]
    return value


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)


TABLE = InboxMessage._meta.db_table
# Many rows: the payloads travel as ONE JSON array and the per-row keys (source, message id, received at, reason)
# as another, and PostgreSQL takes them apart (in C); building per-value parameters in Python costs more than the
# whole insert. Returns what was new, so that concurrent callers that shared the statement can tell theirs.
_PG_INSERT = f"""
    INSERT INTO {TABLE} (source_id, message_id, type, payload, received_at, status, reason, attempts, processed_at)
    SELECT (k.x->>0)::bigint, k.x->>1, left(coalesce(e.p->>'type', ''), 16), e.p, (k.x->>2)::timestamptz,
           $1::varchar, coalesce(k.x->>3, ''), 0, $2::timestamptz
    FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS e(p, i)
    JOIN jsonb_array_elements($4::jsonb) WITH ORDINALITY AS k(x, j) ON k.j = e.i
    ON CONFLICT (source_id, message_id) DO NOTHING RETURNING source_id, message_id"""
# The same without ON CONFLICT, for the tracking API (outside transactions): tried first, since a new message is
# the rule. ON CONFLICT probes the unique index before each row's insert and makes each insert speculative (a
# second descent of the index, a lock and a WAL record more): about 15 % of PostgreSQL's CPU per row, measured. A
# plain INSERT checks uniqueness while inserting; if any row is a duplicate, the statement stores nothing (it is
# atomic) and the ON CONFLICT form runs instead.
_PG_INSERT_NEW = _PG_INSERT[:_PG_INSERT.index("ON CONFLICT")].rstrip()
_PG_INSERT_ONE = f"""
    INSERT INTO {TABLE} (source_id, message_id, type, payload, received_at, status, reason, attempts, processed_at)
    VALUES ($1::bigint, $2::varchar, $3::varchar, $4::jsonb, $5::timestamptz, $6::varchar, $7::text, 0,
            $8::timestamptz)
    ON CONFLICT (source_id, message_id) DO NOTHING RETURNING source_id, message_id"""


_PREPARED = {b"cdp_inbox_insert": _PG_INSERT, b"cdp_inbox_insert_new": _PG_INSERT_NEW,
             b"cdp_inbox_insert_one": _PG_INSERT_ONE}
_UNIQUE_VIOLATION = b"23505"
# The same statements for a psycopg cursor (placeholders in order).
_FOR_CURSOR = {name: re.sub(r"\$\d+", "%b", sql) for name, sql in _PREPARED.items()}


def _text(value) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()


def _pg_autocommit_exec(conn, name: bytes, params: list) -> list[tuple[int, str]] | None:
    """Run one of the prepared inbox statements straight through libpq (outside transactions only: psycopg would
    not know to open one). The tracking API's whole database work is this one call, so psycopg's cursor machinery,
    which costs more client CPU than the statement, is skipped; the blocking call releases the GIL. The plain
    INSERT (``cdp_inbox_insert_new``) returns no rows, or None when a row was a duplicate (nothing stored)."""
    import psycopg
    from psycopg import pq

    conn.ensure_connection()
    raw = conn.connection
    pgconn = raw.pgconn
    prepared = raw.__dict__.setdefault("_cdp_prepared", set())
    with conn.wrap_database_errors:
        if name not in prepared:
            result = pgconn.prepare(name, _PREPARED[name].encode())
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
            prepared.add(name)
        result = pgconn.exec_prepared(name, [_text(value) for value in params])
        if result.status == pq.ExecStatus.COMMAND_OK and name == b"cdp_inbox_insert_new":
            return []
        if result.status != pq.ExecStatus.TUPLES_OK:
            if name == b"cdp_inbox_insert_new" and pgconn.status == pq.ConnStatus.OK \
                    and result.error_field(pq.DiagnosticField.SQLSTATE) == _UNIQUE_VIOLATION:
                return None
            if pgconn.status != pq.ConnStatus.OK:
                raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
            raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
        return [(int(result.get_value(i, 0)), result.get_value(i, 1).decode()) for i in range(result.ntuples)]


def _keys_json(rows: list[tuple]) -> str:
    """The per-row keys of a many-row insert as one JSON array: [source id, message id, received at, reason]. The
    rows of one request share their time, so it is written once per distinct value."""
    times: dict[datetime, str] = {}
    keys = [[row[0], row[1], times.get(row[4]) or times.setdefault(row[4], row[4].isoformat()), row[6]]
            for row in rows]
    try:
        return orjson.dumps(keys).decode()
    except orjson.JSONEncodeError:  # a text orjson refuses (a lone surrogate): PostgreSQL names the problem
        return json.dumps(keys)


def _insert(rows: list[tuple]) -> list[tuple[int, str]]:
    """One INSERT for all rows (source_id, message_id, type, JSON text, received_at, status, reason,
    processed_at; one status and processed_at per call); returns (source_id, message_id) of the new ones."""
    if not rows:
        return []
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "postgresql":
        if len(rows) == 1:  # a single event: scalars bind faster than JSON documents
            name, params = b"cdp_inbox_insert_one", list(rows[0])
        else:
            keys = _keys_json(rows)
            name, params = b"cdp_inbox_insert", [rows[0][5], rows[0][7],
                                                  "[" + ",".join(row[3] for row in rows) + "]", keys]
        if conn.connection is not None and conn.get_autocommit() and not conn.in_atomic_block:
            if len(rows) > 1 and _pg_autocommit_exec(conn, b"cdp_inbox_insert_new", params) is not None:
                return [(row[0], row[1]) for row in rows]  # no duplicate: every row is new
            return _pg_autocommit_exec(conn, name, params)
        # In a transaction: a psycopg cursor with server-side binding on Django's connection (psycopg opens the
        # transaction); a constant, prepared statement.
        return prepared_execute(conn, _FOR_CURSOR[name], params)
    table = conn.ops.quote_name(TABLE)
    one = "(%s, %s, %s, %s, %s, %s, %s, 0, %s)"
    sql = (f"INSERT INTO {table} (source_id, message_id, type, payload, received_at, status, reason, attempts, "
           f"processed_at) VALUES {', '.join([one] * len(rows))} "
           f"ON CONFLICT (source_id, message_id) DO NOTHING RETURNING source_id, message_id")
    adapt = conn.ops.adapt_datetimefield_value
    params = [adapt(v) if isinstance(v, datetime) else v for row in rows for v in row]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def _insert_retrying(rows: list[tuple]) -> list[tuple[int, str]]:
    """``_insert`` outside a transaction, once more on a fresh connection if the kept-alive one turned out dead
    (the PostgreSQL path skips Django's per-request health-check query; ON CONFLICT DO NOTHING makes the retry
    safe)."""
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        return _insert(rows)
    except (OperationalError, InterfaceError):
        if not conn.get_autocommit() or conn.in_atomic_block:
            raise
        conn.close()
        return _insert(rows)


class _Job:
    """One caller's rows. ``done`` is a lock taken at creation and released exactly once, when the caller may go on
    (its rows are committed or failed, or the lead passes to it). A plain lock, not an Event: an Event's wait builds
    a Condition and a waiter lock each time, on the path of every single-event request."""

    __slots__ = ("rows", "done", "lead", "stored", "failed")

    def __init__(self, rows):
        self.rows, self.done, self.lead, self.stored, self.failed = rows, threading.Lock(), False, 0, False
        self.done.acquire()


class GroupInsert:
    """Concurrent stores of one process (the tracking API's request threads, outside transactions) share one
    INSERT and one commit: the first caller leads and inserts everything queued meanwhile, the others wait for that
    commit, then the lead passes to the next waiter. Every caller still answers only once its rows are committed;
    a statement that fails makes each caller insert its own rows again, alone, so that one bad row stays alone."""

    WAIT_SECONDS = 30

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._busy = False

    def insert(self, rows: list[tuple]) -> int:
        """Insert the rows; returns how many were new."""
        job = _Job(rows)
        with self._lock:
            self._queue.append(job)
            lead = not self._busy
            self._busy = True
        if not lead:
            if not job.done.acquire(timeout=self.WAIT_SECONDS):
                with self._lock:
                    orphaned = job in self._queue
                    if orphaned:
                        self._queue.remove(job)
                if orphaned:
                    return len(_insert_retrying(rows))
                job.done.acquire()
            if not job.lead:
                return len(_insert_retrying(rows)) if job.failed else job.stored
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._flush(batch)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.release()
                else:
                    self._busy = False
            for other in batch:
                if other is not job:
                    other.done.release()
        return len(_insert_retrying(rows)) if job.failed else job.stored

    @staticmethod
    def _flush(batch: list[_Job]) -> None:
        try:
            new = _insert_retrying([row for job in batch for row in job.rows])
        except Exception:
            for job in batch:
                job.failed = True
            return
        fresh = set(new)
        for job in batch:
            for row in job.rows:
                key = (row[0], row[1])
                if key in fresh:
                    fresh.discard(key)
                    job.stored += 1


group_insert = GroupInsert()


def _max_rows_per_statement() -> int:
    # SQLite allows 32766 host parameters per statement (8 per row); PostgreSQL 65535.
    return 4000 if connection.vendor == "sqlite" else 8000


def inbox_store(*, source: Source, messages: list[dict], received_at: datetime | None = None) -> StoreResult:
    """Store already-enveloped messages in one statement per batch; duplicates by (source, messageId) are
    ignored. Processing is enqueued on commit. The caller validated the envelope; business rules are checked
    later, by processing."""
    received_at = received_at or timezone.now()
    received_iso = received_at.isoformat().replace("+00:00", "Z")
    prepared: list[tuple[str, str, str]] = []
    unstorable: list[tuple[dict, str]] = []
    for message in messages:
        message_id = message_id_of(message)
        message.setdefault("receivedAt", received_iso)
        text = _dumps(message)
        reason = unstorable_reason(text)
        if reason:
            unstorable.append((message, f"{reason}."))
            continue
        prepared.append((message_id, message.get("type") or "", text))
    return inbox_store_serialized(source_id=source.pk, prepared=prepared, received_at=received_at,
                                  unstorable=unstorable)


def inbox_store_serialized(*, source_id: int, prepared: list[tuple[str, str, str]], received_at: datetime,
                           unstorable: list[tuple[dict, str]] = ()) -> StoreResult:
    """``inbox_store`` for callers that already serialized each message (the tracking API measures each event's
    size on that text, so it is serialized once): ``prepared`` holds (message id, type, JSON text) per message,
    the text checked with ``unstorable_reason``."""
    at = received_at
    pending = InboxMessage.Status.PENDING.value
    rows = [(source_id, message_id, str(message_type)[:TYPE_MAX], text, at, pending, "", None)
            for message_id, message_type, text in prepared]
    result = StoreResult(message_ids=[row[1] for row in rows])
    step = _max_rows_per_statement()
    conn = connections[DEFAULT_DB_ALIAS]
    if len(rows) <= step and not unstorable and conn.get_autocommit() and conn.vendor == "postgresql":
        # Outside a transaction (the tracking API): one statement, atomic by itself, shared with the stores that
        # other threads of this process make at the same moment.
        result.stored = group_insert.insert(rows)
    elif len(rows) <= step and not unstorable and conn.get_autocommit():
        result.stored = len(_insert_retrying(rows))
    else:
        with transaction.atomic():
            for start in range(0, len(rows), step):
                result.stored += len(_insert(rows[start:start + step]))
            if unstorable:
                result.rejected = inbox_reject_ids(source_id=source_id, messages_with_reasons=list(unstorable))
    if result.stored:
        processing_enqueue_on_commit(source_id=source_id)
    result.duplicates = len(rows) - result.stored
    return result


def inbox_reject(*, source, messages_with_reasons: list[tuple[dict, str]]) -> int:
    """Store messages that failed the envelope check as rejected with their reason (visible and countable).

    A message can be any JSON value (a batch item may be a string). Each rejected message gets its own inbox id
    (``rejected:<uuid>``), so that a corrected message sent again with the same messageId is still accepted.
    """
    return inbox_reject_ids(source_id=source.pk, messages_with_reasons=messages_with_reasons)


def inbox_reject_ids(*, source_id: int, messages_with_reasons: list[tuple[dict, str]]) -> int:
    """``inbox_reject`` by source id."""
    if not messages_with_reasons:
        return 0
    now = timezone.now()
    at = now
    rejected = InboxMessage.Status.REJECTED.value
    rows = []
    for message, reason in messages_with_reasons:
        try:
            text = _dumps(message)
        except (TypeError, ValueError):
            text = _dumps({"raw": str(message)[:REJECTED_RAW_MAX]})
        if unstorable_reason(text):
            text = _dumps(_storable_copy(message))
        message_type = message.get("type") if isinstance(message, dict) else None
        message_type = message_type[:TYPE_MAX] if isinstance(message_type, str) else ""
        rows.append((source_id, f"rejected:{uuid.uuid4()}", _storable_copy(message_type), text, at, rejected,
                     str(reason), at))
    count = 0
    step = _max_rows_per_statement()
    with transaction.atomic():
        for start in range(0, len(rows), step):
            count += len(_insert(rows[start:start + step]))
        inbox_counts_add(counts={(source_id, timezone.localdate(at)): (0, count)})
    return count


# --- live counts ------------------------------------------------------------------------------------------------

COUNT_SHARDS = 8
_COUNT_TABLE = InboxCount._meta.db_table


def count_day(received_at: datetime | str) -> date:
    """The day a message was received (in TIME_ZONE), as the live counts key it."""
    if isinstance(received_at, str):
        received_at = datetime.fromisoformat(received_at)
    if timezone.is_naive(received_at):
        received_at = timezone.make_aware(received_at, UTC)
    return timezone.localdate(received_at)


@transaction.atomic
def inbox_counts_add(*, counts: dict[tuple[int, date], tuple[int, int]]) -> None:
    """Add (processed, rejected) to the live counts of each (source id, day received); negative to take away.
    Called in the transaction that changes the messages' status, so the counts commit (or not) with it. Each
    process and thread writes its own shard row, so concurrent workers never wait on one counter."""
    rows = [(source_id, day, processed, rejected) for (source_id, day), (processed, rejected) in counts.items()
            if processed or rejected]
    if not rows:
        return
    shard = (os.getpid() * 31 + threading.get_ident()) % COUNT_SHARDS
    table = connection.ops.quote_name(_COUNT_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (source_id, day, shard, processed, rejected) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
            + f" ON CONFLICT (source_id, day, shard) DO UPDATE SET processed = {table}.processed + excluded.processed, "
            f"rejected = {table}.rejected + excluded.rejected",
            [value for source_id, day, processed, rejected in sorted(rows)
             for value in (source_id, day, shard, processed, rejected)])


@transaction.atomic
def inbox_counts_rebuild(*, source: Source | None = None) -> int:
    """Count the inbox rows again (all sources, or one) into the live counts: a repair after changes made
    outside the services. Returns how many (source, day) rows were written."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncDate

    counts = InboxCount.objects.all() if source is None else InboxCount.objects.filter(source=source)
    counts.delete()
    messages = InboxMessage.objects.exclude(status=InboxMessage.Status.PENDING)
    if source is not None:
        messages = messages.filter(source=source)
    grouped = (messages.annotate(day=TruncDate("received_at")).values("source_id", "day").order_by()
               .annotate(processed=Count("id", filter=Q(status=InboxMessage.Status.PROCESSED)),
                         rejected=Count("id", filter=Q(status=InboxMessage.Status.REJECTED))))
    InboxCount.objects.bulk_create([InboxCount(source_id=row["source_id"], day=row["day"], shard=0,
                                               processed=row["processed"], rejected=row["rejected"])
                                    for row in grouped])
    return len(grouped)


def rejected_raw(raw: bytes | str, *, limit: int = REJECTED_RAW_MAX) -> dict:
    """What a rejected message keeps of a body that is too large or not JSON: its beginning and its size."""
    size = len(raw)
    if isinstance(raw, bytes):
        raw = raw[:limit].decode("utf-8", "replace")
    return {"raw": raw[:limit], "size": size, "truncated": size > limit}


def processing_enqueue_on_commit(*, source_id: int | None) -> None:
    """Enqueue inbox processing for a source once the current transaction commits.

    With a broker, at most one enqueue per second per source and process: a running task drains everything
    pending, and the periodic sweep re-enqueues whatever waits too long. Without one (eager tasks), processing
    runs in-process right after the commit.
    """
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        now = time.monotonic()
        key = source_id or 0
        with _enqueue_lock:
            if now - _last_enqueued.get(key, -1e9) < ENQUEUE_DEBOUNCE_SECONDS:
                return
            _last_enqueued[key] = now

    def enqueue():
        from ingestion.tasks import inbox_process

        try:
            inbox_process.delay(source_id=source_id)
        except Exception as error:  # the messages are stored: the sweep enqueues them again later
            _last_enqueued.pop(source_id or 0, None)
            logger.warning("Inbox processing for source %s could not be %s (%s); the sweep retries it.", source_id,
                           "run" if settings.CELERY_TASK_ALWAYS_EAGER else "enqueued", type(error).__name__)

    transaction.on_commit(enqueue)
