"""The retention scenario of issue 6, end to end through public interfaces only: a live server, the tracking API
with a source's write key, the consent, profiles (lookup, notes), segments, offers, destinations and activations
APIs with users' tokens, the personalization API, and a local SMTP server (aiosmtpd) as the email service.

1. A customer browses anonymously on several days (one anonymousId), grants personalization in the cookie banner
   and later identifies once with her email.
2. She calls the call center; the agent finds her by email and notes that she intends to cancel.
3. Days later the same browser comes back, not logged in: a /v1/page with the old anonymousId. The personalization
   API for that anonymousId returns the retention offer.
4. Separately, a cart abandoner (added to the cart, no order within 24 h) is synced to the email audience and
   receives the offer mail on the local SMTP server; a shopper who ordered does not.

"Intends to cancel" is an event condition: a note of kind intent_to_cancel puts the event "Cancellation Intent
Noted" on the timeline, and the condition's 30-day window lets an old intent age out (the trait
``intends_to_cancel`` it also sets would stay true for ever).

Not marked e2e: no browser is needed, so it runs in every suite (SQLite and PostgreSQL).
"""

import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from ingestion.services.inbox import ENQUEUE_DEBOUNCE_SECONDS
from tests.activation.fakes import Mailbox, free_port

pytestmark = pytest.mark.django_db(transaction=True)

INTENDS_TO_CANCEL = {"type": "event", "event": "Cancellation Intent Noted", "op": "performed", "within_days": 30}
CART_ABANDONERS = {"type": "sequence", "first": {"event": "Product Added"}, "then": {"event": "Order Completed"},
                   "op": "not_followed_by", "within_hours": 24, "first_within_days": 7}
RETENTION = {"headline": "Stay with us: three months at half price", "cta_url": "/stay"}


@pytest.fixture
def mailbox(settings):
    from aiosmtpd.controller import Controller

    settings.CDP_DESTINATION_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the local relay: an allowed internal target
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


class Api:
    """A user of the REST API, by token."""

    def __init__(self, base: str, username: str, role: str, roles):
        user = get_user_model().objects.create_user(username=username)
        user.groups.add(roles[role])
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"

    def get(self, path: str, **params):
        response = self.session.get(self.base + path, params=params, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text[:2000])
        return response.json()

    def post(self, path: str, body: dict, expect: int = 201):
        response = self.session.post(self.base + path, json=body, timeout=60)
        assert response.status_code == expect, (path, response.status_code, response.text[:2000])
        return response.json()


class Website:
    """A web source sending Segment's tracking calls with its write key."""

    def __init__(self, base: str):
        out = StringIO()
        call_command("create_source", "Web shop", "--kind", "http", "--channel", "web", stdout=out)
        self.base = base
        self.write_key = out.getvalue().strip().splitlines()[-1]
        self.sent = 0

    def send(self, kind: str, message: dict, *, at: datetime) -> None:
        # Processing is enqueued at most once a second per source and process (with a broker); a call right
        # after another would wait for the periodic sweep.
        time.sleep(ENQUEUE_DEBOUNCE_SECONDS + 0.1)
        self.sent += 1
        body = {"messageId": f"scenario-{self.sent}", "timestamp": at.isoformat(),
                "sentAt": datetime.now(UTC).isoformat(), **message}
        response = requests.post(f"{self.base}/v1/{kind}", json=body, auth=(self.write_key, ""), timeout=30)
        assert response.status_code == 200, response.text


@pytest.fixture
def shop(live_server, roles):
    base = live_server.url
    privacy = Api(base, "pia", "Privacy", roles)
    # The stock purposes come with a migration; a live-server test flushes them afterwards, so a later test's
    # privacy officer creates them as a fresh install's would.
    have = {p["key"] for p in privacy.get("/api/v1/purposes/", page_size=100)["results"]}
    for key, name in (("personalization", "Personalization"), ("email_marketing", "Email marketing")):
        if key not in have:
            privacy.post("/api/v1/purposes/", {"key": key, "name": name, "legal_basis": "consent"})
    return {"base": base, "web": Website(base), "marketing": Api(base, "mara", "Marketing", roles),
            "agent": Api(base, "sam", "Service", roles), "backend": Api(base, "shop-backend", "Service", roles)}


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def customer_calls_to_cancel(shop, email: str) -> int:
    """The agent finds the caller by email and notes the intent; returns the profile id."""
    profile = shop["agent"].get("/api/v1/profiles/lookup/", type="email", value=email)
    shop["agent"].post(f"/api/v1/profiles/{profile['id']}/notes/", {
        "kind": "intent_to_cancel", "channel": "call_center", "text": "Wants to cancel: the price went up."})
    return profile["id"]


