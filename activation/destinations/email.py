"""An email service, through django-anymail (or Django's SMTP backend for local use).

Two ways to use it, chosen per activation (``options.mode``):

- ``contacts``: the segment is kept as a contact list at the ESP (added, updated, removed; erasure deletes the
  contact). Brevo's contacts API supports it; SMTP and the others send mail only.
- ``message``: each member who enters gets one mail, rendered from the activation's subject and body templates
  (Django templates) with the activation's mapped fields, the traits the mapping lets out, and nothing else. Each
  mail is marked as sent as soon as it went, so a retry of the batch never sends it twice.
"""

from __future__ import annotations

import contextlib
import smtplib
from urllib.parse import quote

from django.core.mail import EmailMessage, get_connection
from django.core.mail.message import make_msgid
from django.template import Context, Engine, TemplateSyntaxError

from activation.destinations import network
from activation.destinations.base import (
    TIMEOUT_FIELDS,
    Batch,
    ConfigField,
    DestinationError,
    Result,
    http_call,
    json_body,
    secret,
    timeouts,
    url_error,
)

PROVIDERS = (("smtp", "SMTP server"), ("brevo", "Brevo"), ("mailgun", "Mailgun"), ("postmark", "Postmark"),
             ("sendgrid", "SendGrid"), ("resend", "Resend"))
CONTACT_PROVIDERS = {"brevo"}
MODES = (("message", "Send a mail to each member who enters"), ("contacts", "Keep a contact list"))
DEFAULT_API_URL = {"brevo": "https://api.brevo.com/v3/"}

FIELDS = (
    ConfigField("provider", "Provider", "choice", required=True, default="smtp", choices=PROVIDERS),
    ConfigField("from_email", "From", required=True, help='The sender, e.g. "Shop <news@shop.example>"'),
    ConfigField("host", "SMTP host", "host",
                help="SMTP only; a relay on an internal network must be allowed by CDP_DESTINATION_ALLOWED_NETWORKS"),
    ConfigField("port", "SMTP port", "int", default=587, minimum=1, maximum=65535),
    ConfigField("use_tls", "STARTTLS", "bool", default=True),
    ConfigField("username", "SMTP user name"),
    ConfigField("api_url", "API address", "url", help="ESPs: leave empty for the provider's own address"),
    ConfigField("list_id", "Contact list id", "int", minimum=1, help="Contact lists (Brevo): the list to keep"),
    *TIMEOUT_FIELDS,
    ConfigField("password", "SMTP password", secret=True),
    ConfigField("api_key", "API key", secret=True, help="ESPs: shown never again once saved"),
)
SUPPORTS_REMOVE = True
SUPPORTS_FORGET = True

_engine = Engine(autoescape=False)


