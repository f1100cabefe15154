"""The activation API: destinations (secrets write-only, shown once), activations (bad mapping or template: a 400
naming the field), POST .../sync/, syncs with counts, deliveries with resend; roles decide who may do what."""

import pytest

from activation.destinations.base import secret as secret_of
from activation.models import Delivery, Destination
from segments.services import segment_refresh


@pytest.fixture
def marketing(api_as):
    return api_as("Marketing")


def _webhook(client, url, **extra):
    return client.post("/api/v1/destinations/", {"name": "Hook", "kind": "webhook", "config": {"url": url},
                                                 **extra}, format="json")


@pytest.mark.django_db
def test_a_destination_shows_its_new_signing_secret_once_and_never_a_secret_again(marketing, receiver):
    answer = _webhook(marketing, receiver.url)
    assert answer.status_code == 201, answer.json()
    secret = answer.json()["new_secrets"]["signing_secret"]
    assert len(secret) >= 32 and answer.json()["secrets_set"] == ["signing_secret"]

    shown = marketing.get(f"/api/v1/destinations/{answer.json()['id']}/")
    assert secret not in shown.content.decode() and shown.json()["new_secrets"] == {}
    assert secret not in marketing.get("/api/v1/destinations/").content.decode()

    token = marketing.post("/api/v1/destinations/", {"name": "Ads", "kind": "audience_api", "config": {
        "add_url": receiver.url + "/add", "remove_url": receiver.url + "/remove"}, "secrets": {"token": "s3cr3t"}},
        format="json")
    assert token.status_code == 201 and token.json()["secrets_set"] == ["token"]
    assert "s3cr3t" not in token.content.decode()
    assert secret_of(Destination.objects.get(pk=token.json()["id"]), "token") == "s3cr3t"

    rotated = marketing.patch(f"/api/v1/destinations/{answer.json()['id']}/",
                              {"secrets": {"signing_secret": "rotate"}}, format="json")
    assert rotated.status_code == 200 and rotated.json()["new_secrets"]["signing_secret"] != secret


@pytest.mark.django_db
def test_a_bad_destination_configuration_is_a_400_naming_the_field(marketing):
    answer = _webhook(marketing, "not a url")
    assert answer.status_code == 400
    assert list(answer.json()["error"]["fields"]) == ["config.url"]
    answer = marketing.post("/api/v1/destinations/", {"name": "X", "kind": "pigeon", "config": {}}, format="json")
    assert answer.status_code == 400 and "kind" in answer.json()["error"]["fields"]


@pytest.mark.django_db
def test_activations_sync_and_show_their_counts_syncs_and_deliveries(marketing, receiver, webhook, make_person,
                                                                     vips, django_capture_on_commit_callbacks):
    make_person("ann@example.com")
    make_person("bob@example.com", consent=None)
    segment_refresh(segment=vips)
    created = marketing.post("/api/v1/activations/", {
        "name": "VIPs to the hook", "segment": vips.slug, "destination": webhook.pk, "purpose": "email_marketing",
        "schedule": "hourly", "mapping": {"email": "traits.email"}}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        started = marketing.post(f"/api/v1/activations/{pk}/sync/")
    assert started.status_code == 202
    (sync,) = marketing.get(f"/api/v1/syncs/?activation={pk}").json()["results"]
    assert {k: sync[k] for k in ("status", "members", "added", "skipped_consent", "sent", "failed")} == {
        "status": "succeeded", "members": 2, "added": 1, "skipped_consent": 1, "sent": 1, "failed": 0}
    assert marketing.get(f"/api/v1/activations/{pk}/").json()["last_sync_status"] == "succeeded"
    (delivery,) = marketing.get(f"/api/v1/deliveries/?activation={pk}").json()["results"]
    assert delivery["status"] == "delivered" and delivery["item_count"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"mapping": {"email": "traits.email", "ltv": "computed.no_such_trait"}}, "mapping.ltv"),
    ({"mapping": {"email": "password"}}, "mapping.email"),
    ({"mapping": {"bad name!": "traits.email"}}, "mapping.bad name!"),
    ({"mapping": {}}, "mapping"),
    ({"schedule": "weekly"}, "schedule"),
    ({"options": {"mode": "message"}}, "options"),  # a webhook takes no options
])
def test_a_bad_activation_is_a_400_naming_the_field(marketing, webhook, vips, purpose, change, field):
    body = {"name": "A", "segment": vips.slug, "destination": webhook.pk, "purpose": "email_marketing",
            "mapping": {"email": "traits.email"}, **change}
    answer = marketing.post("/api/v1/activations/", body, format="json")
    assert answer.status_code == 400
    assert field in answer.json()["error"]["fields"], answer.json()


@pytest.mark.django_db
def test_a_dead_letter_is_listed_and_sent_again(marketing, receiver, webhook, make_person, vips, make_activation,
                                                run_sync, django_capture_on_commit_callbacks):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    receiver.answer((400, 0))
    run_sync(make_activation(webhook))
    (dead,) = marketing.get("/api/v1/deliveries/?status=dead").json()["results"]
    assert "HTTP 400" in dead["last_error"]

    with django_capture_on_commit_callbacks(execute=True):
        answer = marketing.post(f"/api/v1/deliveries/{dead['id']}/resend/")
    assert answer.status_code == 202
    assert Delivery.objects.get(pk=dead["id"]).status == Delivery.Status.DELIVERED
    again = marketing.post(f"/api/v1/deliveries/{dead['id']}/resend/")
    assert again.status_code == 400 and "status" in again.json()["error"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "read", "write"), [
    ("Marketing", 200, 201), ("Admin", 200, 201), ("Sales", 200, 403), ("Privacy", 200, 403),
    ("Service", 403, 403), (None, 403, 403)])
def test_marketing_and_admin_manage_and_others_look_by_role(api_as, receiver, role, read, write):
    client = api_as(role)
    assert client.get("/api/v1/destinations/").status_code == read
    assert client.get("/api/v1/deliveries/").status_code == read
    assert _webhook(client, receiver.url).status_code == write