def test_a_returning_anonymous_visitor_who_intends_to_cancel_gets_the_retention_offer(shop):
    web, marketing, backend = shop["web"], shop["marketing"], shop["backend"]
    # Earlier: another customer's cancellation call, so the campaign can be set up on data that exists.
    web.send("identify", {"userId": "bob-1", "traits": {"email": "bob@example.org"}}, at=days_ago(40))
    customer_calls_to_cancel(shop, "bob@example.org")
    segment = marketing.post("/api/v1/segments/", {"name": "Intends to cancel", "rules": INTENDS_TO_CANCEL})
    marketing.post("/api/v1/offers/", {"name": "Retention", "segment": segment["slug"],
                                       "purpose": "personalization", "priority": 1, "content": RETENTION})

    # Anna browses anonymously on several days, accepts personalization, and identifies once.
    anon = "4f1c0d2e-anna-browser"
    for day, path in ((12, "/"), (9, "/plans"), (6, "/plans/premium")):
        web.send("page", {"anonymousId": anon, "name": path, "properties": {"path": path}}, at=days_ago(day))
    backend.post("/api/v1/consent-records/", {"identifier": {"type": "anonymous_id", "value": anon},
                                              "purpose": "personalization", "status": "granted",
                                              "source": "cookie banner"})
    web.send("identify", {"anonymousId": anon, "traits": {"email": "Anna@Example.org", "first_name": "Anna"}},
             at=days_ago(5))
    assert backend.get("/api/v1/personalize", anonymous_id=anon)["offer"] is None  # no intent yet

    # She calls the call center: the agent notes that she intends to cancel.
    profile_id = customer_calls_to_cancel(shop, "anna@example.org")

    # Days later the same browser comes back, not logged in.
    web.send("page", {"anonymousId": anon, "name": "/", "properties": {"path": "/"}}, at=days_ago(0))
    answer = backend.get("/api/v1/personalize", anonymous_id=anon)
    assert answer["offer"]["name"] == "Retention"
    assert answer["offer"]["content"] == RETENTION
    assert {s["slug"] for s in answer["segments"]} == {segment["slug"]}
    assert answer["traits"] == {"first_name": "Anna"}  # the shared traits only: no email
    profile = shop["agent"].get(f"/api/v1/profiles/{profile_id}/")
    assert {i["value"] for i in profile["identities"]} >= {anon, "anna@example.org"}
    # Someone the CDP does not know gets the same shape, empty.
    assert backend.get("/api/v1/personalize", anonymous_id="never-seen") == {
        "traits": {}, "computed_traits": {}, "segments": [], "offer": None}


def test_a_cart_abandoner_is_synced_to_the_email_audience_and_receives_the_offer_mail(shop, mailbox):
    web, marketing, backend = shop["web"], shop["marketing"], shop["backend"]
    for name, email in (("carl", "carl@example.org"), ("dora", "dora@example.org")):
        web.send("identify", {"anonymousId": f"anon-{name}", "traits": {"email": email, "first_name": name.title()}},
                 at=days_ago(3))
        backend.post("/api/v1/consent-records/", {"identifier": {"type": "email", "value": email},
                                                  "purpose": "email_marketing", "status": "granted",
                                                  "source": "checkout"})
        web.send("track", {"anonymousId": f"anon-{name}", "event": "Product Added",
                           "properties": {"sku": "BOOTS-42", "price": 89.0}}, at=days_ago(1.5))
    web.send("track", {"anonymousId": "anon-dora", "event": "Order Completed", "properties": {"revenue": 89.0}},
             at=days_ago(1.4))

    segment = marketing.post("/api/v1/segments/", {"name": "Cart abandoners", "rules": CART_ABANDONERS})
    destination = marketing.post("/api/v1/destinations/", {
        "name": "Shop mail", "kind": "email", "config": {
            "provider": "smtp", "host": "127.0.0.1", "port": mailbox.port, "use_tls": False,
            "from_email": "Shop <news@shop.example>"}})
    activation = marketing.post("/api/v1/activations/", {
        "name": "Cart reminder", "segment": segment["slug"], "destination": destination["id"],
        "purpose": "email_marketing", "schedule": "manual",
        "mapping": {"email": "traits.email", "first_name": "traits.first_name"},
        "options": {"mode": "message", "subject": "{{ first_name }}, your boots are waiting",
                    "body": "Hello {{ first_name }},\ncomplete your order today with 10% off: CART10."}})
    marketing.post(f"/api/v1/activations/{activation['id']}/sync/", {}, expect=202)

    sync = marketing.get("/api/v1/syncs/", activation=activation["id"])["results"][0]
    assert (sync["status"], sync["added"], sync["sent"], sync["failed"]) == ("succeeded", 1, 1, 0)
    (mail,) = mailbox.messages
    assert mail["To"] == "carl@example.org"
    assert mail["Subject"] == "Carl, your boots are waiting"
    assert "10% off: CART10" in mail.get_payload()