def config_check(config: dict, secrets: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    provider = config.get("provider")
    if provider == "smtp" and not config.get("host"):
        errors["host"] = ["An SMTP server needs a host."]
    if provider != "smtp" and not secrets.get("api_key"):
        errors["api_key"] = [f"{dict(PROVIDERS).get(provider, provider)} needs an API key."]
    if config.get("api_url") and (error := url_error(config["api_url"])):
        errors["api_url"] = [error]
    if "@" not in config.get("from_email", "@"):
        errors["from_email"] = ["Enter an email address."]
    return errors


def options_check(destination, options: dict, mapping: dict) -> dict[str, list[str]]:
    """The checks of an activation's options for this destination: mode, templates, the email field."""
    errors: dict[str, list[str]] = {}
    mode = options.get("mode", "message")
    if mode not in dict(MODES):
        errors["options.mode"] = [f"Choose one of: {', '.join(dict(MODES))}."]
    elif mode == "contacts":
        if destination.config.get("provider") not in CONTACT_PROVIDERS:
            errors["options.mode"] = ["This provider sends mail only; it keeps no contact lists."]
        elif not destination.config.get("list_id"):
            errors["options.mode"] = ["The destination names no contact list (list id)."]
    else:
        for name in ("subject", "body"):
            if not str(options.get(name) or "").strip():
                errors[f"options.{name}"] = ["Write a template (Django template language; fields by mapped name)."]
                continue
            try:
                _engine.from_string(str(options[name]))
            except TemplateSyntaxError as error:
                errors[f"options.{name}"] = [f"Template error: {error}"]
    if "email" not in mapping:
        errors["mapping"] = ['An email destination needs a field named "email" in the mapping.']
    return errors


# --- contact lists (Brevo) -----------------------------------------------------------------------------------------


def _api(destination, path: str) -> str:
    base = destination.config.get("api_url") or DEFAULT_API_URL.get(destination.config.get("provider"), "")
    return base.rstrip("/") + "/" + path


def _api_headers(destination, batch: Batch | None = None) -> dict:
    headers = {"api-key": secret(destination, "api_key"), "Content-Type": "application/json",
               "Accept": "application/json"}
    if batch:
        headers["Idempotency-Key"] = batch.idempotency_key
    return headers


def _emails(batch: Batch) -> list[str]:
    return [str(item.payload["email"]) for item in batch.items if item.payload.get("email")]


def _contacts_add(destination, batch: Batch) -> Result:
    contacts = [{"email": str(item.payload["email"]),
                 "attributes": {key.upper(): value for key, value in item.payload.items() if key != "email"}}
                for item in batch.items if item.payload.get("email")]
    body = json_body({"jsonBody": contacts, "listIds": [int(destination.config["list_id"])],
                      "updateExistingContacts": True, "emptyContactsAttributes": False})
    return http_call("POST", _api(destination, "contacts/import"), config=destination.config,
                     headers=_api_headers(destination, batch), body=body)


def _contacts_remove(destination, batch: Batch) -> Result:
    body = json_body({"emails": _emails(batch)})
    return http_call("POST", _api(destination, f"contacts/lists/{int(destination.config['list_id'])}/contacts/remove"),
                     config=destination.config, headers=_api_headers(destination, batch), body=body)


# --- mail ----------------------------------------------------------------------------------------------------------


def connection_for(destination):
    config = destination.config
    provider = config.get("provider", "smtp")
    if provider == "smtp":
        # SMTP with every connection checked (public addresses only, or CDP_DESTINATION_ALLOWED_NETWORKS)
        return network.SMTPBackend(host=config.get("host"), port=int(config.get("port") or 587),
                                   username=config.get("username") or "", password=secret(destination, "password"),
                                   use_tls=bool(config.get("use_tls")), timeout=timeouts(config)[1],
                                   fail_silently=False)
    key_name = "server_token" if provider == "postmark" else "api_key"  # what anymail calls the ESP's key
    kwargs = {key_name: secret(destination, "api_key") or None, "requests_timeout": timeouts(config)}
    if config.get("api_url"):
        kwargs["api_url"] = config["api_url"].rstrip("/") + "/"
    connection = get_connection(f"anymail.backends.{provider}.EmailBackend", fail_silently=False, **kwargs)
    # anymail opens a requests session per connection: the same checks on each of its connections (and redirects)
    make_session = connection.create_session
    connection.create_session = lambda: network.session_guard(make_session())
    return connection


def _render(template: str, payload: dict) -> str:
    try:
        return _engine.from_string(template).render(Context(payload))
    except TemplateSyntaxError as error:
        raise DestinationError(f"template error: {error}", retryable=False) from None


def _mail_error(error: Exception) -> DestinationError:
    from anymail.exceptions import AnymailError, AnymailRequestsAPIError

    if isinstance(error, smtplib.SMTPResponseException):
        return DestinationError(f"the SMTP server refused: {error.smtp_code}", status=error.smtp_code,
                                retryable=error.smtp_code < 500)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in error.recipients.values()})
        return DestinationError(f"the SMTP server refused the recipient ({', '.join(map(str, codes))})",
                                retryable=all(400 <= code < 500 for code in codes))
    if isinstance(error, TimeoutError):
        return DestinationError("the mail server did not answer in time")
    if isinstance(error, OSError | smtplib.SMTPException):
        return DestinationError(f"could not reach the mail server ({type(error).__name__})")
    if isinstance(error, AnymailRequestsAPIError):
        status = error.status_code
        return DestinationError(f"the ESP answered HTTP {status}", status=status,
                                retryable=status is None or status >= 500 or status == 429)
    if isinstance(error, AnymailError):
        return DestinationError(f"the ESP refused: {type(error).__name__}", retryable=False)
    raise error


def _messages_send(destination, batch: Batch) -> Result:
    options = batch.options
    pending = [item for item in batch.items if not item.delivered and item.payload.get("email")]
    if not pending:
        return Result(message="nothing left to send")
    connection = connection_for(destination)
    sent = 0
    try:
        connection.open()
        for item in pending:
            message = EmailMessage(
                subject=" ".join(_render(str(options.get("subject", "")), item.payload).split()),
                body=_render(str(options.get("body", "")), item.payload),
                from_email=destination.config.get("from_email"), to=[str(item.payload["email"])],
                connection=connection,
                headers={"Message-ID": make_msgid(idstring=f"{batch.idempotency_key}.{item.id}"),
                         "X-CDP-Idempotency-Key": f"{batch.idempotency_key}:{item.id}"})
            message.send()
            batch.item_done(item.id)
            sent += 1
    except DestinationError:
        raise
    except Exception as error:
        raise _mail_error(error) from None
    finally:
        with contextlib.suppress(Exception):  # closing a broken connection may fail; the outcome is known
            connection.close()
    return Result(message=f"{sent} mail{'s' if sent != 1 else ''} sent")


def send_batch(destination, batch: Batch) -> Result:
    if batch.options.get("mode") == "contacts":
        return _contacts_add(destination, batch)
    if all(item.change == "changed" for item in batch.items):
        return Result(message="a change sends no mail")
    return _messages_send(destination, Batch(**{**batch.__dict__, "items": [
        item for item in batch.items if item.change != "changed"]}))


def remove_batch(destination, batch: Batch) -> Result:
    if batch.options.get("mode") == "contacts":
        return _contacts_remove(destination, batch)
    return Result(message="mail that was sent is not taken back")


def forget(destination, batch: Batch) -> Result:
    if destination.config.get("provider") not in CONTACT_PROVIDERS:
        return Result(message="this provider keeps no contacts")
    for email in _emails(batch):
        http_call("DELETE", _api(destination, f"contacts/{quote(email, safe='')}"), config=destination.config,
                  headers=_api_headers(destination, batch), ok_statuses=(404,))
    return Result(message="contacts deleted")


def test_connection(destination) -> Result:
    if destination.config.get("provider") in CONTACT_PROVIDERS:
        return http_call("GET", _api(destination, "account"), config=destination.config,
                         headers=_api_headers(destination))
    if destination.config.get("provider") != "smtp":
        return Result(message="nothing to test without sending a mail; the API key is checked by the first send")
    connection = connection_for(destination)
    try:
        connection.open()
        connection.close()
    except DestinationError:
        raise
    except Exception as error:
        raise _mail_error(error) from None
    return Result(message="the SMTP server accepted the connection")
