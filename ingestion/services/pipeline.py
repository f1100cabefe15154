"""Inbox processing: from stored Segment messages to unified profiles.

A batch is claimed (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that workers never take the same
message; on SQLite an ``UPDATE ... RETURNING`` that takes the database's write lock first), and in the same
transaction:

1. ``plans_check``: a "block" verdict rejects the message with the plan's reason (it can be replayed later);
2. ``transforms_apply``: the source's declarative transformations;
3. each message becomes a ``profiles.services.Observation`` (a message that cannot is rejected with its reason),
   and the claimed messages are marked processed (steps 1-3 are the batch's preparation: with lanes, the next
   batch is prepared while this one goes on);
4. messages naming an erased person (consent's suppression list) are counted and deleted, never applied;
5. ``profiles.services.observations_apply`` resolves identities, updates traits and appends events in bulk, and
   consent records the decisions of ``context.consent.categoryPreferences`` (only those that change something);
6. every claimed message ends processed or rejected, with its reason (the rejected ones are rewritten).

The transaction commits all of it or nothing, so processing is idempotent by (source, messageId): a message is
processed exactly once. Transient database errors propagate (the task retries; the messages stay pending).
``inbox_process_pending`` runs batches in two lanes on PostgreSQL (``_Lanes``): they still apply and commit one
by one, in the order they were claimed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from cdp.core.prepared import prepared_execute, raw_cursor
from consent import selectors as consent_selectors
from consent import services as consent_services
from ingestion.models import InboxMessage, Source
from ingestion.services.inbox import count_day, inbox_counts_add
from ingestion.services.plans import plans_check
from ingestion.services.transforms import transforms_apply
from profiles.models import Identity
from profiles.services import Observation, observations_apply

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)
EVENT_TYPES = {"track", "page", "screen", "identify", "group"}
MESSAGE_TYPES = EVENT_TYPES | {"alias"}
IDENTITY_VALUE_MAX = Identity._meta.get_field("value").max_length
USER_ID, ANONYMOUS_ID, EMAIL, PHONE, RECORD = (str(t.value) for t in (
    Identity.Type.USER_ID, Identity.Type.ANONYMOUS_ID, Identity.Type.EMAIL, Identity.Type.PHONE, Identity.Type.RECORD))
REASON_MAX = 2000
_TABLE = InboxMessage._meta.db_table


def batch_size() -> int:
    """Messages per claimed batch: larger on PostgreSQL (each batch has a fixed cost: a dozen statements, a
    commit, the profile_changed handlers); small on SQLite, whose single writer lock is held for the whole batch
    and would otherwise keep the tracking API waiting."""
    default = 1000 if connection.vendor == "postgresql" else 100
    return int(getattr(settings, "INGESTION_BATCH_SIZE", default))


class MessageInvalid(Exception):
    """A message that cannot become an observation; the text is the rejection reason."""


@dataclass
class BatchResult:
    claimed: int = 0
    processed: int = 0
    rejected: int = 0
    dropped: int = 0  # messages of a source deleted meanwhile

    def __iadd__(self, other: BatchResult) -> BatchResult:
        self.claimed += other.claimed
        self.processed += other.processed
        self.rejected += other.rejected
        self.dropped += other.dropped
        return self


# --- claiming ---------------------------------------------------------------------------------------------------


def _claim(*, source_id: int | None, limit: int) -> list[tuple[int, int, str, dict, str]]:
    """Pending messages as (id, source_id, message_id, payload, received_at), locked for this transaction, oldest
    first."""
    if connection.vendor == "postgresql":
        where = "status = %b" + (" AND source_id = %b" if source_id is not None else "")
        params = [InboxMessage.Status.PENDING.value] + ([source_id] if source_id is not None else []) + [limit]
        with raw_cursor(connection) as cursor:
            # A young or fast-changing inbox has stale statistics, and the planner would then sort every pending row
            # (payloads and all) instead of walking the partial "pending" index in id order up to the limit.
            cursor.execute("SET LOCAL enable_sort = off")
            # The batch comes back as ONE JSON document, parsed once (in C), not a loader call per row and column.
            cursor.execute(f"SELECT coalesce(json_agg(json_build_array(m.id, m.source_id, m.message_id, m.payload, "
                           f"m.received_at) ORDER BY m.id), '[]')::text FROM (SELECT id, source_id, message_id, "
                           f"payload, received_at FROM {_TABLE} WHERE {where} ORDER BY id LIMIT %b "
                           f"FOR UPDATE SKIP LOCKED) AS m", params, prepare=True)
            [document] = cursor.fetchone()
            cursor.execute("SET LOCAL enable_sort = on")
        return [tuple(row) for row in json.loads(document)]
    # The plain path (SQLite): a write first, so that this transaction holds the database's write lock and no
    # other processor claims the same rows.
    table = connection.ops.quote_name(_TABLE)
    where = "status = %s" + (" AND source_id = %s" if source_id is not None else "")
    params = [InboxMessage.Status.PENDING.value] + ([source_id] if source_id is not None else []) + [limit]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET attempts = attempts WHERE id IN (SELECT id FROM {table} WHERE {where} "
                       f"ORDER BY id LIMIT %s) RETURNING id, source_id, message_id, payload, received_at", params)
        rows = cursor.fetchall()
    return sorted((pk, sid, mid, json.loads(payload) if isinstance(payload, str) else payload, received)
                  for pk, sid, mid, payload, received in rows)


# --- messages to observations -----------------------------------------------------------------------------------


def parse_timestamp(value) -> datetime:
    """An ISO-8601 date-time as an aware datetime (naive ones are UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
    else:
        raise ValueError("not a date-time")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)  # OverflowError for a date-time out of range


