"""Field mapping: a record (a CSV row, a database row, a webhook body) to a Segment message. Pure functions, no DB.

A mapping spec is JSON::

    {"type": "identify" | "track" | "page" | "screen" | "group" | "alias",
     "event": "<event name>" or null,          # a fixed event name (track) or page/screen name
     "event_from": "<record field>" or null,    # ... or the record field that holds it
     "fields": [{"from": "<record field, dotted path>", "to": "<target>",
                 "type": "string|integer|float|boolean|datetime|date",   # optional: as it is when left out
                 "format": "%d.%m.%Y"}]}                                 # optional, for datetime and date

Targets: userId, anonymousId, messageId, timestamp, event, externalId, traits.<x>, properties.<x>, context.<x>
(``<x>`` may be dotted, for nested objects), consent.<purpose key> and consentTimestamp. ``traits.<x>`` lands in
``traits`` for identify and group messages and in ``context.traits`` for the others, as Segment's spec has it.
``externalId`` becomes an item of ``context.externalIds`` with the source's slug as its type, which processing turns
into the identity ("record", "<slug>:<id>").

A field mapped to ``consent.<purpose key>`` holds a person's decision about that purpose (granted/denied, yes/no,
true/false, 1/0, y/n, ja/nein, opt-in/opt-out, any case; empty means no decision). The decisions go out as the
tracking API's ``context.consent.categoryPreferences`` ({purpose key: true/false}), so the pipeline records them the
same way (consent.services.consent_observations_apply: changed decisions only), with ``context.consent.proof`` (the
spec's optional ``consent_proof``: ``text_version``, ``form_url``, and what the caller adds: the file and row) and
``context.consent.timestamp`` (the field mapped to ``consentTimestamp``; else the message's time).

An empty value (None or "") is left out of the message rather than coerced. A value that cannot be coerced raises
MappingError naming the record field, so an importer can report the row and keep the others. A consent value or
consent time that cannot be read does not cost the row its other fields: it is left out and, when the caller passes
a ``problems`` list, reported there (MappingError naming the field) instead of raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from typing import Any

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
TYPES = ("string", "integer", "float", "boolean", "datetime", "date")
ROOT_TARGETS = ("userId", "anonymousId", "messageId", "timestamp", "event", "externalId", "previousId", "groupId")
PREFIX_TARGETS = ("traits", "properties", "context")
IDENTITY_TARGETS = ("userId", "anonymousId", "externalId")
FIELD_KEYS = {"from", "to", "type", "format"}
SPEC_KEYS = {"type", "event", "event_from", "fields", "consent_proof"}
_NAME = re.compile(r"^[A-Za-z_$][\w$\-]*$")

# Consent: a field mapped to consent.<purpose key> (a Purpose's slug), and the time of the decisions.
CONSENT_PREFIX = "consent"
CONSENT_TIME = "consentTimestamp"
CONSENT_PROOF_KEYS = {"text_version": 100, "form_url": 500}  # key: at most so many characters
CONSENT_GRANTED = frozenset({"granted", "grant", "yes", "y", "true", "1", "ja", "j", "opt-in", "optin", "opt_in",
                             "opted-in", "opted_in"})
CONSENT_REFUSED = frozenset({"denied", "deny", "withdrawn", "withdraw", "no", "n", "false", "0", "nein",
                             "opt-out", "optout", "opt_out", "opted-out", "opted_out"})
CONSENT_WORDS = "granted/denied/withdrawn, yes/no, true/false, 1/0, y/n, ja/nein, opt-in/opt-out"
_PURPOSE_KEY = re.compile(r"^[-a-zA-Z0-9_]+$")

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on", "ja", "j"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off", "nein"})
_INTEGER = re.compile(r"^[+-]?\d+$")
_INTEGRAL_FLOAT = re.compile(r"^[+-]?\d+\.0*$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31
MISSING = object()


class MappingError(ValueError):
    """A wrong spec (``field`` is the path in the spec, e.g. "fields.2.to") or a value that cannot be coerced
    (``field`` is the record field)."""

    def __init__(self, message: str = "", *, field: str = ""):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


# --- coercion (also used by the transformations) ------------------------------------------------------------------

def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_string(value: Any, fmt: str | None = None) -> str:
    if isinstance(value, dict | list):
        raise ValueError("expected a text value, got an object or a list")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_integer(value: Any, fmt: str | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"expected an integer, got {_short(value)}")
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.match(text):
            return int(text)
        if _INTEGRAL_FLOAT.match(text):
            return int(text.split(".")[0])
    raise ValueError(f"expected an integer, got {_short(value)}")


def to_float(value: Any, fmt: str | None = None) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _FLOAT.match(value.strip()):
        number = float(value.strip())
    else:
        raise ValueError(f"expected a number, got {_short(value)}")
    if math.isnan(number) or math.isinf(number):
        raise ValueError("expected a finite number")
    return number


def _decision(value: Any, yes: frozenset, no: frozenset) -> bool | None:
    """True or False for a boolean, 0 or 1, or one of the words (any case); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in yes:
            return True
        if word in no:
            return False
    return None


