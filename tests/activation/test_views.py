"""The activation UI: pages render for each role without inline script or style; Marketing creates destinations
(a secret shown once) and activations (a bad mapping is a form error), syncs, and sends a dead letter again; the
profile page shows the delivery log; the dashboard counts failed deliveries."""

import pytest
from django.urls import reverse

from activation.destinations.base import secret as secret_of
from activation.models import Activation, Delivery, Destination
from segments.services import segment_refresh
from tests.core.test_ui_shell import audit_page


@pytest.fixture
def login_as(client, make_user):
    def login(role):
        client.force_login(make_user(role))
        return client
    return login


@pytest.fixture
def synced(receiver, webhook, make_person, vips, make_activation, run_sync):
    """One delivered and one dead delivery to the webhook, about Ann."""
    ann = make_person("ann@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(webhook)
    run_sync(activation)
    receiver.answer((400, 0))
    make_person("ann@example.com", first_name="Ann")
    run_sync(activation)
    return {"activation": activation, "profile": ann, "dead": Delivery.objects.get(status=Delivery.Status.DEAD)}


def _pages(synced):
    activation = synced["activation"]
    return [reverse("activation:list"), reverse("activation:detail", args=[activation.pk]),
            reverse("activation:destination-list"), reverse("activation:sync-list"),
            reverse("activation:delivery-list"), reverse("activation:dead-letters")]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [("Marketing", 200), ("Admin", 200), ("Sales", 200),
                                              ("Privacy", 200), ("Service", 403), (None, 403)])
def test_pages_render_for_the_roles_that_may_look(login_as, synced, role, status):
    client = login_as(role)
    for url in _pages(synced):
        assert client.get(url).status_code == status, url
    editing = reverse("activation:create")
    assert client.get(editing).status_code == (200 if role in ("Marketing", "Admin") else 403)


@pytest.mark.django_db
def test_activation_pages_have_no_inline_script_or_style(login_as, synced):
    client = login_as("Admin")
    urls = [*_pages(synced), reverse("activation:create"), reverse("activation:destination-create"),
            reverse("activation:edit", args=[synced["activation"].pk]),
            reverse("activation:destination-edit", args=[synced["activation"].destination_id])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert audit_page(response.content.decode()).problems == [], url


@pytest.mark.django_db
def test_a_new_webhook_shows_its_secret_once(login_as, receiver):
    client = login_as("Marketing")
    response = client.post(reverse("activation:destination-create") + "?kind=webhook", {
        "name": "Hook", "enabled": "on", "config_url": receiver.url, "config_connect_timeout": "3",
        "config_read_timeout": "10"})
    assert response.status_code == 200
    destination = Destination.objects.get()
    secret = secret_of(destination, "signing_secret")
    assert secret in response.content.decode() and "shown this once" in response.content.decode()
    edit = client.get(reverse("activation:destination-edit", args=[destination.pk])).content.decode()
    assert secret not in edit


@pytest.mark.django_db
def test_a_bad_destination_setting_is_shown_at_its_field(login_as):
    client = login_as("Marketing")
    response = client.post(reverse("activation:destination-create") + "?kind=audience_api", {
        "name": "Ads", "config_add_url": "nonsense", "config_remove_url": "https://ads.example/remove",
        "config_batch_size": "0"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter an http:// or https:// address." in html and "Enter at least 1." in html
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_an_activation_with_a_bad_mapping_is_not_saved_and_the_form_says_why(login_as, webhook, vips, purpose):
    client = login_as("Marketing")
    form = {"name": "VIPs", "segment": vips.pk, "destination": webhook.pk, "purpose": purpose.pk,
            "schedule": "daily", "enabled": "on", "mapping": "email = traits.email\nltv = computed.nope"}
    response = client.post(reverse("activation:create"), form)
    assert response.status_code == 400 and "There is no computed trait “nope”." in response.content.decode()
    assert not Activation.objects.exists()

    response = client.post(reverse("activation:create"), {**form, "mapping": "email = traits.email"})
    activation = Activation.objects.get()
    assert response.status_code == 302 and activation.mapping == {"email": "traits.email"}


@pytest.mark.django_db
def test_sync_now_and_send_a_dead_letter_again(login_as, synced, receiver, django_capture_on_commit_callbacks):
    client = login_as("Marketing")
    dead = synced["dead"]
    assert f"delivery-{dead.pk}" in client.get(reverse("activation:dead-letters")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("activation:delivery-resend", args=[dead.pk]))
    dead.refresh_from_db()
    assert dead.status == Delivery.Status.DELIVERED

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("activation:sync", args=[synced["activation"].pk]))
    assert response.status_code == 302
    assert synced["activation"].syncs.count() == 3
    assert login_as("Sales").post(reverse("activation:delivery-resend", args=[dead.pk])).status_code == 403


@pytest.mark.django_db
def test_the_profile_page_shows_its_delivery_log_and_the_dashboard_the_failures(login_as, synced):
    client = login_as("Sales")
    page = client.get(reverse("profiles:detail", args=[synced["profile"].pk])).content.decode()
    assert "Deliveries" in page and "Dead letter" in page and "Hook" in page
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "Failed deliveries" in dashboard
