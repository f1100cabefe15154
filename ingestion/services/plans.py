"""Tracking plans (like Segment Protocols): check messages against a source's plan, record violations, and replay
messages that a plan blocked once the plan is fixed.

What a plan checks:
- a track message: its ``properties`` against the schema of its event name; an event the plan does not name is
  "unplanned" and handled by ``plan.unplanned``;
- an identify message: its ``traits`` against ``plan.identify_schema`` (when there is one);
- other message types pass.

``plan.mode`` decides what a broken planned message gets: allow (processed, nothing checked or recorded), flag
(processed, violation recorded) or block (rejected by the pipeline with reason "blocked by tracking plan: ...",
violation recorded, replayable with blocked_messages_replay).

Validators are compiled once per plan version and kept in the process, so the hot path only validates.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from cdp.core.masking import mask, trait_kind
from cdp.core.services import audit_record
from ingestion.models import InboxMessage, PlanViolation, TrackingPlan
from ingestion.services.inbox import count_day, inbox_counts_add
from ingestion.services.plan_schemas import fast_validator

logger = logging.getLogger(__name__)

ALLOW, FLAG, BLOCK = "allow", "flag", "block"
MODES = (ALLOW, FLAG, BLOCK)
BLOCK_REASON_PREFIX = "blocked by tracking plan: "
MAX_VIOLATIONS_PER_MESSAGE = 20
MAX_EXAMPLES = 5
# Distinct unplanned event names kept as aggregates of their own, per source; the rest are counted together.
MAX_UNPLANNED_NAMES = 200
OTHER_UNPLANNED = "(other unplanned events)"
MAX_EVENT_NAME = 200
MAX_SCHEMA_BYTES = 64 * 1024
IDENTIFY = PlanViolation.IDENTIFY


@dataclass
class PlanVerdict:
    action: str  # "allow" | "flag" | "block"
    violations: list[dict] = field(default_factory=list)  # {"path", "message", "schema"}


# The verdict of a source without a plan, shared (verdicts are read, never changed).
_ALLOWED = PlanVerdict(ALLOW)


class PlanError(ValueError):
    """A plan that cannot be saved; ``field`` names what is wrong ("events.Order Completed", "mode", ...)."""

    def __init__(self, message: str, *, field: str = ""):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


# --- schemas -------------------------------------------------------------------------------------------------------

def _no_remote(uri: str):
    raise NoSuchResource(ref=uri)


# Only local references (#/$defs/...): a plan never makes the server fetch a URL.
_REGISTRY = Registry(retrieve=_no_remote)


def _refs(schema) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def schema_check(schema, *, where: str) -> None:
    """Raises PlanError (naming ``where``) unless ``schema`` is a valid JSON Schema (Draft 2020-12) object with
    local references only."""
    if not isinstance(schema, dict):
        raise PlanError("a JSON Schema is a JSON object, e.g. {\"type\": \"object\", \"properties\": {...}}",
                        field=where)
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise PlanError(f"a schema is at most {MAX_SCHEMA_BYTES // 1024} KB", field=where)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        at = "/".join(str(part) for part in exc.path)
        raise PlanError(f"not a valid JSON Schema: {exc.message}" + (f" (at {at})" if at else ""),
                        field=where) from None
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise PlanError(f"only local references (#/$defs/...) are allowed, not {ref[:80]!r}", field=where)
    try:
        _validator(schema).is_valid({})
    except Unresolvable as exc:
        raise PlanError(f"a reference cannot be resolved: {exc}", field=where) from None


def _validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=_REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)


def plan_validate(*, mode: str, unplanned: str, events, identify_schema) -> None:
    if mode not in MODES:
        raise PlanError(f"one of {', '.join(MODES)}", field="mode")
    if unplanned not in MODES:
        raise PlanError(f"one of {', '.join(MODES)}", field="unplanned")
    if not isinstance(events, dict):
        raise PlanError('an object of event name to JSON Schema: {"Order Completed": {...}}', field="events")
    for name, schema in events.items():
        if not name.strip() or len(name) > MAX_EVENT_NAME or name != name.strip():
            raise PlanError(f"an event name is 1 to {MAX_EVENT_NAME} characters without surrounding spaces",
                            field=f"events.{name}")
        schema_check(schema, where=f"events.{name}")
    if identify_schema is not None:
        schema_check(identify_schema, where="identify_schema")


# --- writes to plans -----------------------------------------------------------------------------------------------

@transaction.atomic
def tracking_plan_save(*, source, mode: str = FLAG, unplanned: str = ALLOW, events: dict | None = None,
                       identify_schema: dict | None = None, actor=None) -> TrackingPlan:
    """Create or replace the source's plan. Raises PlanError naming the event whose schema is wrong."""
    events = {} if events is None else events
    plan_validate(mode=mode, unplanned=unplanned, events=events, identify_schema=identify_schema)
    plan = TrackingPlan.objects.select_for_update().filter(source=source).first()
    created = plan is None
    if plan is None:
        plan = TrackingPlan(source=source, version=0)
    plan.mode, plan.unplanned, plan.events, plan.identify_schema = mode, unplanned, events, identify_schema
    plan.version += 1
    plan.save()
    audit_record(actor=actor, action="create" if created else "change", object_type="ingestion.trackingplan",
                 object_id=plan.pk,
                 summary=f"{source.slug}: mode {mode}, unplanned {unplanned}, {len(events)} event(s), "
                         f"identify schema {'yes' if identify_schema else 'no'}, version {plan.version}")
    return plan


