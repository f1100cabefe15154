"""The Segment-compatible HTTP Tracking API: POST /v1/identify, track, page, screen, group, alias and batch.

Follows Segment's HTTP Tracking API, so that Segment's client libraries work unchanged once pointed at this host:

- Auth: HTTP Basic with the write key as the user name (empty password), or ``writeKey`` in the body. An unknown
  key answers 401, a disabled source 403. These views authenticate by write key, not by user: they are not
  PermissionMixin views, and they are CSRF-exempt and sessionless.
- Limits: 32 KB per event, 500 KB per batch request (413). Bodies may be gzip-compressed
  (``Content-Encoding: gzip``); the limits apply to the uncompressed body.
- Clock skew: with ``sentAt`` (the client's clock when it sent), ``timestamp = receivedAt - (sentAt - timestamp)``;
  the client's own timestamp is kept as ``originalTimestamp``.
- Success answers 200 ``{"success": true}``. Bad input answers in the one JSON error format, naming each wrong
  field (``batch.3.userId``); in a batch the valid messages are stored all the same and the invalid ones are kept
  as rejected, with their reason, in the inbox.

Nothing else happens inside the request: the envelope check, one INSERT per request, the answer. Processing runs
later, in the ingestion queue.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from datetime import UTC, datetime

import orjson
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from cdp.core.errors import json_error
from ingestion import selectors
from ingestion.services.inbox import (
    MESSAGE_ID_MAX,
    inbox_reject_ids,
    inbox_store_serialized,
    message_id_of,
    rejected_raw,
    unstorable_reason,
)

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# The fields the server adds to an event (receivedAt, a corrected timestamp, a messageId) are not counted.
SERVER_FIELDS_ALLOWANCE = 256
ID_MAX = 255
# A batch of tiny items could otherwise fan out into hundreds of thousands of rows; no client batches this many.
MAX_BATCH_MESSAGES = 10_000
MAX_REPORTED_ERRORS = 100
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
OBJECT_FIELDS = ("traits", "properties", "context", "integrations")
TIME_FIELDS = ("timestamp", "sentAt", "originalTimestamp")
SUCCESS = b'{"success":true}'
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}
# A JSON escape that PostgreSQL's jsonb refuses (\u0000, or a surrogate that may be lone): only then is each
# message's text checked.
_SUSPICIOUS_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


# --- write keys -------------------------------------------------------------------------------------------------


def _basic_auth_key(request) -> str | None:
    """The user name of an HTTP Basic Authorization header ('' when the header is there but unusable)."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return ""
    return decoded.partition(":")[0]


# --- the body ---------------------------------------------------------------------------------------------------


