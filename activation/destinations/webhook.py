"""A webhook: the batch as JSON in one POST, signed with HMAC-SHA256 over the exact body bytes.

Headers: ``X-CDP-Signature: sha256=<hex>`` (the destination's signing secret, made by the CDP and shown once),
``Idempotency-Key`` (the same through retries: a receiver that saw it may drop the repeat), ``X-CDP-Action``.
"""

from django.utils import timezone

from activation.destinations.base import (
    TIMEOUT_FIELDS,
    Batch,
    ConfigField,
    Result,
    http_call,
    json_body,
    secret,
    signature,
    url_error,
)

FIELDS = (
    ConfigField("url", "Address", "url", required=True, help="Receives a JSON POST per batch"),
    *TIMEOUT_FIELDS,
    ConfigField("signing_secret", "Signing secret", secret=True, generated=True,
                help="Made by the CDP and shown once; the receiver checks X-CDP-Signature with it"),
)
SUPPORTS_REMOVE = True
SUPPORTS_FORGET = True


def config_check(config: dict, secrets: dict) -> dict[str, list[str]]:
    error = url_error(config.get("url", ""))
    return {"url": [error]} if error else {}


def _post(destination, batch: Batch) -> Result:
    body = json_body({
        "type": batch.action,
        "idempotency_key": batch.idempotency_key,
        "activation": {"id": batch.activation_id, "name": batch.activation_name} if batch.activation_id else None,
        "created_at": batch.created_at.isoformat(),
        "sent_at": timezone.now().isoformat(),
        "items": [{"profile_id": item.profile_id, "change": item.change, "data": item.payload}
                  for item in batch.items],
    })
    headers = {"Content-Type": "application/json", "User-Agent": "cdp-activation/1",
               "Idempotency-Key": batch.idempotency_key, "X-CDP-Action": batch.action,
               "X-CDP-Signature": signature(secret(destination, "signing_secret"), body)}
    return http_call("POST", destination.config["url"], config=destination.config, headers=headers, body=body)


send_batch = remove_batch = forget = _post


def test_connection(destination) -> Result:
    return _post(destination, Batch(action="test", items=[], idempotency_key=f"test-{timezone.now().timestamp()}",
                                    created_at=timezone.now()))