@transaction.atomic
def tracking_plan_delete(*, plan: TrackingPlan, actor=None) -> None:
    audit_record(actor=actor, action="delete", object_type="ingestion.trackingplan",
                 object_id=plan.pk, summary=plan.source.slug)
    plan.delete()


# --- checking ------------------------------------------------------------------------------------------------------

@dataclass
class _Schema:
    """jsonschema's validator, with the fast check in front of it where the schema allows one."""

    validator: Draft202012Validator
    fast: Callable[[object], bool] | None


def _schema(schema: dict) -> _Schema:
    return _Schema(validator=_validator(schema), fast=fast_validator(schema))


@dataclass
class _Compiled:
    mode: str
    unplanned: str
    events: dict[str, _Schema]
    identify: _Schema | None


_cache: dict[int, tuple[tuple, _Compiled]] = {}
_cache_lock = threading.Lock()


def _compiled(plan: TrackingPlan) -> _Compiled:
    """Validators compiled once per plan version (and process)."""
    stamp = (plan.version, plan.updated_at)
    hit = _cache.get(plan.pk)
    if hit and hit[0] == stamp:
        return hit[1]
    compiled = _Compiled(
        mode=plan.mode, unplanned=plan.unplanned,
        events={name: _schema(schema) for name, schema in (plan.events or {}).items() if isinstance(schema, dict)},
        identify=_schema(plan.identify_schema) if isinstance(plan.identify_schema, dict) else None,
    )
    with _cache_lock:
        _cache[plan.pk] = (stamp, compiled)
    return compiled


def _describe(error) -> tuple[str, str]:
    """(path, message) of a jsonschema error, without the offending value (it may be personal data and would
    split the aggregation by value)."""
    path = [str(part) for part in error.absolute_path]
    validator, expected = error.validator, error.validator_value
    if validator == "required":
        match = re.match(r"^'(.+)' is a required property$", error.message)
        missing = match.group(1) if match else ""
        return ".".join([*path, missing] if missing else path), "is required"
    if validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        message = f"expected type {' or '.join(map(str, kinds))}"
    elif validator == "additionalProperties":
        message = error.message.split(" were unexpected")[0].replace("Additional properties are not allowed (", "")
        message = f"unexpected property {message.rstrip(')').replace(' was unexpected', '')}"
    elif validator in ("enum", "const"):
        message = f"expected one of {json.dumps(expected if validator == 'enum' else [expected])[:200]}"
    elif validator == "format":
        message = f"not a valid {expected}"
    elif validator == "pattern":
        message = f"does not match {expected}"
    elif validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                       "minItems", "maxItems", "multipleOf", "minProperties", "maxProperties", "uniqueItems"):
        message = f"{validator} {json.dumps(expected)}"
    else:
        message = f"fails {validator}"
    return ".".join(path), message[:300]


def _check(schema: _Schema, instance, prefix: str, schema_name: str) -> list[dict]:
    try:
        if schema.fast is not None:
            if schema.fast(instance):
                return []
        elif schema.validator.is_valid(instance):
            return []
        found = []
        for error in schema.validator.iter_errors(instance):
            path, message = _describe(error)
            found.append({"path": f"{prefix}.{path}" if path else prefix, "message": message, "schema": schema_name})
            if len(found) >= MAX_VIOLATIONS_PER_MESSAGE:
                break
        return found
    except Unresolvable as exc:
        return [{"path": prefix, "message": f"the plan's schema cannot be resolved: {exc}"[:300],
                 "schema": schema_name}]


