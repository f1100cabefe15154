"""Profiles with consent, segments, destinations and the local fake servers for the activation tests."""

from __future__ import annotations

import pytest
from django.utils import timezone

from activation import services
from activation.models import Activation
from consent.models import ConsentRecord, Purpose
from consent.services import consent_record
from profiles.models import Profile
from profiles.services import Observation, observations_apply
from segments.services import segment_create
from tests.activation.fakes import Mailbox, free_port, receiver_start

VIPS = {"type": "trait", "trait": "tier", "op": "equals", "value": "vip"}


@pytest.fixture(autouse=True)
def local_fakes_allowed(settings):
    """The local fake servers listen on 127.0.0.1, which destinations may not reach by default (public addresses
    only): allowed here as an operator would allow an internal relay. test_destination_security.py proves the
    refusals without it."""
    settings.CDP_DESTINATION_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def receiver():
    receiver = receiver_start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def mailbox():
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def purpose(db):
    return Purpose.objects.get_or_create(key="email_marketing", defaults={"name": "Email marketing"})[0]


def person(email: str, *, tier: str = "vip", consent: str | None = ConsentRecord.Status.GRANTED,
           purpose_key: str = "email_marketing", **traits) -> Profile:
    """A profile identified by ``email``, with traits, and (unless ``consent=None``) a decision for the purpose."""
    ids = observations_apply(observations=[Observation(
        identities=[("email", email)], timestamp=timezone.now(), source="crm", channel="crm",
        traits={"email": email, "tier": tier, **traits}, event_type="identify", message_id=f"identify-{email}")])
    profile = Profile.objects.get(pk=ids[0])
    if consent:
        consent_record(profile=profile, purpose=Purpose.objects.get(key=purpose_key), status=consent)
    return profile


@pytest.fixture
def make_person(purpose):
    return person


@pytest.fixture
def vips(purpose):
    """A dynamic segment of the profiles whose tier is "vip" (rules are checked against the traits that exist, so
    one profile outside it is made first)."""
    from segments.catalog import catalog_clear

    person("outsider@example.com", tier="none", consent=None)
    catalog_clear()
    yield segment_create(name="VIPs", rules=VIPS)
    catalog_clear()


def recheck(*profiles) -> None:
    """Bring the profiles' segment memberships up to date now (what the segments task does after a change)."""
    from segments.services import memberships_recheck

    memberships_recheck(profile_ids=[p.pk for p in profiles])


@pytest.fixture
def webhook(receiver):
    return services.destination_create(name="Hook", kind="webhook",
                                       config={"url": receiver.url + "/hook", "read_timeout": 1}).destination


MAPPING = {"email": "traits.email", "first_name": "traits.first_name", "customer": "profile.id"}


@pytest.fixture
def make_activation(purpose, vips):
    def make(destination, *, mapping=None, schedule=Activation.Schedule.MANUAL, segment=None, **kwargs):
        return services.activation_create(name=f"VIPs to {destination.name}", segment=segment or vips,
                                          destination=destination, purpose=purpose, mapping=mapping or MAPPING,
                                          schedule=schedule, **kwargs)
    return make


@pytest.fixture
def run_sync(django_capture_on_commit_callbacks):
    """A sync with its deliveries sent (tasks run in-process once the transaction commits)."""
    def run(activation, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            sync = services.sync_run(activation=activation, **kwargs)
        if sync is not None:
            sync.refresh_from_db()
        return sync
    return run