class RequestRejected(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def _read_body(request, limit: int) -> bytes:
    """The uncompressed body, at most ``limit`` bytes (413 beyond)."""
    too_large = RequestRejected(413, "too_large", f"The request body is larger than {limit // 1024} KB.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    # Compressed bodies are limited after decompression; the compressed size only has to be plausible.
    raw_limit = limit if encoding in ("", "identity") else limit + 1024
    if length > raw_limit:
        raise too_large
    raw = request.read(raw_limit + 1)
    if len(raw) > raw_limit:
        raise too_large
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RequestRejected(415, "unsupported_encoding",
                              f"Content-Encoding {encoding!r} is not supported; use gzip or none.")
    decompressor = zlib.decompressobj(47 if encoding != "deflate" else 15)  # 47: gzip or zlib header
    try:
        body = decompressor.decompress(raw, limit + 1)
        if len(body) <= limit and not decompressor.eof:
            body += decompressor.flush()
    except zlib.error:
        raise RequestRejected(400, "invalid_encoding", "The body is not valid gzip data.") from None
    if len(body) > limit:
        raise too_large
    if not decompressor.eof:
        raise RequestRejected(400, "invalid_encoding", "The gzip data is truncated.")
    return body


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads and json.dumps with options build a decoder or encoder on every call.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constants)
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# orjson reads an integer of more than 64 bits as a float (precision lost, silently); the standard decoder keeps it
# whole. A run of 19 digits anywhere (in a string too: then it only costs the slower parse) sends the body there.
# Found by mapping every digit to "0" and everything else to " " (a regular expression for it takes 20 times as long).
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def _parse_json(body: bytes):
    """The JSON body. orjson parses the common body (UTF-8, no integer beyond 64 bits, nothing it refuses) about
    four times as fast; anything else (UTF-16 or -32, a byte order mark, a lone surrogate, NaN, an out-of-range
    number, malformed JSON) goes through the standard decoder, which gives the value or the error it always gave."""
    if _LONG_NUMBER not in body.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        # What json.loads does with bytes (UTF-8, -16 or -32 by the first bytes), with the decoder built once.
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except UnicodeDecodeError:
        raise RequestRejected(400, "invalid_json", "The body is not UTF-8 encoded JSON.") from None
    except RecursionError:
        raise RequestRejected(400, "invalid_json", "The JSON is nested too deeply.") from None
    except ValueError as error:
        raise RequestRejected(400, "invalid_json", f"The body is not valid JSON: {error}") from None


# --- the envelope -----------------------------------------------------------------------------------------------


def _time(value, field: str, errors: dict) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors[field] = ["Must be an ISO-8601 date-time string."]
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        elif parsed.tzinfo is not UTC:  # "Z" parses to UTC itself
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        errors[field] = ["Must be an ISO-8601 date-time string (years 1 to 9999, in UTC)."]
        return None
    return parsed


def _dumps(message: dict) -> bytes:
    """A message as compact UTF-8 JSON (orjson; what it refuses, an integer beyond 64 bits or a lone surrogate,
    through the standard encoder, "surrogatepass" keeping the surrogate for ``unstorable_reason`` to name)."""
    try:
        return orjson.dumps(message)
    except orjson.JSONEncodeError:
        return _encode(message).encode("utf-8", "surrogatepass")


def _iso(value: datetime) -> str:
    """UTC, to the millisecond (truncated), with a Z. (What ``isoformat(timespec="milliseconds")`` writes, a third
    of its cost: the keyword and the offset are the slow part; it is on the hot path of every event.)"""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.replace(tzinfo=None).isoformat()
    return text[:23] + "Z" if value.microsecond else text + ".000Z"


def _id_error(value, *, required_name: str | None = None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "Must be a string."
    if isinstance(value, str) and len(value) > ID_MAX:
        return f"Must be at most {ID_MAX} characters."
    if value == "" and required_name:
        return f"{required_name} must not be empty."
    return None


def envelope_check(message, *, call_type: str | None, received_at: datetime, batch_sent_at: datetime | None,
                   received_iso: str | None = None, batch_sent_iso: str | None = None) -> dict[str, list[str]]:
    """Check one message's envelope, and complete it in place (type, receivedAt, skew-corrected timestamp).
    Returns the errors by field (empty when the message is valid). ``received_iso`` and ``batch_sent_iso`` are
    the two times as text, computed once per request. (On the hot path of every stored event: the common case,
    string ids and objects where objects belong, is checked first and cheaply.)"""
    if not isinstance(message, dict):
        return {"": ["Must be a JSON object (a message)."]}
    errors: dict[str, list[str]] = {}
    get = message.get
    if call_type:
        message["type"] = call_type
    kind = get("type")
    if kind not in CALL_TYPES:
        errors["type"] = [f"Must be one of {', '.join(CALL_TYPES)}."]
    if "writeKey" in message:
        del message["writeKey"]

    user_id, anonymous_id = get("userId"), get("anonymousId")
    if user_id is not None and not (type(user_id) is str and len(user_id) <= ID_MAX) \
            and (error := _id_error(user_id)):
        errors["userId"] = [error]
    if anonymous_id is not None and not (type(anonymous_id) is str and len(anonymous_id) <= ID_MAX) \
            and (error := _id_error(anonymous_id)):
        errors["anonymousId"] = [error]
    if (user_id is None or user_id == "") and (anonymous_id is None or anonymous_id == ""):
        errors.setdefault("userId", []).append("A userId or an anonymousId is required.")
    for name in OBJECT_FIELDS:
        value = get(name)
        if value is not None and not isinstance(value, dict):
            errors[name] = ["Must be an object."]
    context = get("context")
    if context and isinstance(context, dict):
        for name in ("traits", "consent"):
            value = context.get(name)
            if value is not None and not isinstance(value, dict):
                errors[f"context.{name}"] = ["Must be an object."]
        external_ids = context.get("externalIds")
        if external_ids is not None and not isinstance(external_ids, list):
            errors["context.externalIds"] = ["Must be a list."]
    message_id = get("messageId")
    if message_id is not None:
        if not isinstance(message_id, str | int) or isinstance(message_id, bool):
            errors["messageId"] = ["Must be a string."]
        elif isinstance(message_id, str) and len(message_id) > MESSAGE_ID_MAX * 2:
            errors["messageId"] = [f"Must be at most {MESSAGE_ID_MAX * 2} characters."]

    if kind == "track":
        event = get("event")
        if not isinstance(event, str) or not event.strip():
            errors["event"] = ["The event name is required (a non-empty string)."]
        elif len(event) > 200:
            errors["event"] = ["Must be at most 200 characters."]
    elif kind == "page" or kind == "screen":
        for name in ("name", "category"):
            if get(name) is not None and not isinstance(message[name], str):
                errors[name] = ["Must be a string."]
    elif kind == "group":
        if get("groupId") in (None, ""):
            errors["groupId"] = ["The groupId is required."]
        elif error := _id_error(message["groupId"]):
            errors["groupId"] = [error]
    elif kind == "alias":
        if get("previousId") in (None, ""):
            errors["previousId"] = ["The previousId is required."]
        elif error := _id_error(message["previousId"]):
            errors["previousId"] = [error]
        if user_id in (None, ""):
            errors["userId"] = ["The userId is required on an alias call."]

    raw_timestamp, raw_original, raw_sent_at = get("timestamp"), get("originalTimestamp"), get("sentAt")
    timestamp = _time(raw_timestamp, "timestamp", errors) if raw_timestamp is not None else None
    original = _time(raw_original, "originalTimestamp", errors) if raw_original is not None else None
    own_sent_at = _time(raw_sent_at, "sentAt", errors) if raw_sent_at is not None else None
    if errors:
        return errors

    # Clock skew: the client's clock is off by (sentAt - receivedAt); its timestamp is corrected by as much.
    sent_at = own_sent_at or batch_sent_at
    client_time = timestamp or original
    if client_time is not None and sent_at is not None:
        try:
            corrected = received_at - (sent_at - client_time)
        except OverflowError:
            return {"sentAt": ["Too far from the timestamp to correct the clock skew."]}
        if "originalTimestamp" not in message:
            message["originalTimestamp"] = raw_timestamp or _iso(client_time)
        message["timestamp"] = _iso(corrected)
    elif client_time is None:
        message["timestamp"] = received_iso or _iso(received_at)
    if batch_sent_at is not None and own_sent_at is None:
        message["sentAt"] = batch_sent_iso or _iso(batch_sent_at)
    message["receivedAt"] = received_iso or _iso(received_at)
    return {}


# --- views ------------------------------------------------------------------------------------------------------


def _cors(request, response):
    """Browsers (analytics.js from another origin) need the CORS headers; server-side clients send no Origin."""
    if "HTTP_ORIGIN" in request.META:
        for header, value in CORS_HEADERS.items():
            response[header] = value
    return response


def _error(request, error: RequestRejected) -> JsonResponse:
    response = json_error(error.status, error.code, error.message, error.fields)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="tracking"'
    return _cors(request, response)


def _success(request) -> HttpResponse:
    return _cors(request, HttpResponse(SUCCESS, content_type="application/json"))


def _authenticate(request, body) -> selectors.SourceKey:
    key = _basic_auth_key(request)
    if key is None and isinstance(body, dict):
        key = body.get("writeKey")
        if key is not None and not isinstance(key, str):
            raise RequestRejected(401, "not_authenticated", "writeKey must be a string.")
    if not key:
        raise RequestRejected(401, "not_authenticated", "A write key is required: HTTP Basic auth with the write "
                                                        "key as the user name, or writeKey in the body.")
    source = selectors.source_key_lookup(key)
    if source is None:
        raise RequestRejected(401, "not_authenticated", "Unknown write key.")
    if not source.enabled:
        raise RequestRejected(403, "source_disabled", "This source is switched off.")
    return source


def _prefixed(errors: dict[str, list[str]], prefix: str) -> dict[str, list[str]]:
    if not prefix:
        return {(name or "body"): messages for name, messages in errors.items()}
    return {(f"{prefix}.{name}" if name else prefix): messages for name, messages in errors.items()}


def _handle(request, call_type: str | None) -> HttpResponse:
    received_at = timezone.now()
    limit = MAX_BATCH_BYTES if call_type is None else MAX_EVENT_BYTES
    source = None
    try:
        # A header key is checked before the body is read, so a wrong key costs nothing more.
        if request.META.get("HTTP_AUTHORIZATION"):
            source = _authenticate(request, None)
        try:
            body = _read_body(request, limit)
        except RequestRejected as error:
            if source is not None and error.status == 413:
                inbox_reject_ids(source_id=source.id, messages_with_reasons=[
                    ({"type": call_type or "batch", "size": int(request.META.get("CONTENT_LENGTH") or 0)},
                     error.message)])
            raise
        try:
            data = _parse_json(body)
        except RequestRejected as error:
            if source is not None:
                inbox_reject_ids(source_id=source.id, messages_with_reasons=[(rejected_raw(body), error.message)])
            raise
        if source is None:
            source = _authenticate(request, data)
        _accept(source.id, data, call_type, received_at, suspicious=bool(_SUSPICIOUS_ESCAPE.search(body)))
        return _success(request)
    except RequestRejected as error:
        return _error(request, error)


def _accept(source_id: int, data, call_type: str | None, received_at: datetime, *, suspicious: bool) -> None:
    """Store the valid messages and reject the others; raises RequestRejected to answer with the errors."""
    if not isinstance(data, dict):
        inbox_reject_ids(source_id=source_id, messages_with_reasons=[(data, "The body must be a JSON object.")])
        raise RequestRejected(400, "invalid", "The body must be a JSON object.")
    if call_type is None:
        messages, prefix = data.get("batch"), "batch"
        if not isinstance(messages, list):
            raise RequestRejected(400, "invalid", "The batch is not valid.", {"batch": ["Must be a list of messages."]})
        if not messages:
            raise RequestRejected(400, "invalid", "The batch is empty.", {"batch": ["Must not be empty."]})
        errors: dict[str, list[str]] = {}
        batch_sent_at = _time(data.get("sentAt"), "sentAt", errors)
        shared = {}
        for name in ("context", "integrations"):
            value = data.get(name)
            if value is not None and not isinstance(value, dict):
                errors[name] = ["Must be an object."]
            elif value:
                shared[name] = value
        if errors:
            raise RequestRejected(400, "invalid", "The batch is not valid.", errors)
    else:
        messages, prefix, batch_sent_at, shared = [data], "", None, {}

    if len(messages) > MAX_BATCH_MESSAGES:
        inbox_reject_ids(source_id=source_id, messages_with_reasons=[
            ({"type": "batch", "messages": len(messages)}, f"A batch holds at most {MAX_BATCH_MESSAGES} messages.")])
        raise RequestRejected(400, "invalid", "The batch is too long.",
                              {"batch": [f"Must hold at most {MAX_BATCH_MESSAGES} messages."]})

    received_iso = _iso(received_at)
    batch_sent_iso = _iso(batch_sent_at) if batch_sent_at is not None else None
    prepared: list[tuple[str, str, str]] = []
    rejected: list[tuple[object, str]] = []
    field_errors: dict[str, list[str]] = {}
    limit = MAX_EVENT_BYTES + SERVER_FIELDS_ALLOWANCE
    for index, message in enumerate(messages):
        if shared and isinstance(message, dict):
            for name, value in shared.items():
                own = message.get(name)
                message[name] = {**value, **own} if isinstance(own, dict) else (own if own is not None else value)
        errors = envelope_check(message, call_type=call_type, received_at=received_at, batch_sent_at=batch_sent_at,
                                received_iso=received_iso, batch_sent_iso=batch_sent_iso)
        if not errors:
            message_id = message_id_of(message)
            encoded = _dumps(message)
            if (size := len(encoded)) > limit:
                errors = {"": [f"The event is larger than {MAX_EVENT_BYTES // 1024} KB."]}
                message = {"type": message.get("type"), "messageId": message.get("messageId"), "size": size}
            else:
                text = encoded.decode("utf-8", "surrogatepass")
                if suspicious and (reason := unstorable_reason(text)):
                    errors = {"": [f"The message {reason}."]}
        if errors:
            if len(field_errors) < MAX_REPORTED_ERRORS:
                field_errors.update(_prefixed(errors, f"{prefix}.{index}" if prefix else ""))
            rejected.append((message, "; ".join(f"{name or 'message'}: {' '.join(texts)}"
                                                 for name, texts in errors.items())))
        else:
            prepared.append((message_id, message["type"], text))

    result = inbox_store_serialized(source_id=source_id, prepared=prepared, received_at=received_at)
    if not rejected:
        return
    inbox_reject_ids(source_id=source_id, messages_with_reasons=rejected)
    if call_type is not None:
        raise RequestRejected(400, "invalid", "The message is not valid.", field_errors)
    more = f" (the first {MAX_REPORTED_ERRORS} errors are listed)" if len(rejected) > MAX_REPORTED_ERRORS else ""
    raise RequestRejected(400, "invalid", f"{len(rejected)} of {len(messages)} messages are not valid and were "
                                          f"rejected{more}; the other {result.stored + result.duplicates} were "
                                          "accepted.", field_errors)


def _view(call_type: str | None):
    @csrf_exempt
    def view(request, *args, **kwargs):
        if request.method == "POST":
            return _handle(request, call_type)
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            for header, value in CORS_HEADERS.items():
                response[header] = value
            return response
        response = json_error(405, "method_not_allowed", "Only POST is allowed here.")
        response["Allow"] = "POST, OPTIONS"
        return response

    view.__name__ = f"tracking_{call_type or 'batch'}"
    view.__doc__ = f"POST /v1/{call_type or 'batch'} of the Segment-compatible Tracking API."
    return view


identify = _view("identify")
track = _view("track")
page = _view("page")
screen = _view("screen")
group = _view("group")
alias = _view("alias")
batch = _view(None)

__all__ = ["alias", "batch", "group", "identify", "page", "screen", "track"]