def _identity_value(value, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MessageInvalid(f"{path} must be a string.")
    text = str(value).strip()
    if len(text) > IDENTITY_VALUE_MAX:
        raise MessageInvalid(f"{path} is longer than {IDENTITY_VALUE_MAX} characters.")
    return text


def _dict(message: dict, key: str, path: str | None = None) -> dict:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageInvalid(f"{path or key} must be an object.")
    return value


def message_to_observation(message: dict, *, source: Source) -> Observation:
    """What a Segment message says about one person. Raises MessageInvalid with the rejection reason."""
    if not isinstance(message, dict):
        raise MessageInvalid("the message must be a JSON object.")
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise MessageInvalid(f"type must be one of {', '.join(sorted(MESSAGE_TYPES))}.")
    context = _dict(message, "context")
    traits = _dict(message, "traits")
    context_traits = _dict(context, "traits", "context.traits")
    properties = _dict(message, "properties")
    cdp = context.get("cdp")
    invalid = set(cdp.get("invalid") or []) if isinstance(cdp, dict) and isinstance(cdp.get("invalid"), list) else set()

    # The person's traits: context.traits on every call, and the call's own traits on identify (a group call's
    # traits describe the group, an alias has none).
    person = dict(context_traits)
    if kind == "identify":
        person.update(traits)

    identities: list[tuple[str, str]] = []
    for key, identity_type in (("userId", USER_ID), ("anonymousId", ANONYMOUS_ID)):
        value = message.get(key)
        if value is not None and value != "":
            value = _identity_value(value, key)
            if value:
                identities.append((identity_type, value))
    for key, identity_type in (("email", EMAIL), ("phone", PHONE)):
        value = person.get(key)
        if value is None or value == "":
            continue
        path = f"traits.{key}" if kind == "identify" and key in traits else f"context.traits.{key}"
        if invalid and (path in invalid or f"traits.{key}" in invalid):
            continue  # a value that failed normalization stays a trait, but never identifies anyone
        value = _identity_value(value, path)
        value = value.lower() if identity_type is EMAIL else value.replace(" ", "")
        if value:
            identities.append((identity_type, value))
    external_ids = context.get("externalIds")
    if external_ids is not None:
        if not isinstance(external_ids, list):
            raise MessageInvalid("context.externalIds must be a list.")
        for index, item in enumerate(external_ids):
            path = f"context.externalIds.{index}"
            if not isinstance(item, dict) or item.get("id") in (None, "") or not item.get("type"):
                raise MessageInvalid(f"{path} needs an id and a type.")
            record = f"{_identity_value(item['type'], path + '.type')}:{_identity_value(item['id'], path + '.id')}"
            if len(record) > IDENTITY_VALUE_MAX:
                raise MessageInvalid(f"{path} is longer than {IDENTITY_VALUE_MAX} characters.")
            identities.append((RECORD, record))

    previous_id = ""
    if kind == "alias":
        if message.get("previousId") in (None, ""):
            raise MessageInvalid("previousId is required on an alias call.")
        previous_id = _identity_value(message["previousId"], "previousId")
        if not message.get("userId"):
            raise MessageInvalid("userId is required on an alias call.")
    if not identities and not previous_id:
        raise MessageInvalid("no identity: a userId, anonymousId, traits.email, traits.phone or "
                             "context.externalIds item is needed.")

    raw_time = message.get("timestamp") or message.get("originalTimestamp") or message.get("receivedAt")
    try:
        timestamp = parse_timestamp(raw_time) if raw_time else timezone.now()
    except (TypeError, ValueError, OverflowError):
        raise MessageInvalid("timestamp is not an ISO-8601 date-time (years 1 to 9999).") from None

    event_type, event_name, event_properties = None, "", {}
    if kind == "track":
        event_name = message.get("event")
        if not isinstance(event_name, str) or not event_name.strip():
            raise MessageInvalid("event (the name of the track call) is required.")
        event_type, event_properties = "track", properties
    elif kind in ("page", "screen"):
        name = message.get("name")
        event_type, event_name, event_properties = kind, name if isinstance(name, str) else "", properties
    elif kind == "identify":
        event_type, event_properties = "identify", traits
    elif kind == "group":
        if message.get("groupId") in (None, ""):
            raise MessageInvalid("groupId is required on a group call.")
        event_type, event_name = "group", str(message["groupId"])
        event_properties = {"groupId": message["groupId"], "traits": traits}
    return Observation(
        identities=identities,
        timestamp=timestamp,
        source=source.slug,
        channel=source.channel or "",
        traits=person,
        event_type=event_type,
        event_name=event_name[:200],
        properties=event_properties,
        context=context,
        message_id=str(message.get("messageId") or ""),
        previous_id=previous_id,
    )


# --- processing -------------------------------------------------------------------------------------------------


def _reason(text: str) -> str:
    return text if len(text) <= REASON_MAX else text[:REASON_MAX - 1] + "…"


def _block_reason(violations: list[dict]) -> str:
    details = "; ".join(f"{v.get('path') or '(message)'}: {v.get('message', '')}" for v in violations[:5])
    more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
    return _reason(f"blocked by tracking plan: {details}{more}")


def _observations_and_consent_apply(observations: list[Observation]) -> None:
    """Profiles first (identities, traits, events), then the consent decisions the messages carry
    (``context.consent.categoryPreferences``), for the profile each observation resolved to."""
    profile_ids = observations_apply(observations=observations)
    consent_services.consent_observations_apply(observations=observations, profile_ids=profile_ids)


def _suppressed_drop(source: Source, observations: list[tuple[int, Observation]]) -> list[tuple[int, Observation]]:
    """Messages naming an erased person (the suppression list) are counted and deleted, not applied: their
    payload holds the identifiers that were erased, and applying them would recreate the person."""
    blocked = consent_selectors.observations_suppressed([obs for _, obs in observations])
    if not blocked:
        return observations
    dropped = [observations[index][0] for index in sorted(blocked)]
    InboxMessage.objects.filter(id__in=dropped).delete()
    consent_services.suppression_hits_record(source=source.slug, count=len(dropped))
    return [item for index, item in enumerate(observations) if index not in blocked]


def _apply(observations: list[tuple[int, Observation]], rejected: dict[int, str]) -> list[int]:
    """Hand observations to profiles in bulk; if the batch fails for a reason that is not transient, apply them
    one by one so that only the failing messages are rejected. Returns the inbox ids applied."""
    if not observations:
        return []
    try:
        with transaction.atomic():
            _observations_and_consent_apply([obs for _, obs in observations])
        return [pk for pk, _ in observations]
    except TRANSIENT:
        raise
    except Exception:  # one bad message must not hold back the others: isolate it
        logger.warning("A batch of %d observations failed; applying them one by one.", len(observations))
    applied = []
    for pk, obs in observations:
        try:
            with transaction.atomic():
                _observations_and_consent_apply([obs])
            applied.append(pk)
        except TRANSIENT:
            raise
        except Exception as error:
            logger.warning("Inbox message %s could not be applied to profiles (%s).", pk, type(error).__name__)
            rejected[pk] = _reason(f"could not be applied to profiles: {type(error).__name__}: "
                                   f"{str(error).splitlines()[0] if str(error) else ''}")
    return applied


def _statuses_claimed(ids: list[int], now) -> None:
    """Mark claimed messages processed (in the claim's transaction, before they are applied): the one write every
    message needs, done while the batch is prepared (with lanes, while the batch before it is still applying).
    The few that end otherwise are rewritten by ``_statuses_write`` (rejected) or deleted (dropped) in the same
    transaction, so no other transaction ever sees a status that did not happen."""
    if not ids:
        return
    if connection.vendor == "postgresql":
        # A constant statement with a binary array: the ORM's IN (%s, ...) over hundreds of ids costs more.
        prepared_execute(connection, "UPDATE ingestion_inboxmessage SET status = %b, reason = '', processed_at = %b, "
                                     "attempts = attempts + 1 WHERE id = ANY(%b::bigint[])",
                         [InboxMessage.Status.PROCESSED.value, now, ids])
        return
    InboxMessage.objects.filter(id__in=ids).update(
        status=InboxMessage.Status.PROCESSED, reason="", processed_at=now, attempts=F("attempts") + 1)


def _statuses_write(*, rows: list[tuple], processed: list[int], rejected: dict[int, str], now) -> None:
    """The rejected messages of a batch (marked processed by ``_statuses_claimed``) get their status and reason,
    and the batch's messages are added to the live counts."""
    counts: dict[tuple[int, object], list[int]] = {}
    days: dict[object, object] = {}
    processed_ids = set(processed)
    for row in rows:
        if row[0] in processed_ids or row[0] in rejected:
            day = days.get(row[4]) or days.setdefault(row[4], count_day(row[4]))
            entry = counts.setdefault((row[1], day), [0, 0])
            entry[0 if row[0] in processed_ids else 1] += 1
    inbox_counts_add(counts={key: tuple(value) for key, value in counts.items()})
    if not rejected:
        return
    if connection.vendor == "postgresql":
        prepared_execute(connection, "UPDATE ingestion_inboxmessage AS m SET status = %b, reason = u.reason, "
                                     "processed_at = %b FROM unnest(%b::bigint[], %b::text[]) AS u(id, reason) "
                                     "WHERE m.id = u.id",
                         [InboxMessage.Status.REJECTED.value, now, list(rejected), list(rejected.values())])
        return
    by_reason: dict[str, list[int]] = {}
    for pk, reason in rejected.items():
        by_reason.setdefault(reason, []).append(pk)
    for reason, ids in by_reason.items():
        InboxMessage.objects.filter(id__in=ids).update(
            status=InboxMessage.Status.REJECTED, reason=reason, processed_at=now)


def _observations_of(source: Source, rows: list[tuple], rejected: dict[int, str]) -> list[tuple[int, Observation]]:
    """The tracking plan's verdicts, the source's transformations and the observations of one source's claimed
    messages (no profile is read or written yet). Blocked and invalid messages go into ``rejected``."""
    messages = [row[3] for row in rows]
    verdicts = plans_check(source=source, messages=messages)
    if len(verdicts) != len(messages):
        raise RuntimeError("plans_check must return one verdict per message.")
    passing = []
    for row, message, verdict in zip(rows, messages, verdicts, strict=True):
        if verdict.action == "block":
            rejected[row[0]] = _block_reason(verdict.violations)
        else:
            passing.append((row[0], message))
    if not passing:
        return []
    transformed = transforms_apply(source=source, messages=[message for _, message in passing])
    if len(transformed) != len(passing):
        raise RuntimeError("transforms_apply must return one message per message.")
    observations = []
    for (pk, _), message in zip(passing, transformed, strict=True):
        try:
            observations.append((pk, message_to_observation(message, source=source)))
        except MessageInvalid as error:
            rejected[pk] = _reason(str(error))
    return observations


@dataclass
class _Claimed:
    """A claimed batch, prepared: its rows, and the observations of each source (rejections decided so far)."""

    rows: list[tuple]
    orphans: int
    work: list[tuple[Source, list[tuple[int, Observation]]]]
    rejected: dict[int, str]
    now: datetime  # processed_at


def _batch_claim(*, source_id: int | None, limit: int) -> _Claimed | None:
    """Claim a batch in the current transaction and prepare it (plans, transformations, observations, the
    messages marked processed): the part that does not depend on what the batches before it wrote to profiles.
    None when nothing is pending."""
    rows = _claim(source_id=source_id, limit=limit)
    if not rows:
        return None
    sources = Source.objects.in_bulk({row[1] for row in rows})
    by_source: dict[int, list] = {}
    for row in rows:
        by_source.setdefault(row[1], []).append(row)
    orphans = [row[0] for sid in [sid for sid in by_source if sid not in sources] for row in by_source.pop(sid)]
    if orphans:
        # Stored while their source was being deleted (the inbox has no database constraint on the source):
        # they go the way of the source's other messages.
        logger.warning("Dropping %d inbox messages of deleted sources.", len(orphans))
        InboxMessage.objects.filter(pk__in=orphans).delete()
        rows = [row for row in rows if row[1] in sources]
    rejected: dict[int, str] = {}
    work = [(sources[sid], _observations_of(sources[sid], source_rows, rejected))
            for sid, source_rows in by_source.items()]
    now = timezone.now()
    _statuses_claimed([row[0] for row in rows], now)
    return _Claimed(rows=rows, orphans=len(orphans), work=work, rejected=rejected, now=now)


def _batch_apply(batch: _Claimed) -> BatchResult:
    """Apply a prepared batch to profiles and consent and write the messages' statuses (in the claim's
    transaction)."""
    processed: list[int] = []
    rejected = batch.rejected
    for source, observations in batch.work:
        processed += _apply(_suppressed_drop(source, observations), rejected)
    _statuses_write(rows=batch.rows, processed=processed, rejected=rejected, now=batch.now)
    return BatchResult(claimed=len(batch.rows) + batch.orphans, processed=len(processed), rejected=len(rejected),
                       dropped=batch.orphans)


def inbox_process_batch(*, source_id: int | None = None, limit: int | None = None) -> BatchResult:
    """Claim one batch of pending messages (of one source, or any) and process it. Returns what happened."""
    with transaction.atomic():
        batch = _batch_claim(source_id=source_id, limit=limit or batch_size())
        return _batch_apply(batch) if batch is not None else BatchResult()


def lanes() -> int:
    """Batches in flight at once in one ``inbox_process_pending`` call (see ``_Lanes``): 2 on PostgreSQL, 1 (no
    helper thread) on SQLite, whose single writer lock would serialize them anyway."""
    default = 2 if connection.vendor == "postgresql" else 1
    return max(1, int(getattr(settings, "INGESTION_PIPELINE_LANES", default)))


class _LaneStopped(Exception):
    """Another lane failed: stop without applying (the claimed messages stay pending)."""


class _Lanes:
    """Two (or more) batches in flight in one process, each in its own thread, connection and transaction: while
    one batch's statements run in PostgreSQL (libpq releases the GIL), the next one is claimed and prepared.
    Batches are claimed one at a time (so a later claim takes later messages) and numbered; each applies to
    profiles and commits only when the one claimed before it has committed, so they commit in claim order and a
    batch's profile reads, identity lookups and locks always see every earlier batch: the same outcome as one
    batch after the other, and no two lanes ever wait on each other's rows."""

    def __init__(self, *, source_id: int | None, limit: int, max_batches: int | None,
                 deadline: float | None) -> None:
        self.source_id, self.limit, self.max_batches, self.deadline = source_id, limit, max_batches, deadline
        self.claim_lock = threading.Lock()
        self.turn = threading.Condition()
        self.claimed_batches = 0  # tickets handed out
        self.serving = 0  # the ticket that may apply and commit now
        self.error: BaseException | None = None
        self.total = BatchResult()
        self.helpers: list[threading.Thread] = []  # the other lanes, not started yet
        self.started: list[threading.Thread] = []

    def _done(self, ticket: int) -> None:
        with self.turn:
            if self.serving == ticket:
                self.serving = ticket + 1
                self.turn.notify_all()

    def _wait(self, ticket: int) -> None:
        with self.turn:
            while self.serving != ticket and self.error is None:
                self.turn.wait()
            if self.error is not None:
                raise _LaneStopped

    def _more(self) -> bool:
        if self.error is not None:
            return False
        if self.max_batches is not None and self.claimed_batches >= self.max_batches:
            return False
        return self.deadline is None or time.monotonic() < self.deadline

    def run_lane(self) -> None:
        try:
            while True:
                ticket = None
                try:
                    with transaction.atomic():
                        with self.claim_lock:
                            if not self._more():
                                return
                            batch = _batch_claim(source_id=self.source_id, limit=self.limit)
                            if batch is None:
                                return
                            ticket = self.claimed_batches
                            self.claimed_batches += 1
                            if self.helpers and len(batch.rows) + batch.orphans >= self.limit:
                                self._helpers_start()  # a full batch: more may be pending
                        self._wait(ticket)
                        # The first commit hook: the next batch may apply while this one's profile_changed
                        # handlers run.
                        transaction.on_commit(lambda ticket=ticket: self._done(ticket))
                        result = _batch_apply(batch)
                finally:
                    if ticket is not None:
                        self._done(ticket)  # after a rollback too (a no-op after the hook)
                with self.turn:
                    self.total += result
        except _LaneStopped:
            return
        except BaseException as error:
            with self.turn:
                self.error = self.error or error
                self.turn.notify_all()

    def _helpers_start(self) -> None:
        """Start the other lanes (once, from the calling thread's lane, when its first batch was full: a run that
        finds one small batch, as after a single tracking call, opens no second connection)."""
        helpers, self.helpers = self.helpers, []
        for thread in helpers:
            thread.start()
        self.started = helpers

    def run(self, count: int) -> BatchResult:
        self.helpers = [threading.Thread(target=self._helper, name=f"inbox-lane-{n}", daemon=True)
                        for n in range(1, count)]
        self.run_lane()
        for thread in self.started:
            thread.join()
        if self.error is not None:
            raise self.error
        return self.total

    def _helper(self) -> None:
        try:
            self.run_lane()
        finally:
            connection.close()  # this thread's own connection


def inbox_process_pending(*, source_id: int | None = None, max_batches: int | None = None,
                          limit: int | None = None, deadline: float | None = None) -> BatchResult:
    """Process batches until nothing is pending (or ``max_batches`` were done, or ``time.monotonic()`` passed
    ``deadline``). On PostgreSQL, outside a transaction, with ``lanes()`` > 1, the next batch is claimed and
    prepared while the current one is applied (``_Lanes``); batches still commit one by one, in claim order."""
    limit = limit or batch_size()
    count = lanes()
    if count > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        return _Lanes(source_id=source_id, limit=limit, max_batches=max_batches, deadline=deadline).run(count)
    total = BatchResult()
    done = 0
    while max_batches is None or done < max_batches:
        result = inbox_process_batch(source_id=source_id, limit=limit)
        if not result.claimed:
            break
        total += result
        done += 1
        if deadline is not None and time.monotonic() >= deadline:
            break
    return total
