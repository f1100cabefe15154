"""POST /v1/webhook/<source slug>: any JSON, turned into messages by the source's field mapping.

Authentication is by the source's write key, like the tracking API: HTTP Basic with the write key as the user
name, or ``?key=<write key>`` in the URL for the many senders that can only be given a URL. The key must be this
source's. An unknown key answers 401, a disabled source 403. These views authenticate by write key, not by user:
they are not PermissionMixin views, and they are CSRF-exempt and sessionless.

A JSON object is one record, a JSON array (or the list at the source's ``records_path``) many. Valid records are
stored (200 ``{"success": true, "stored": n, "duplicates": d}``, with ``"warnings": {"<field>": [...]}`` when a
value was left out of a stored record, such as a consent decision that cannot be read); bad ones are kept as
rejected with their reason, and the answer is 400 in the one error format naming each bad field (``2.email``),
saying how many were stored.
Bodies may be gzip-compressed; at most 1 MB uncompressed.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from cdp.core.errors import json_error
from ingestion.api.tracking import RequestRejected, _basic_auth_key, _parse_json, _read_body
from ingestion.models import Source
from ingestion.services import connectors
from ingestion.services.inbox import inbox_reject, rejected_raw
from ingestion.services.sources import write_key_hash

MAX_REPORTED_ERRORS = 100


def _error(error: RequestRejected) -> JsonResponse:
    response = json_error(error.status, error.code, error.message, error.fields)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="webhook"'
    return response


def _authenticate(request, slug: str) -> Source:
    key = _basic_auth_key(request)
    if key is None:
        key = request.GET.get("key")
    if not key:
        raise RequestRejected(401, "not_authenticated", "A write key is required: HTTP Basic auth with the write key "
                                                        "as the user name, or ?key=<write key> in the URL.")
    source = Source.objects.filter(write_key_hash=write_key_hash(key)).first()
    if source is None or source.slug != slug:
        raise RequestRejected(401, "not_authenticated", "Unknown write key for this webhook.")
    if source.kind != Source.Kind.WEBHOOK:
        raise RequestRejected(404, "not_found", f"{slug!r} is not a webhook source.")
    if not source.enabled:
        raise RequestRejected(403, "source_disabled", "This source is switched off.")
    return source


@csrf_exempt
def webhook(request, slug: str):
    """Receive a webhook delivery for the source ``slug``."""
    if request.method != "POST":
        response = json_error(405, "method_not_allowed", "Only POST is allowed here.")
        response["Allow"] = "POST"
        return response
    received_at = timezone.now()
    source = None
    try:
        source = _authenticate(request, slug)
        body = _read_body(request, connectors.WEBHOOK_MAX_BODY_BYTES)
        try:
            data = _parse_json(body)
        except RequestRejected as error:
            inbox_reject(source=source, messages_with_reasons=[(rejected_raw(body), error.message)])
            raise
        try:
            result = connectors.webhook_receive(source=source, body=data, received_at=received_at)
        except connectors.ConnectorError as error:
            inbox_reject(source=source, messages_with_reasons=[(rejected_raw(body), error.message)])
            raise RequestRejected(400, "invalid", error.message, error.fields) from None
    except RequestRejected as error:
        if source is not None and error.status == 413:
            inbox_reject(source=source, messages_with_reasons=[
                ({"type": "webhook", "size": int(request.META.get("CONTENT_LENGTH") or 0)}, error.message)])
        return _error(error)
    accepted = result.stored + result.duplicates
    bad = result.received - accepted
    if bad:
        fields = dict(list({**result.warnings, **result.errors}.items())[:MAX_REPORTED_ERRORS]) or {
            "body": ["a record cannot be stored (it holds a NUL character or invalid Unicode)"]}
        message = (f"{bad} of {result.received} record{'s' if result.received != 1 else ''} "
                   f"{'are' if bad != 1 else 'is'} not valid and {'were' if bad != 1 else 'was'} rejected; "
                   f"the other {accepted} {'were' if accepted != 1 else 'was'} accepted.")
        return json_error(400, "invalid", message, fields)
    body = {"success": True, "stored": result.stored, "duplicates": result.duplicates}
    if result.warnings:
        body["warnings"] = dict(list(result.warnings.items())[:MAX_REPORTED_ERRORS])
    return JsonResponse(body)
