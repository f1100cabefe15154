"""The segments API: CRUD with rule errors by path, members with masked traits, size, why, estimate, overlap."""

import pytest

from cdp.core.models import AuditEntry
from segments.models import Segment
from tests.segments.conftest import shopper

pytestmark = pytest.mark.django_db

GERMANS = {"type": "trait", "trait": "country", "op": "equals", "value": "DE"}


@pytest.fixture
def people(db):
    return [shopper("anna.schmidt@example.de", traits={"country": "DE", "first_name": "Anna"},
                    events=[("Order Completed", 5, {"revenue": 10})]),
            shopper("ben@example.de", traits={"country": "DE", "first_name": "Ben"}),
            shopper("cleo@example.at", traits={"country": "AT", "first_name": "Cleo"})]


@pytest.fixture
def marketing(api_as, django_capture_on_commit_callbacks):
    return api_as("Marketing")


def create(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/api/v1/segments/", data, format="json")


def test_create_computes_the_membership_and_lists_it(people, marketing, django_capture_on_commit_callbacks):
    response = create(marketing, django_capture_on_commit_callbacks, name="Germans", rules=GERMANS)
    assert response.status_code == 201, response.content
    segment_id = response.json()["id"]
    assert response.json()["slug"] == "germans"
    detail = marketing.get(f"/api/v1/segments/{segment_id}/").json()
    assert detail["size"] == 2 and detail["last_refreshed_at"]
    members = marketing.get(f"/api/v1/segments/{segment_id}/members/").json()
    assert members["count"] == 2
    assert {m["id"] for m in members["results"]} == {people[0].pk, people[1].pk}
    assert "traits" not in members["results"][0]


def test_an_invalid_tree_is_a_400_naming_the_wrong_node(people, marketing, django_capture_on_commit_callbacks):
    response = create(marketing, django_capture_on_commit_callbacks, name="Broken", rules={
        "type": "group", "op": "and", "children": [GERMANS, {"type": "event", "event": "Nope Happened",
                                                             "op": "performed"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["rules.children.1.event"]
    assert "Nope Happened" in error["fields"]["rules.children.1.event"][0]
    assert not Segment.objects.exists()
    assert create(marketing, django_capture_on_commit_callbacks, name="Empty").json()["error"]["fields"] == {
        "rules": ["A dynamic segment needs rules."]}


def test_members_with_chosen_traits_are_masked_for_marketing(people, api_as, django_capture_on_commit_callbacks):
    marketing, sales = api_as("Marketing"), api_as("Sales")
    segment_id = create(marketing, django_capture_on_commit_callbacks, name="Germans", rules=GERMANS).json()["id"]
    masked = marketing.get(f"/api/v1/segments/{segment_id}/members/?fields=email,country").json()["results"]
    emails = {m["traits"]["email"] for m in masked}
    assert "anna.schmidt@example.de" not in emails and all("•" in e for e in emails)
    assert {m["traits"]["country"] for m in masked} == {"DE"}
    assert not AuditEntry.objects.filter(action="export").exists()
    plain = sales.get(f"/api/v1/segments/{segment_id}/members/?fields=email").json()["results"]
    assert {m["traits"]["email"] for m in plain} == {"anna.schmidt@example.de", "ben@example.de"}
    audit = AuditEntry.objects.get(action="export")
    assert audit.fields == ["email"] and audit.actor == sales.user


def test_size_history_refresh_and_why(people, marketing, django_capture_on_commit_callbacks):
    segment_id = create(marketing, django_capture_on_commit_callbacks, name="Germans", rules=GERMANS).json()["id"]
    size = marketing.get(f"/api/v1/segments/{segment_id}/size/").json()
    assert size["size"] == 2 and size["history"][0]["size"] == 2 and size["history"][0]["entered"] == 2
    assert marketing.get(f"/api/v1/segments/{segment_id}/size/?days=lots").status_code == 400
    refreshed = marketing.post(f"/api/v1/segments/{segment_id}/refresh/").json()
    assert refreshed["entered"] == 0 and refreshed["size"] == 2
    why = marketing.get(f"/api/v1/segments/{segment_id}/why/?profile={people[2].pk}").json()
    assert why["member"] is False and why["conditions"][0]["label"] == "country is DE"
    assert why["conditions"][0]["matched"] is False
    assert marketing.get(f"/api/v1/segments/{segment_id}/why/?profile=999999").status_code == 400


def test_estimate_and_overlap(people, marketing, django_capture_on_commit_callbacks):
    assert marketing.post("/api/v1/segments/estimate/", {"rules": GERMANS}, format="json").json() == {"size": 2}
    bad = marketing.post("/api/v1/segments/estimate/", {"rules": {**GERMANS, "op": "resembles"}}, format="json")
    assert bad.status_code == 400 and "rules.op" in bad.json()["error"]["fields"]
    a = create(marketing, django_capture_on_commit_callbacks, name="Germans", rules=GERMANS).json()["id"]
    b = create(marketing, django_capture_on_commit_callbacks, name="Buyers",
               rules={"type": "event", "event": "Order Completed", "op": "performed"}).json()["id"]
    assert marketing.get(f"/api/v1/segments/overlap/?a={a}&b={b}").json() == {"a_only": 1, "both": 1, "b_only": 0}
    assert marketing.get(f"/api/v1/segments/overlap/?a={a}").status_code == 400


def test_update_rules_and_refuse_a_cycle(people, marketing, django_capture_on_commit_callbacks):
    a = create(marketing, django_capture_on_commit_callbacks, name="Germans", rules=GERMANS).json()
    b = create(marketing, django_capture_on_commit_callbacks, name="In germans",
               rules={"type": "segment", "segment": a["slug"], "op": "member"}).json()
    assert marketing.get(f"/api/v1/segments/{b['id']}/").json()["size"] == 2
    cycle = marketing.patch(f"/api/v1/segments/{a['id']}/",
                            {"rules": {"type": "segment", "segment": b["slug"], "op": "member"}}, format="json")
    assert cycle.status_code == 400 and "rules.segment" in cycle.json()["error"]["fields"]
    in_use = marketing.delete(f"/api/v1/segments/{a['id']}/")
    assert in_use.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        changed = marketing.patch(f"/api/v1/segments/{a['id']}/", {"rules": {**GERMANS, "value": "AT"}},
                                  format="json")
    assert changed.status_code == 200
    assert marketing.get(f"/api/v1/segments/{a['id']}/").json()["size"] == 1


def test_roles(people, api_as, django_capture_on_commit_callbacks):
    service = api_as("Service")
    assert service.get("/api/v1/segments/").status_code == 200
    assert service.post("/api/v1/segments/", {"name": "x", "rules": GERMANS}, format="json").status_code == 403
    assert api_as(None).get("/api/v1/segments/").status_code == 403
    schema = service.get("/api/v1/segments/rules-schema/").json()
    assert set(schema["$defs"]) >= {"group", "trait", "event", "sequence", "consent", "segment"}