def to_boolean(value: Any, fmt: str | None = None) -> bool:
    decided = _decision(value, TRUE_WORDS, FALSE_WORDS)
    if decided is None:
        raise ValueError(f"expected a boolean (true/false, yes/no, 1/0), got {_short(value)}")
    return decided


def to_consent(value: Any) -> bool | None:
    """A consent decision: True (granted), False (denied or withdrawn) or None (empty: no decision). Raises
    ValueError naming the value when it is none of the accepted words."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    decided = _decision(value, CONSENT_GRANTED, CONSENT_REFUSED)
    if decided is None:
        raise ValueError(f"not a consent decision: {_short(value)} (expected {CONSENT_WORDS})")
    return decided


def parse_datetime(value: Any, fmt: str | None = None) -> datetime:
    """ISO 8601 (a trailing Z too), epoch seconds or milliseconds, or ``fmt`` (strptime). Naive means UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if abs(seconds) > _MAX_EPOCH_SECONDS:
            seconds /= 1000.0  # milliseconds
        if math.isnan(seconds) or abs(seconds) > _MAX_EPOCH_SECONDS:
            raise ValueError(f"expected a date and time, got {_short(value)}")
        return datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if fmt:
                parsed = datetime.strptime(text, fmt)  # noqa: DTZ007 - naive means UTC, below
            elif _INTEGER.match(text):
                return parse_datetime(int(text))
            else:
                parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        except ValueError:
            expected = f"the format {fmt}" if fmt else "ISO 8601 (2024-05-31T12:00:00Z) or epoch seconds"
            raise ValueError(f"expected a date and time in {expected}, got {_short(value)}") from None
    else:
        raise ValueError(f"expected a date and time, got {_short(value)}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any, fmt: str | None = None) -> date:
    """ISO date (2024-05-31), an ISO date and time (its date part), or ``fmt`` (strptime)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if fmt:
                return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date has no zone
            if len(text) == 10:
                return date.fromisoformat(text)
            return parse_datetime(text).date()
        except ValueError:
            expected = f"the format {fmt}" if fmt else "ISO 8601 (2024-05-31)"
            raise ValueError(f"expected a date in {expected}, got {_short(value)}") from None
    raise ValueError(f"expected a date, got {_short(value)}")


def _datetime_json(value: Any, fmt: str | None = None) -> str:
    return parse_datetime(value, fmt).isoformat().replace("+00:00", "Z")


def _date_json(value: Any, fmt: str | None = None) -> str:
    return parse_date(value, fmt).isoformat()


# Coercions to JSON-ready values (dates as ISO strings: a message is JSON).
COERCE: dict[str, Callable[[Any, str | None], Any]] = {
    "string": to_string,
    "integer": to_integer,
    "float": to_float,
    "boolean": to_boolean,
    "datetime": _datetime_json,
    "date": _date_json,
}


def coerce(value: Any, type_name: str | None, fmt: str | None = None) -> Any:
    """``value`` as ``type_name``; raises ValueError with a message that says what was expected."""
    if not type_name:
        return value
    return COERCE[type_name](value, fmt)


# --- paths ---------------------------------------------------------------------------------------------------------

def get_path(record: Any, path: str) -> Any:
    """The value at a dotted path, or MISSING. A key that holds the dots literally wins (CSV headers like
    "address.city")."""
    if isinstance(record, dict) and path in record:
        return record[path]
    current = record
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def set_path(target: dict, parts: list[str] | tuple[str, ...], value: Any) -> None:
    current = target
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = current[part] = {}
        current = nxt
    current[parts[-1]] = value


def target_valid(target: Any) -> str | None:
    """None when ``target`` is a valid mapping target, else why not."""
    if not isinstance(target, str) or not target:
        return "a target is needed"
    if target in ROOT_TARGETS or target == CONSENT_TIME:
        return None
    head, _, rest = target.partition(".")
    if head == CONSENT_PREFIX:
        if not _PURPOSE_KEY.match(rest):
            return f"{target!r} needs a purpose key after 'consent.' (consent.email_marketing)"
        return None
    if head not in PREFIX_TARGETS:
        return (f"unknown target {target!r}; one of {', '.join(ROOT_TARGETS)}, "
                f"or traits.<name>, properties.<name>, context.<name>, consent.<purpose>, {CONSENT_TIME}")
    if not rest or not all(_NAME.match(part) for part in rest.split(".")):
        return f"{target!r} needs a name after '{head}.' (letters, digits, _ and -, dotted for nested)"
    if target in ("context.externalIds", "context.traits"):
        return f"{target!r} is set by the mapping itself; map to externalId or traits.<name>"
    return None


# --- the spec ------------------------------------------------------------------------------------------------------

def consent_purpose(target: str) -> str | None:
    """The purpose key of a ``consent.<purpose>`` target, else None."""
    head, dot, rest = target.partition(".") if isinstance(target, str) else ("", "", "")
    return rest if head == CONSENT_PREFIX and dot and rest else None


def _consent_proof_validate(spec: dict, consent_fields: bool) -> None:
    proof = spec.get("consent_proof")
    if proof is None:
        return
    if not isinstance(proof, dict):
        raise MappingError('an object {"text_version": ..., "form_url": ...}', field="consent_proof")
    unknown = set(proof) - set(CONSENT_PROOF_KEYS)
    if unknown:
        raise MappingError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                           f"{', '.join(sorted(CONSENT_PROOF_KEYS))}", field=f"consent_proof.{sorted(unknown)[0]}")
    for key, limit in CONSENT_PROOF_KEYS.items():
        value = proof.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            raise MappingError(f"a text of at most {limit} characters", field=f"consent_proof.{key}")
        if key == "form_url" and value and not re.match(r"^https?://[^\s/]+\S*$", value):
            raise MappingError("an http:// or https:// address", field="consent_proof.form_url")
    if proof and not consent_fields:
        raise MappingError("the consent proof belongs to decisions: map a field to consent.<purpose>, or leave it "
                           "out", field="consent_proof")


def mapping_validate(spec: dict, *, purposes: Collection[str] | None = None) -> None:
    """Raises MappingError naming the wrong path in the spec. With ``purposes`` (the purpose keys that exist), a
    field mapped to consent.<purpose> must name one of them."""
    if not isinstance(spec, dict):
        raise MappingError("a mapping is a JSON object", field="")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise MappingError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(SPEC_KEYS))}",
                           field=sorted(unknown)[0])
    message_type = spec.get("type")
    if message_type not in MESSAGE_TYPES:
        raise MappingError(f"one of {', '.join(MESSAGE_TYPES)}", field="type")
    for key in ("event", "event_from"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise MappingError("a non-empty text or null", field=key)
    fields = spec.get("fields")
    if not isinstance(fields, list) or not fields:
        raise MappingError("a list with at least one field mapping", field="fields")
    seen: dict[str, int] = {}
    for index, item in enumerate(fields):
        where = f"fields.{index}"
        if not isinstance(item, dict):
            raise MappingError('a field mapping is an object {"from": ..., "to": ..., "type": ...}', field=where)
        unknown = set(item) - FIELD_KEYS
        if unknown:
            raise MappingError(f"unknown key(s) {', '.join(sorted(unknown))}", field=f"{where}.{sorted(unknown)[0]}")
        source_field = item.get("from")
        if not isinstance(source_field, str) or not source_field.strip():
            raise MappingError("the record field to read, a non-empty text", field=f"{where}.from")
        problem = target_valid(item.get("to"))
        if problem:
            raise MappingError(problem, field=f"{where}.to")
        target = item["to"]
        if target in seen and target != "externalId":
            raise MappingError(f"{target!r} is mapped twice (also by fields.{seen[target]})", field=f"{where}.to")
        seen[target] = index
        type_name = item.get("type")
        if type_name is not None and type_name not in TYPES:
            raise MappingError(f"unknown type {type_name!r}; one of {', '.join(TYPES)}", field=f"{where}.type")
        fmt = item.get("format")
        if fmt is not None:
            if type_name not in ("datetime", "date"):
                raise MappingError("a format applies to the types datetime and date only", field=f"{where}.format")
            if not isinstance(fmt, str) or "%" not in fmt:
                raise MappingError("a strptime format such as %d.%m.%Y", field=f"{where}.format")
        if target in ("timestamp", CONSENT_TIME) and type_name not in (None, "datetime"):
            raise MappingError(f"{target} takes the type datetime", field=f"{where}.type")
        purpose = consent_purpose(target)
        if purpose is not None:
            if type_name not in (None, "boolean"):
                raise MappingError(f"a consent decision is read as {CONSENT_WORDS}: leave the type empty",
                                   field=f"{where}.type")
            if purposes is not None and purpose not in purposes:
                known = ", ".join(sorted(purposes)) or "none yet"
                raise MappingError(f"unknown consent purpose {purpose!r}; the purposes are: {known}",
                                   field=f"{where}.to")
    consent_fields = any(consent_purpose(target) for target in seen)
    if CONSENT_TIME in seen and not consent_fields:
        raise MappingError(f"{CONSENT_TIME} is the time of consent decisions: map a field to consent.<purpose> too",
                           field=f"fields.{seen[CONSENT_TIME]}.to")
    _consent_proof_validate(spec, consent_fields)
    if not any(target in seen for target in IDENTITY_TARGETS):
        raise MappingError("map at least one of userId, anonymousId or externalId, so a record names its person",
                           field="fields")
    if message_type == "track" and not (spec.get("event") or spec.get("event_from") or "event" in seen):
        raise MappingError("a track mapping needs an event name: event, event_from or a field mapped to event",
                           field="event")


def mapping_apply(spec: dict, record: dict, *, source_slug: str, collection: str = "", proof: dict | None = None,
                  problems: list[MappingError] | None = None) -> dict:
    """A Segment message from ``record``. The spec is assumed valid (mapping_validate). Raises
    MappingError(field=<record field>, message=...) for a value that cannot be coerced. A consent value or consent
    time that cannot be read is left out and appended to ``problems`` (raised when no list is given). ``proof`` is
    added to the consent proof of the record's decisions (the file and row it came from)."""
    if not isinstance(record, dict):
        raise MappingError("a record is an object of fields", field="")
    message_type = spec["type"]
    message: dict[str, Any] = {"type": message_type}
    traits_home = ("traits",) if message_type in ("identify", "group") else ("context", "traits")
    event = spec.get("event")
    if spec.get("event_from"):
        value = get_path(record, spec["event_from"])
        if value not in (MISSING, None, ""):
            event = to_string(value).strip() or event
    external_ids: list[dict] = []
    preferences: dict[str, bool] = {}
    consent_at = None

    def problem(error: MappingError) -> None:
        if problems is None:
            raise error
        problems.append(error)

    for item in spec["fields"]:
        value = get_path(record, item["from"])
        if value is MISSING or value is None or (isinstance(value, str) and not value.strip()):
            continue
        purpose = consent_purpose(item["to"])
        if purpose is not None:
            try:
                decision = to_consent(value)
            except ValueError as exc:
                problem(MappingError(f"{exc}; the row's other fields were kept", field=item["from"]))
            else:
                if decision is not None:
                    preferences[purpose] = decision
            continue
        if item["to"] == CONSENT_TIME:
            try:
                consent_at = _consent_time(value, item.get("format"))
            except ValueError as exc:
                problem(MappingError(f"{exc}; the decisions take the row's time", field=item["from"]))
            continue
        try:
            value = coerce(value, item.get("type"), item.get("format"))
        except ValueError as exc:
            raise MappingError(str(exc), field=item["from"]) from None
        target = item["to"]
        if target == "externalId":
            external_ids.append({"id": to_string(value), "type": source_slug, "collection": collection,
                                 "encoding": "none"})
        elif target == "event":
            event = to_string(value)
        elif target == "timestamp":
            message["timestamp"] = value if item.get("type") else _timestamp(value, item["from"])
        elif target in ROOT_TARGETS:
            message[target] = to_string(value)
        else:
            head, _, rest = target.partition(".")
            parts = rest.split(".")
            if head == "traits":
                set_path(message, [*traits_home, *parts], value)
            else:
                set_path(message, [head, *parts], value)
    if external_ids:
        message.setdefault("context", {})["externalIds"] = external_ids
    if preferences:
        consent: dict[str, Any] = {"categoryPreferences": preferences}
        given = {key: value for key, value in (spec.get("consent_proof") or {}).items() if value}
        if proof or given:
            consent["proof"] = {**(proof or {}), **given}
        if consent_at:
            consent["timestamp"] = consent_at
        message.setdefault("context", {})["consent"] = consent
    if event:
        message["name" if message_type in ("page", "screen") else "event"] = event
    elif message_type == "track":
        raise MappingError("the record has no event name", field=spec.get("event_from") or "event")
    if not (message.get("userId") or message.get("anonymousId") or external_ids):
        names = [item["from"] for item in spec["fields"] if item["to"] in IDENTITY_TARGETS]
        raise MappingError("the record has no value for userId, anonymousId or externalId",
                           field=", ".join(names))
    return message


def _consent_time(value: Any, fmt: str | None) -> str:
    moment = parse_datetime(value, fmt)
    if moment > datetime.now(UTC):
        raise ValueError(f"the consent time {_short(value)} is in the future")
    return moment.isoformat().replace("+00:00", "Z")


def _timestamp(value: Any, field: str) -> str:
    try:
        return _datetime_json(value)
    except ValueError as exc:
        raise MappingError(str(exc), field=field) from None