def _verdict(compiled: _Compiled, message: dict) -> PlanVerdict:
    message_type = message.get("type")
    if message_type == "track":
        event = message.get("event")
        name = event if isinstance(event, str) else ""
        validator = compiled.events.get(name)
        if validator is None:
            if compiled.unplanned == ALLOW:
                return PlanVerdict(ALLOW)
            return PlanVerdict(compiled.unplanned, [{"path": PlanViolation.UNPLANNED_PATH,
                                                     "message": PlanViolation.UNPLANNED_MESSAGE,
                                                     "schema": name[:MAX_EVENT_NAME] or "(no event name)"}])
        if compiled.mode == ALLOW:
            return PlanVerdict(ALLOW)
        properties = message.get("properties")
        violations = _check(validator, {} if properties is None else properties, "properties", name)
    elif message_type == "identify" and compiled.identify is not None and compiled.mode != ALLOW:
        traits = message.get("traits")
        violations = _check(compiled.identify, {} if traits is None else traits, "traits", IDENTIFY)
    else:
        return PlanVerdict(ALLOW)
    return PlanVerdict(compiled.mode, violations) if violations else PlanVerdict(ALLOW)


def plans_check(*, source, messages: list[dict]) -> list[PlanVerdict]:
    """One verdict per message, in the same order. A source without a plan allows everything. Violations of
    flagged and blocked messages are recorded (aggregated, with masked examples)."""
    head = TrackingPlan.objects.filter(source=source).values_list("id", "version", "updated_at").first()
    if head is None:
        return [_ALLOWED] * len(messages)
    hit = _cache.get(head[0])
    compiled = hit[1] if hit and hit[0] == head[1:] else _compiled(TrackingPlan.objects.get(pk=head[0]))
    verdicts = [_verdict(compiled, message) for message in messages]
    violations_record(source=source, items=[(message, verdict) for message, verdict in zip(messages, verdicts,
                                                                                           strict=True)
                                            if verdict.violations])
    return verdicts


def block_reason(verdict: PlanVerdict) -> str:
    """The inbox reason for a blocked message: "blocked by tracking plan: <schema> <path>: <message>; ..."."""
    parts = [f"{v['schema']} {v['path']}: {v['message']}" for v in verdict.violations[:5]]
    more = len(verdict.violations) - len(parts)
    return BLOCK_REASON_PREFIX + "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --- recording violations -------------------------------------------------------------------------------------------

_EMAILISH = re.compile(r"@")
_PHONEISH = re.compile(r"^\+?[\d\s()./-]{7,}$")
IDENTIFIER_KEYS = {"userId": "text", "anonymousId": "text", "user_id": "text", "anonymous_id": "text",
                   "phone_number": "phone", "mobile": "phone", "ip": "text", "address": "text"}
SNIPPET_STRING_LIMIT = 40
SNIPPET_KEYS_LIMIT = 20


def masked(value, key: str = ""):
    """A value fit for an example: personal data masked by its key or its look, long text shortened."""
    if isinstance(value, dict):
        items = list(value.items())[:SNIPPET_KEYS_LIMIT]
        out = {str(k): masked(v, str(k)) for k, v in items}
        if len(value) > SNIPPET_KEYS_LIMIT:
            out["…"] = f"{len(value) - SNIPPET_KEYS_LIMIT} more"
        return out
    if isinstance(value, list):
        return [masked(item, key) for item in value[:5]] + (["…"] if len(value) > 5 else [])
    if not isinstance(value, str):
        return value
    kind = trait_kind(key) or IDENTIFIER_KEYS.get(key)
    if kind:
        return mask(value, kind)
    if _EMAILISH.search(value):
        return mask(value, "email")
    if _PHONEISH.match(value):
        return mask(value, "phone")
    return value if len(value) <= SNIPPET_STRING_LIMIT else mask(value, "text")


def _snippet(message: dict, path: str) -> dict:
    body_key = "traits" if message.get("type") == "identify" else "properties"
    snippet = {"messageId": str(message.get("messageId", ""))[:128], "type": message.get("type")}
    if message.get("event"):
        snippet["event"] = str(message["event"])[:MAX_EVENT_NAME]
    body = message.get(body_key)
    snippet[body_key] = masked(body) if isinstance(body, dict) else masked(body, body_key)
    return snippet


def violations_record(*, source, items: list[tuple[dict, PlanVerdict]], now: datetime | None = None) -> int:
    """Aggregate the violations of a batch per (schema, path, message) and add them to the counts, with up to
    MAX_EXAMPLES recent examples each. Returns how many aggregates were touched."""
    if not items:
        return 0
    now = now or timezone.now()
    batch: dict[tuple[str, str, str], dict] = {}
    for message, verdict in items:
        for violation in verdict.violations:
            key = (violation["schema"][:200], violation["path"][:255], violation["message"][:300])
            entry = batch.setdefault(key, {"count": 0, "blocked": 0, "examples": []})
            entry["count"] += 1
            entry["blocked"] += verdict.action == BLOCK
            if len(entry["examples"]) < MAX_EXAMPLES:
                entry["examples"].append({"at": now.isoformat(), "action": verdict.action,
                                          "message": _snippet(message, violation["path"])})
    _unplanned_cap(source, batch)
    with transaction.atomic():
        PlanViolation.objects.bulk_create(
            [PlanViolation(source=source, schema=s, path=p, message=m, count=0, first_seen=now, last_seen=now)
             for s, p, m in batch], ignore_conflicts=True)
        keys = Q()
        for schema, path, message in batch:
            keys |= Q(schema=schema, path=path, message=message)
        rows = list(PlanViolation.objects.select_for_update().filter(keys, source=source).order_by("id"))
        for row in rows:
            entry = batch.get((row.schema, row.path, row.message))
            if entry is None:
                continue
            row.count += entry["count"]
            row.blocked += entry["blocked"]
            row.last_seen = now
            row.examples = (entry["examples"][::-1] + list(row.examples or []))[:MAX_EXAMPLES]
        PlanViolation.objects.bulk_update(rows, ["count", "blocked", "last_seen", "examples"])
    return len(rows)


