"""Destination hardening: hosts must be public (at save, and again at each connection, so a DNS change after the
check is refused too), CDP_DESTINATION_ALLOWED_NETWORKS lets deliberate internal targets through, and secrets are
encrypted at rest, write-only, kept when left empty, re-encrypted by the rotation handler and never shown.

The local fakes listen on 127.0.0.1, which conftest allows for the other activation tests; the tests here that prove
a refusal take that allowance away (``public_only``). Host names are made to resolve where a test wants by
replacing ``socket.getaddrinfo``, the resolver at the socket edge."""

from __future__ import annotations

import importlib
import logging
import socket

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.db import connection
from django.urls import reverse

from activation import services
from activation.destinations import ConfigInvalid
from activation.destinations.base import secret as secret_of
from activation.models import Delivery, Destination, Sync
from cdp.core import crypto
from segments.services import segment_refresh
from tests.activation.fakes import free_port

PUBLIC = "93.184.216.34"  # a public address (nothing connects to it here: the name is pointed elsewhere first)


@pytest.fixture
def public_only(settings):
    settings.CDP_DESTINATION_ALLOWED_NETWORKS = []


@pytest.fixture
def dns(monkeypatch):
    """``dns["hook.test"] = "10.1.2.3"`` makes that name resolve to that address (names not set resolve as usual)."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host in names:
            address = names[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port or 0, 0, 0) if family == socket.AF_INET6 else (address, port or 0)
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def _refused(kind: str, config: dict, field: str) -> str:
    with pytest.raises(ConfigInvalid) as error:
        services.destination_create(name="Inside", kind=kind, config=config)
    assert field in error.value.errors, error.value.errors
    return " ".join(error.value.errors[field])


# --- at save -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:5432/", "a loopback address"),
    ("http://localhost:8000/hook", "a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://10.0.0.8/hook", "a private address"),
    ("http://192.168.1.20/hook", "a private address"),
    ("http://172.16.5.4/hook", "a private address"),
    ("http://0.0.0.0:8000/", "an unspecified address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://100.64.0.1/", "not a public address"),
    ("http://2130706433/", "a loopback address"),  # 127.0.0.1 written as one number
    ("http://[::1]:8000/", "a loopback address"),
    ("http://[::]/", "an unspecified address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://[fd00::5]/", "a private address"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "a link-local address"),
    ("http://[::ffff:a00:1]/", "a private address"),
    ("http://[2002:7f00:1::]/", "a loopback address"),  # 6to4 of 127.0.0.1
])
def test_a_webhook_to_an_internal_address_is_refused_at_save_naming_why(url, why):
    message = _refused("webhook", {"url": url}, "config.url")
    assert why in message and "public addresses" in message


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_a_host_name_is_resolved_and_refused_when_it_points_inside(dns):
    dns["hook.test"] = "10.1.2.3"
    message = _refused("webhook", {"url": "https://hook.test/in"}, "config.url")
    assert message.startswith("hook.test resolves to 10.1.2.3, a private address")
    dns["hook.test"] = PUBLIC
    assert services.destination_create(name="Out", kind="webhook", config={"url": "https://hook.test/in"})


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
@pytest.mark.parametrize("url", ["ftp://files.example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/",
                                 "javascript:alert(1)", "//hook.test/"])
def test_an_address_that_is_not_http_is_refused(url):
    assert _refused("webhook", {"url": url}, "config.url") == "Enter an http:// or https:// address."


@pytest.mark.django_db
def test_a_host_that_does_not_resolve_is_refused_at_save(dns):
    assert "could not be resolved" in _refused("webhook", {"url": "https://no-such-host.invalid/"}, "config.url")


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
@pytest.mark.parametrize(("kind", "config", "field"), [
    ("audience_api", {"add_url": f"https://{PUBLIC}/add", "remove_url": "http://169.254.169.254/remove"},
     "config.remove_url"),
    ("audience_api", {"add_url": f"https://{PUBLIC}/add", "remove_url": f"https://{PUBLIC}/remove",
                      "test_url": "http://[::1]/ping"}, "config.test_url"),
    ("file", {"storage": "s3", "bucket": "b", "endpoint_url": "http://127.0.0.1:9000"}, "config.endpoint_url"),
    ("email", {"provider": "smtp", "host": "127.0.0.1", "from_email": "a@shop.example"}, "config.host"),
    ("email", {"provider": "smtp", "host": "10.0.0.25", "from_email": "a@shop.example"}, "config.host"),
    ("email", {"provider": "postmark", "from_email": "a@shop.example", "api_url": "http://10.0.0.9/",
               "api_key": "k"}, "config.api_url"),
])
def test_every_outbound_kind_refuses_internal_hosts_at_save(kind, config, field):
    config = dict(config)
    api_key = config.pop("api_key", None)
    with pytest.raises(ConfigInvalid) as error:
        services.destination_create(name="Inside", kind=kind, config=config,
                                    secrets={"api_key": api_key} if api_key else None)
    assert list(error.value.errors) == [field]
    assert "public addresses" in error.value.errors[field][0]


@pytest.mark.django_db
def test_an_smtp_host_must_be_a_host_name_or_an_address():
    message = _refused("email", {"provider": "smtp", "host": "smtp://mail.example.com:25",
                                 "from_email": "a@shop.example"}, "config.host")
    assert message == "Enter a host name or an IP address, without scheme, port or path."


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_the_api_answers_400_naming_the_field(api_as):
    answer = api_as("Marketing").post("/api/v1/destinations/", {
        "name": "Metadata", "kind": "webhook", "config": {"url": "http://169.254.169.254/latest/meta-data/"}},
        format="json")
    assert answer.status_code == 400
    assert "link-local" in str(answer.json()) and "config.url" in str(answer.json())
    assert not Destination.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_the_form_shows_the_refusal_at_the_field(client, make_user):
    client.force_login(make_user("Marketing"))
    response = client.post(reverse("activation:destination-create") + "?kind=webhook", {
        "name": "Database", "enabled": "on", "config_url": "http://127.0.0.1:5432/", "config_connect_timeout": "3",
        "config_read_timeout": "10"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "127.0.0.1, a loopback address: destinations may only reach public addresses" in html
    assert 'id="id_config_url"' in html and "http://127.0.0.1:5432/" in html  # the input is kept to correct
    assert not Destination.objects.exists()


# --- the allow-list --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_allow_list_lets_deliberate_internal_networks_through_and_no_others(
        settings, receiver, make_person, vips, make_activation, run_sync):
    settings.CDP_DESTINATION_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    _refused("webhook", {"url": receiver.url + "/hook"}, "config.url")  # 127.0.0.1 is not in 10.0.0.0/8

    settings.CDP_DESTINATION_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.1/32"]
    hook = services.destination_create(name="Internal hook", kind="webhook",
                                       config={"url": receiver.url + "/hook"}).destination
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    sync = run_sync(make_activation(hook))
    assert sync.status == Sync.Status.SUCCEEDED and len(receiver.requests) == 1


def test_a_bad_allow_list_stops_start_up_naming_the_variable(monkeypatch, tmp_path):
    from cdp.config import ConfigError, read_environment

    monkeypatch.setenv("CDP_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CDP_DESTINATION_ALLOWED_NETWORKS", "10.0.0.0/8, 10.0.0.300/8")
    with pytest.raises(ConfigError, match=r"CDP_DESTINATION_ALLOWED_NETWORKS .*'10\.0\.0\.300/8'"):
        read_environment(tmp_path)
    monkeypatch.setenv("CDP_DESTINATION_ALLOWED_NETWORKS", "10.0.0.0/8, fd00::/8,192.168.1.7")
    assert read_environment(tmp_path)["destination_allowed_networks"] == ["10.0.0.0/8", "fd00::/8",
                                                                          "192.168.1.7/32"]


# --- at send: the address connected to is checked (DNS rebinding) ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_a_webhook_whose_name_now_points_inside_is_refused_at_send_without_retries(
        dns, receiver, make_person, vips, make_activation, run_sync):
    port = receiver.server.server_address[1]
    dns["hook.test"] = PUBLIC
    hook = services.destination_create(name="Rebound", kind="webhook",
                                       config={"url": f"http://hook.test:{port}/hook"}).destination
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    dns["hook.test"] = "127.0.0.1"  # the DNS answer changed after the check at save: the fake listens there

    sync = run_sync(make_activation(hook))

    delivery = Delivery.objects.get()
    assert (sync.status, delivery.status, delivery.attempts) == (Sync.Status.FAILED, Delivery.Status.DEAD, 1)
    assert "refused to connect to hook.test (127.0.0.1): a loopback address" in delivery.last_error
    assert receiver.requests == [] and receiver.repeats == []


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_an_audience_api_whose_name_now_points_inside_is_refused_at_send(dns, receiver):
    port = receiver.server.server_address[1]
    dns["ads.test"] = PUBLIC
    ads = services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": f"http://ads.test:{port}/add", "remove_url": f"http://ads.test:{port}/remove",
        "test_url": f"http://ads.test:{port}/ping"}, secrets={"token": "t0ken-for-ads"}).destination
    dns["ads.test"] = "::ffff:127.0.0.1"
    ok, message = services.destination_test(destination=ads)
    assert not ok and "a loopback address" in message and receiver.requests == []


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_an_smtp_host_that_now_points_inside_is_refused_at_send(dns, mailbox):
    dns["mail.test"] = PUBLIC
    smtp = services.destination_create(name="Mail", kind="email", config={
        "provider": "smtp", "host": "mail.test", "port": mailbox.port, "use_tls": False,
        "from_email": "Shop <news@shop.example>"}).destination
    dns["mail.test"] = "127.0.0.1"
    ok, message = services.destination_test(destination=smtp)
    assert not ok and message.startswith("refused to connect to mail.test (127.0.0.1): a loopback address")


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_an_esp_api_address_that_now_points_inside_is_refused_at_send(
        dns, receiver, make_person, vips, make_activation, run_sync):
    port = receiver.server.server_address[1]
    dns["esp.test"] = PUBLIC
    esp = services.destination_create(name="Postmark", kind="email", config={
        "provider": "postmark", "from_email": "news@shop.example", "api_url": f"http://esp.test:{port}/"},
        secrets={"api_key": "pm-key-123456"}).destination
    make_person("ann@example.com", first_name="Ann")
    segment_refresh(segment=vips)
    dns["esp.test"] = "127.0.0.1"
    run_sync(make_activation(esp, mapping={"email": "traits.email"},
                             options={"mode": "message", "subject": "Hi", "body": "Hello"}))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.DEAD, 1)
    assert "refused to connect to esp.test (127.0.0.1)" in delivery.last_error and receiver.requests == []


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_an_s3_endpoint_that_now_points_inside_is_refused_at_send(dns, s3_endpoint):
    port = int(s3_endpoint.rsplit(":", 1)[1])
    dns["s3.test"] = PUBLIC
    store = services.destination_create(name="MinIO", kind="file", config={
        "storage": "s3", "bucket": "cdp-exports", "endpoint_url": f"http://s3.test:{port}", "connect_timeout": 1},
        secrets={"access_key_id": "testing", "secret_access_key": "testing"}).destination
    dns["s3.test"] = "127.0.0.1"
    ok, message = services.destination_test(destination=store)
    assert not ok and message.startswith("refused to connect to s3.test (127.0.0.1): a loopback address")


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver, webhook, make_person, vips, make_activation, run_sync):
    receiver.answer((302, 0))
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    run_sync(make_activation(webhook))
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DEAD and "HTTP 302" in delivery.last_error
    assert len(receiver.requests) == 0  # the 302 was not followed anywhere


# --- secrets at rest -------------------------------------------------------------------------------------------------

PLAINTEXTS = {"token": "tok-9f8e7d6c5b4a", "password": "pw-SMTP-31415926", "api_key": "key-ESP-27182818",
              "access_key_id": "AKIAEXAMPLE12345", "secret_access_key": "s3-secret-16180339"}


def _stored_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM activation_destination")
        return repr(cursor.fetchall())


@pytest.mark.django_db
def test_no_secret_is_stored_in_clear(receiver, mailbox, s3_endpoint):
    hook = services.destination_create(name="Hook", kind="webhook", config={"url": receiver.url})
    services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"},
        secrets={"token": PLAINTEXTS["token"]})
    services.destination_create(name="Mail", kind="email", config={
        "provider": "smtp", "host": "127.0.0.1", "port": mailbox.port, "use_tls": False,
        "from_email": "news@shop.example", "username": "shop"}, secrets={"password": PLAINTEXTS["password"]})
    services.destination_create(name="ESP", kind="email", config={
        "provider": "postmark", "from_email": "news@shop.example"}, secrets={"api_key": PLAINTEXTS["api_key"]})
    services.destination_create(name="S3", kind="file", config={
        "storage": "s3", "bucket": "b", "endpoint_url": s3_endpoint}, secrets={
        "access_key_id": PLAINTEXTS["access_key_id"], "secret_access_key": PLAINTEXTS["secret_access_key"]})

    rows = _stored_rows()
    for plaintext in [*PLAINTEXTS.values(), hook.new_secrets["signing_secret"]]:
        assert plaintext not in rows
    assert rows.count(crypto.PREFIX) == 6
    by_name = {d.name: d for d in Destination.objects.all()}
    assert secret_of(by_name["Ads"], "token") == PLAINTEXTS["token"]
    assert secret_of(by_name["Hook"], "signing_secret") == hook.new_secrets["signing_secret"]


@pytest.mark.django_db
def test_the_token_sent_is_the_one_entered_and_never_reaches_logs_or_error_messages(
        receiver, make_person, vips, make_activation, run_sync, caplog):
    token = PLAINTEXTS["token"]
    ads = services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"}, secrets={"token": token})
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(ads.destination)
    run_sync(activation)
    assert receiver.requests[0].headers["Authorization"] == f"Bearer {token}"

    receiver.answer((401, 0))
    receiver.error_body = f'{{"error": "bad token Bearer {token}"}}'.encode()  # a receiver that echoes it
    make_person("ann@example.com", first_name="Ann")
    with caplog.at_level(logging.DEBUG):
        run_sync(activation)
    dead = Delivery.objects.get(status=Delivery.Status.DEAD)
    assert "HTTP 401" in dead.last_error and "[redacted]" in dead.last_error
    assert token not in dead.last_error and token not in caplog.text


@pytest.mark.django_db
def test_secrets_are_write_only_and_an_empty_field_keeps_them(api_as, client, make_user, receiver):
    api = api_as("Marketing")
    token = PLAINTEXTS["token"]
    made = api.post("/api/v1/destinations/", {"name": "Ads", "kind": "audience_api", "config": {
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"}, "secrets": {"token": token}},
        format="json").json()
    url = f"/api/v1/destinations/{made['id']}/"

    changed = api.patch(url, {"config": {"add_url": receiver.url + "/add2", "remove_url": receiver.url + "/remove"},
                              "secrets": {"token": ""}}, format="json")
    assert changed.status_code == 200 and changed.json()["secrets_set"] == ["token"]
    for answer in (changed, api.get(url), api.get("/api/v1/destinations/")):
        assert token not in answer.content.decode() and crypto.PREFIX not in answer.content.decode()
    destination = Destination.objects.get(pk=made["id"])
    assert secret_of(destination, "token") == token

    client.force_login(make_user("Admin", username="admin-ui"))
    edit = reverse("activation:destination-edit", args=[destination.pk])
    page = client.get(edit).content.decode()
    assert "Set; leave empty to keep it." in page and token not in page and crypto.PREFIX not in page
    response = client.post(edit, {"name": "Ads 2", "enabled": "on", "config_add_url": receiver.url + "/add",
                                  "config_remove_url": receiver.url + "/remove", "config_batch_size": "500",
                                  "config_connect_timeout": "3", "config_read_timeout": "10",
                                  "config_auth_header": "Authorization", "config_auth_scheme": "Bearer",
                                  "config_token": ""})
    assert response.status_code in (200, 302)
    destination.refresh_from_db()
    assert destination.name == "Ads 2" and secret_of(destination, "token") == token

    client.post(edit, {"name": "Ads 2", "enabled": "on", "config_add_url": receiver.url + "/add",
                       "config_remove_url": receiver.url + "/remove", "config_batch_size": "500",
                       "config_connect_timeout": "3", "config_read_timeout": "10",
                       "config_auth_header": "Authorization", "config_auth_scheme": "Bearer",
                       "config_token": "a-new-token-42"})
    destination.refresh_from_db()
    assert secret_of(destination, "token") == "a-new-token-42"


@pytest.mark.django_db
def test_secrets_that_are_not_an_object_are_a_400_naming_them(api_as, receiver):
    answer = api_as("Marketing").post("/api/v1/destinations/", {"name": "Ads", "kind": "audience_api", "config": {
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"}, "secrets": ["tok"]},
        format="json")
    assert answer.status_code == 400 and "secrets" in str(answer.json())
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_the_admin_shows_no_secret(client, receiver):
    from django.contrib.auth import get_user_model

    services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"},
        secrets={"token": PLAINTEXTS["token"]})
    destination = Destination.objects.get()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-only"))
    for url in (reverse("admin:activation_destination_changelist"),
                reverse("admin:activation_destination_change", args=[destination.pk])):
        page = client.get(url)
        assert page.status_code == 200
        assert PLAINTEXTS["token"] not in page.content.decode() and crypto.PREFIX not in page.content.decode()


@pytest.mark.django_db
def test_the_rotation_handler_re_encrypts_secrets_with_the_new_key(encryption_keys, receiver):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    encryption_keys(old)
    ads = services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove", "test_url": receiver.url + "/ping"},
        secrets={"token": PLAINTEXTS["token"]}).destination
    hook = services.destination_create(name="Hook", kind="webhook", config={"url": receiver.url})
    before = _stored_rows()

    encryption_keys(new, old)
    handler = crypto.rotation_handlers()["activation.destination_secrets"]
    assert handler() == 2
    assert _stored_rows() != before

    encryption_keys(new)  # the old key is gone: everything still decrypts
    ads.refresh_from_db()
    assert secret_of(ads, "token") == PLAINTEXTS["token"]
    assert secret_of(Destination.objects.get(name="Hook"), "signing_secret") == hook.new_secrets["signing_secret"]
    assert services.destination_test(destination=ads) == (True, "HTTP 200")
    assert receiver.requests[-1].headers["Authorization"] == f"Bearer {PLAINTEXTS['token']}"


@pytest.mark.django_db
def test_a_secret_whose_key_was_removed_fails_the_send_clearly_and_for_good(encryption_keys, receiver):
    encryption_keys(Fernet.generate_key().decode())
    ads = services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove", "test_url": receiver.url + "/ping"},
        secrets={"token": PLAINTEXTS["token"]}).destination
    encryption_keys(Fernet.generate_key().decode())  # removed before the rotation ran
    ok, message = services.destination_test(destination=ads)
    assert not ok and "token cannot be decrypted" in message and receiver.requests == []


@pytest.mark.django_db
def test_the_data_migration_encrypts_secrets_stored_in_clear(receiver):
    migration = importlib.import_module("activation.migrations.0005_destination_secrets_encrypted")
    ads = services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"}).destination
    Destination.objects.filter(pk=ads.pk).update(secrets={"token": PLAINTEXTS["token"]})  # as before encryption
    assert PLAINTEXTS["token"] in _stored_rows()

    migration.encrypt_secrets(apps, None)
    assert PLAINTEXTS["token"] not in _stored_rows()
    ads.refresh_from_db()
    assert secret_of(ads, "token") == PLAINTEXTS["token"]
    migration.encrypt_secrets(apps, None)  # idempotent: an encrypted value is left alone
    ads.refresh_from_db()
    assert secret_of(ads, "token") == PLAINTEXTS["token"]

    migration.decrypt_secrets(apps, None)  # the way back
    assert PLAINTEXTS["token"] in _stored_rows()


@pytest.mark.django_db
@pytest.mark.usefixtures("public_only")
def test_an_unreachable_closed_port_on_an_allowed_network_is_a_connection_failure_not_a_refusal(settings):
    settings.CDP_DESTINATION_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    closed = services.destination_create(name="Closed", kind="webhook", config={
        "url": f"http://127.0.0.1:{free_port()}/", "connect_timeout": 0.5}).destination
    ok, message = services.destination_test(destination=closed)
    assert not ok and message.startswith("could not connect to 127.0.0.1")
