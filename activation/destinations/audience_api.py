"""A generic HTTP audience API: members are added with a POST to one address and removed with a POST to another,
in batches, as ``{"members": [...], "idempotency_key": "..."}``; an erasure is a removal with ``"erase": true``.
A token (a secret) goes in the ``Authorization`` header (or the header the API names)."""

from activation.destinations.base import (
    TIMEOUT_FIELDS,
    Batch,
    ConfigField,
    DestinationError,
    Result,
    http_call,
    json_body,
    secret,
    url_error,
)

FIELDS = (
    ConfigField("add_url", "Add address", "url", required=True, help="POST adds or updates the members"),
    ConfigField("remove_url", "Remove address", "url", required=True, help="POST removes the members"),
    ConfigField("test_url", "Test address", "url", help="GET answers 2xx when the API and the token work"),
    ConfigField("batch_size", "Batch size", "int", default=500, minimum=1, maximum=10000,
                help="Members per request"),
    *TIMEOUT_FIELDS,
    ConfigField("auth_header", "Authorization header", default="Authorization"),
    ConfigField("auth_scheme", "Authorization scheme", default="Bearer", help="Put before the token; may be empty"),
    ConfigField("token", "Token", secret=True, help="Shown never again once saved"),
)
SUPPORTS_REMOVE = True
SUPPORTS_FORGET = True


def config_check(config: dict, secrets: dict) -> dict[str, list[str]]:
    errors = {}
    for name in ("add_url", "remove_url", "test_url"):
        if config.get(name) and (error := url_error(config[name])):
            errors[name] = [error]
    return errors


def batch_size(config: dict) -> int:
    return int(config.get("batch_size") or 500)


def _headers(destination, batch: Batch | None = None) -> dict:
    headers = {"Content-Type": "application/json", "User-Agent": "cdp-activation/1"}
    token = secret(destination, "token")
    if token:
        scheme = destination.config.get("auth_scheme", "Bearer")
        headers[destination.config.get("auth_header") or "Authorization"] = f"{scheme} {token}".strip()
    if batch is not None:
        headers["Idempotency-Key"] = batch.idempotency_key
    return headers


def _post(destination, url: str, batch: Batch, **extra) -> Result:
    body = json_body({"members": [item.payload for item in batch.items], "idempotency_key": batch.idempotency_key,
                      **extra})
    return http_call("POST", url, config=destination.config, headers=_headers(destination, batch), body=body)


def send_batch(destination, batch: Batch) -> Result:
    return _post(destination, destination.config["add_url"], batch)


def remove_batch(destination, batch: Batch) -> Result:
    return _post(destination, destination.config["remove_url"], batch)


def forget(destination, batch: Batch) -> Result:
    return _post(destination, destination.config["remove_url"], batch, erase=True)


def test_connection(destination) -> Result:
    url = destination.config.get("test_url")
    if not url:
        raise DestinationError("No test address is configured.", retryable=False)
    return http_call("GET", url, config=destination.config, headers=_headers(destination))