def _unplanned_cap(source, batch: dict[tuple[str, str, str], dict]) -> None:
    """Event names are the client's to choose: past MAX_UNPLANNED_NAMES aggregates of unplanned events per source,
    new names are counted together under OTHER_UNPLANNED (their examples keep the names), so that a client sending
    a new name per message cannot grow the table without bound. Two workers at the cap at once may each add one."""
    path, message = PlanViolation.UNPLANNED_PATH, PlanViolation.UNPLANNED_MESSAGE
    other = (OTHER_UNPLANNED, path, message)
    names = [key for key in batch if key[1] == path and key[2] == message and key != other]
    if not names:
        return
    rows = PlanViolation.objects.filter(source=source, path=path, message=message).exclude(schema=OTHER_UNPLANNED)
    known = set(rows.filter(schema__in=[key[0] for key in names]).values_list("schema", flat=True))
    new = [key for key in names if key[0] not in known]
    room = MAX_UNPLANNED_NAMES - rows.count() if new else 0
    for key in new[max(room, 0):]:
        entry = batch.pop(key)
        folded = batch.setdefault(other, {"count": 0, "blocked": 0, "examples": []})
        folded["count"] += entry["count"]
        folded["blocked"] += entry["blocked"]
        folded["examples"] += entry["examples"][:MAX_EXAMPLES - len(folded["examples"])]


@transaction.atomic
def violations_clear(*, source, actor=None) -> int:
    deleted, _ = PlanViolation.objects.filter(source=source).delete()
    audit_record(actor=actor, action="delete", object_type="ingestion.planviolation",
                 summary=f"{source.slug}: {deleted} violation aggregate(s) cleared")
    return deleted


# --- replay --------------------------------------------------------------------------------------------------------

def blocked_messages(source):
    return InboxMessage.objects.filter(source=source, status=InboxMessage.Status.REJECTED,
                                       reason__startswith=BLOCK_REASON_PREFIX)


@transaction.atomic
def blocked_messages_replay(*, source, message_ids: list[int] | None = None, event: str | None = None,
                            since: datetime | None = None, actor=None) -> int:
    """Put messages the plan blocked back to pending (all of the source's, or those given by id, of one track
    event, or "identify" for identify calls, or received since a time) and enqueue processing on commit. They are
    checked against the plan as it is then. Returns how many were replayed."""
    messages = blocked_messages(source)
    if message_ids is not None:
        messages = messages.filter(pk__in=message_ids)
    if event == IDENTIFY:
        messages = messages.filter(type="identify")
    elif event:
        messages = messages.filter(type="track", payload__event=event)
    if since is not None:
        messages = messages.filter(received_at__gte=since)
    by_day: dict = {}
    ids = []
    for pk, received_at in messages.select_for_update().values_list("pk", "received_at"):
        ids.append(pk)
        key = (source.pk, count_day(received_at))
        by_day[key] = (0, by_day.get(key, (0, 0))[1] - 1)
    replayed = 0
    for start in range(0, len(ids), 1000):
        replayed += InboxMessage.objects.filter(pk__in=ids[start:start + 1000]).update(
            status=InboxMessage.Status.PENDING, reason="", processed_at=None)
    inbox_counts_add(counts=by_day)
    if replayed:
        source_id = source.pk
        transaction.on_commit(lambda: _enqueue_processing(source_id))
        audit_record(actor=actor, action="change", object_type="ingestion.inboxmessage",
                     summary=f"{source.slug}: {replayed} message(s) blocked by the tracking plan replayed")
    return replayed


def _enqueue_processing(source_id: int) -> None:
    from ingestion.tasks import inbox_process  # the pipeline's task

    try:
        inbox_process.delay(source_id=source_id)
    except Exception:  # the messages are pending again; the periodic sweep enqueues them once the broker is back
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        logger.warning("Could not enqueue processing of replayed messages of source %s; the sweep will.",
                       source_id, exc_info=True)
