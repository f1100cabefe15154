"""What every destination kind shares: its configuration fields, the batch it is given, the errors it raises, and
an HTTP call with timeouts.

A kind is one module (webhook, email, file, audience_api) with the same small interface:

    FIELDS                                   the configuration, as ConfigField specs (secrets marked)
    SUPPORTS_REMOVE, SUPPORTS_FORGET         whether it takes members out, and can delete a person for good
    config_check(config, secrets)            extra checks across fields -> {field: [message]}
    send_batch(destination, batch)           add or update batch.items             -> Result
    remove_batch(destination, batch)         take batch.items out of the audience   -> Result
    forget(destination, batch)               delete the people of batch.items       -> Result
    test_connection(destination)             a harmless request                     -> Result

Each raises ``DestinationError`` for a failure, with ``retryable`` telling a passing problem (no connection, a
timeout, 5xx, 429) from one that will not pass by itself (4xx, a bad template). Messages never carry secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import requests

from cdp.core import crypto

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0
ANSWER_EXCERPT = 200


class DestinationError(Exception):
    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class Result:
    status: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Item:
    id: int
    profile_id: int | None
    change: str
    payload: dict
    delivered: bool = False


@dataclass
class Batch:
    """What one delivery sends: its items, its idempotency key (the same through retries and re-sends), the
    activation it belongs to (none for tests and erasures) and, for per-item destinations (mail), a callback that
    records each item sent so that a retry skips it."""

    action: str
    items: list[Item]
    idempotency_key: str
    created_at: datetime
    activation_id: int | None = None
    activation_name: str = ""
    options: dict = field(default_factory=dict)
    item_done: Callable[[int], None] = lambda item_id: None


@dataclass(frozen=True)
class ConfigField:
    """One configuration value of a destination kind. A ``secret`` is kept apart from the configuration and never
    shown again; a ``generated`` secret is made by the CDP (a signing secret) and shown once, when it is made."""

    name: str
    label: str
    type: str = "text"  # text, url, host, int, float, choice, bool (url and host: public addresses only)
    required: bool = False
    default: object = None
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    secret: bool = False
    generated: bool = False
    minimum: float | None = None
    maximum: float | None = None


TIMEOUT_FIELDS = (
    ConfigField("connect_timeout", "Connect timeout (s)", "float", default=DEFAULT_CONNECT_TIMEOUT, minimum=0.1,
                maximum=MAX_TIMEOUT, help="How long to wait for a connection"),
    ConfigField("read_timeout", "Read timeout (s)", "float", default=DEFAULT_READ_TIMEOUT, minimum=0.1,
                maximum=MAX_TIMEOUT, help="How long to wait for the answer"),
)


def timeouts(config: dict) -> tuple[float, float]:
    return (float(config.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            float(config.get("read_timeout") or DEFAULT_READ_TIMEOUT))


def url_error(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter an http:// or https:// address."
    if parts.username or parts.password:
        return "Put credentials in the secret fields, not in the address."
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number or out of range)
    except ValueError:
        return "Enter a port from 1 to 65535."
    return None


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def host_shape_error(value: str) -> str | None:
    """A host name or an IP address (no scheme, port, path or space)."""
    try:
        ipaddress.ip_address(value.strip("[]"))
        return None
    except ValueError:
        pass
    try:
        name = value.encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    return None if _HOST_NAME.match(name) else "Enter a host name or an IP address, without scheme, port or path."


def secret(destination, name: str) -> str:
    """A secret of the destination, decrypted for the request that needs it ("" when it is not set). Secrets are
    stored encrypted (cdp.core.crypto) and decrypted only here, when sending."""
    value = destination.secrets.get(name)
    if not value:
        return ""
    try:
        return crypto.decrypt(value)
    except crypto.DecryptionError:
        raise DestinationError(f"the destination's {name} cannot be decrypted: CDP_ENCRYPTION_KEYS no longer has "
                               f"the key it was stored with; enter it again", retryable=False) from None


def signature(key: str, body: bytes) -> str:
    """The value of the signature header: HMAC-SHA256 of the exact body bytes, hex, with its scheme."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def json_body(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str).encode()


def _answer_excerpt(response, headers: dict) -> str:
    """The start of an error answer, without anything we sent in a header (a receiver may echo the token back)."""
    text = (response.text or "").strip().replace("\n", " ")
    for value in headers.values():
        for part in {str(value), *str(value).split()}:
            if len(part) >= 8:
                text = text.replace(part, "[redacted]")
    return text[:ANSWER_EXCERPT] + ("…" if len(text) > ANSWER_EXCERPT else "")


def http_call(method: str, url: str, *, config: dict, headers: dict | None = None, body: bytes | None = None,
              ok_statuses: tuple[int, ...] = ()) -> Result:
    """One HTTP request with the destination's connect and read timeouts. A 2xx (or a status in ``ok_statuses``)
    is a Result; anything else a DestinationError that says what happened (never the secrets sent)."""
    from activation.destinations.network import session  # it builds on this module

    try:
        with session() as http:  # every connection checked: public addresses only (network.py)
            response = http.request(method, url, data=body, headers=headers or {}, timeout=timeouts(config),
                                    allow_redirects=False)
    except requests.ConnectTimeout:
        raise DestinationError(f"could not connect to {urlsplit(url).netloc} within {timeouts(config)[0]:g} s") \
            from None
    except requests.ReadTimeout:
        raise DestinationError(f"{urlsplit(url).netloc} did not answer within {timeouts(config)[1]:g} s") from None
    except requests.ConnectionError as error:
        reason = type(error.__context__ or error).__name__
        raise DestinationError(f"could not connect to {urlsplit(url).netloc} ({reason})") from None
    except requests.RequestException as error:
        raise DestinationError(f"the request failed ({type(error).__name__})") from None
    status = response.status_code
    if 200 <= status < 300 or status in ok_statuses:
        return Result(status=status, message=f"HTTP {status}")
    retryable = status >= 500 or status in (408, 425, 429)
    excerpt = _answer_excerpt(response, headers or {})
    raise DestinationError(f"HTTP {status} from {urlsplit(url).netloc}: {excerpt}".rstrip(": "), status=status,
                           retryable=retryable)
