"""The email destination: mail from a template through a local SMTP server (aiosmtpd), with only the mapped fields
in reach of the template and no mail sent twice; contact lists through Brevo's contacts API (a local fake)."""

import pytest

from activation import services
from activation.models import Delivery, Sync
from segments.services import segment_refresh
from tests.activation.conftest import recheck

MAIL = {"mode": "message", "subject": "Hello {{ first_name|default:'there' }}",
        "body": "Dear {{ first_name }},\nyour code is {{ code }}. Tier: [{{ tier }}]"}
MAPPING = {"email": "traits.email", "first_name": "traits.first_name", "code": "traits.code"}


@pytest.fixture
def smtp(mailbox):
    return services.destination_create(name="Local SMTP", kind="email", config={
        "provider": "smtp", "host": "127.0.0.1", "port": mailbox.port, "use_tls": False,
        "from_email": "Shop <news@shop.example>"}).destination


@pytest.mark.django_db
def test_a_member_who_enters_gets_the_mail_rendered_from_the_mapped_fields_only(
        mailbox, smtp, make_person, vips, make_activation, run_sync):
    make_person("ann@example.com", first_name="Ann", code="BACK10")
    segment_refresh(segment=vips)
    sync = run_sync(make_activation(smtp, mapping=MAPPING, options=MAIL))

    assert (sync.status, sync.sent) == (Sync.Status.SUCCEEDED, 1)
    (message,) = mailbox.messages
    assert message["To"] == "ann@example.com" and message["Subject"] == "Hello Ann"
    assert message["From"] == "Shop <news@shop.example>"
    body = message.get_payload()
    assert "Dear Ann," in body and "your code is BACK10" in body
    assert "Tier: []" in body  # the tier is a trait, but not mapped: the template cannot reach it
    assert message["X-CDP-Idempotency-Key"].startswith(str(Delivery.objects.get().idempotency_key))


@pytest.mark.django_db
def test_a_retry_after_a_refused_recipient_does_not_send_the_first_mail_again(
        mailbox, smtp, make_person, vips, make_activation, run_sync):
    refused = {"bob@example.com"}

    async def handle_RCPT(server, session, envelope, address, options):
        if address in refused:
            refused.discard(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    mailbox.handle_RCPT = handle_RCPT
    make_person("ann@example.com", first_name="Ann")
    make_person("bob@example.com", first_name="Bob")
    segment_refresh(segment=vips)
    sync = run_sync(make_activation(smtp, mapping=MAPPING, options=MAIL))

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 2
    assert sorted(m["To"] for m in mailbox.messages) == ["ann@example.com", "bob@example.com"]
    assert sync.status == Sync.Status.SUCCEEDED


@pytest.mark.django_db
def test_an_unreachable_smtp_server_is_a_dead_letter_that_keeps_the_reason(make_person, vips, make_activation,
                                                                          run_sync):
    from tests.activation.fakes import free_port

    down = services.destination_create(name="SMTP down", kind="email", config={
        "provider": "smtp", "host": "127.0.0.1", "port": free_port(), "use_tls": False,
        "from_email": "news@shop.example", "read_timeout": 1}).destination
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    sync = run_sync(make_activation(down, mapping=MAPPING, options=MAIL))
    dead = Delivery.objects.get()
    assert dead.status == Delivery.Status.DEAD and "could not reach the mail server" in dead.last_error
    assert sync.failed == 1
    ok, message = services.destination_test(destination=down)
    assert not ok and "mail server" in message


@pytest.mark.django_db
@pytest.mark.parametrize(("options", "mapping", "field"), [
    ({"mode": "message", "subject": "Hi {% if %}", "body": "x"}, MAPPING, "options.subject"),
    ({"mode": "message", "subject": "Hi", "body": "{{ name|nosuchfilter }}"}, MAPPING, "options.body"),
    ({"mode": "message", "subject": "Hi", "body": ""}, MAPPING, "options.body"),
    ({"mode": "message", "subject": "Hi", "body": "x"}, {"mail": "traits.email"}, "mapping"),
    ({"mode": "contacts"}, MAPPING, "options.mode"),  # SMTP keeps no contact lists
    ({"mode": "fax"}, MAPPING, "options.mode"),
])
def test_a_bad_template_or_mode_names_the_field(smtp, purpose, vips, make_activation, options, mapping, field):
    with pytest.raises(services.ActivationInvalid) as error:
        make_activation(smtp, mapping=mapping, options=options)
    assert field in error.value.errors


@pytest.mark.django_db
def test_a_brevo_contact_list_is_kept_and_an_erasure_deletes_the_contact(
        receiver, make_person, vips, make_activation, run_sync, django_capture_on_commit_callbacks):
    from cdp.core.registry import erase_all

    brevo = services.destination_create(name="Brevo", kind="email", config={
        "provider": "brevo", "from_email": "news@shop.example", "api_url": receiver.url + "/v3/", "list_id": 7},
        secrets={"api_key": "xkeysib-secret"}).destination
    ann, bob = make_person("ann@example.com", first_name="Ann"), make_person("bob@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(brevo, mapping={"email": "traits.email", "first_name": "traits.first_name"},
                                 options={"mode": "contacts"})
    run_sync(activation)
    (imported,) = receiver.requests
    assert imported.path == "/v3/contacts/import" and imported.headers["api-key"] == "xkeysib-secret"
    assert imported.json["listIds"] == [7]
    assert {c["email"]: c["attributes"] for c in imported.json["jsonBody"]}["ann@example.com"] == {
        "FIRST_NAME": "Ann"}

    receiver.requests.clear()
    make_person("bob@example.com", tier="basic")
    recheck(bob)
    run_sync(activation)
    assert [(r.path, r.json) for r in receiver.requests] == [
        ("/v3/contacts/lists/7/contacts/remove", {"emails": ["bob@example.com"]})]

    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        erase_all(ann)
    assert [(r.method, r.path) for r in receiver.requests] == [("DELETE", "/v3/contacts/ann%40example.com")]
    forget = Delivery.objects.get(action=Delivery.Action.FORGET)
    assert forget.status == Delivery.Status.DELIVERED
    assert list(forget.items.values_list("profile_id", "payload")) == [(None, {})]  # nothing of Ann is left


@pytest.mark.django_db
def test_mail_through_an_esp_goes_through_anymail_with_the_api_key(receiver, make_person, vips, make_activation,
                                                                   run_sync):
    receiver.body = b'{"messageId": "<201@smtp-relay.brevo.com>"}'
    brevo = services.destination_create(name="Brevo mail", kind="email", config={
        "provider": "brevo", "from_email": "news@shop.example", "api_url": receiver.url + "/v3/"},
        secrets={"api_key": "xkeysib-secret"}).destination
    make_person("ann@example.com", first_name="Ann", code="BACK10")
    segment_refresh(segment=vips)
    sync = run_sync(make_activation(brevo, mapping=MAPPING, options=MAIL))

    assert sync.status == Sync.Status.SUCCEEDED
    (request,) = receiver.requests
    assert request.path == "/v3/smtp/email" and request.headers["api-key"] == "xkeysib-secret"
    assert request.json["to"] == [{"email": "ann@example.com"}] and request.json["subject"] == "Hello Ann"
    assert "your code is BACK10" in request.json["textContent"]
