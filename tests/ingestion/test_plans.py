"""Tracking plans: schema checks on save, verdicts, recorded violations (aggregated, masked), and blocked messages
replayed through the pipeline once the plan is fixed."""

import json

import pytest

from ingestion.models import InboxMessage, PlanViolation, TrackingPlan
from ingestion.services import inbox_store, plans, source_create
from ingestion.services.plans import (
    BLOCK_REASON_PREFIX,
    MAX_EXAMPLES,
    PlanError,
    block_reason,
    blocked_messages_replay,
    masked,
    plans_check,
    tracking_plan_save,
)
from profiles.models import Event

ORDER = {
    "type": "object",
    "properties": {"total": {"type": "number", "minimum": 0}, "currency": {"enum": ["EUR", "USD"]},
                   "email": {"type": "string", "format": "email"}},
    "required": ["total"],
}
TRAITS = {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}


@pytest.fixture
def shop(db):
    source, _ = source_create(name="Shop", kind="http")
    return source


def order(total=10, **properties):
    return {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": f"m-{total}-{len(properties)}",
            "properties": {"total": total, **properties}}


# --- saving plans ----------------------------------------------------------------------------------------------

def test_a_bad_schema_is_refused_naming_the_event(shop):
    with pytest.raises(PlanError) as error:
        tracking_plan_save(source=shop, events={"Order Completed": {"type": "numbr"}})
    assert error.value.field == "events.Order Completed"
    assert "not a valid JSON Schema" in error.value.message
    assert not TrackingPlan.objects.filter(source=shop).exists()


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"mode": "drop"}, "mode", "allow, flag, block"),
    ({"unplanned": "maybe"}, "unplanned", "allow, flag, block"),
    ({"events": ["Order Completed"]}, "events", "object"),
    ({"events": {"Order": "number"}}, "events.Order", "JSON object"),
    ({"events": {" Order": {}}}, "events. Order", "surrounding spaces"),
    ({"events": {"Order": {"$ref": "https://example.com/schema.json"}}}, "events.Order", "local references"),
    ({"events": {"Order": {"$ref": "#/$defs/missing"}}}, "events.Order", "cannot be resolved"),
    ({"identify_schema": {"required": "email"}}, "identify_schema", "not a valid JSON Schema"),
])
def test_wrong_plans_name_what_is_wrong(shop, kwargs, field, words):
    with pytest.raises(PlanError) as error:
        tracking_plan_save(source=shop, **kwargs)
    assert error.value.field == field
    assert words in error.value.message


def test_saving_again_replaces_the_plan_and_bumps_its_version(shop):
    first = tracking_plan_save(source=shop, events={"Order Completed": ORDER})
    second = tracking_plan_save(source=shop, mode="block", events={})
    assert first.pk == second.pk
    assert second.version == 2
    assert second.events == {}
    from cdp.core.models import AuditEntry

    assert list(AuditEntry.objects.filter(object_type="ingestion.trackingplan").order_by("id")
                .values_list("action", flat=True)) == ["create", "change"]


# --- verdicts --------------------------------------------------------------------------------------------------

def test_a_source_without_a_plan_allows_everything(shop):
    verdicts = plans_check(source=shop, messages=[order(), {"type": "track", "event": "Anything"}])
    assert [v.action for v in verdicts] == ["allow", "allow"]


def test_flag_mode_flags_planned_messages_that_break_their_schema(shop):
    tracking_plan_save(source=shop, mode="flag", events={"Order Completed": ORDER})
    verdicts = plans_check(source=shop, messages=[
        order(10, currency="EUR"),
        order("ten"),
        {"type": "track", "event": "Order Completed", "userId": "u", "properties": {"currency": "GBP"}},
        order(5, email="not-an-email"),
    ])
    assert [v.action for v in verdicts] == ["allow", "flag", "flag", "flag"]
    assert verdicts[1].violations == [{"path": "properties.total", "message": "expected type number",
                                       "schema": "Order Completed"}]
    assert {(v["path"], v["message"]) for v in verdicts[2].violations} == {
        ("properties.total", "is required"), ("properties.currency", 'expected one of ["EUR", "USD"]')}
    assert verdicts[3].violations[0]["message"] == "not a valid email"


def test_unplanned_events_follow_their_own_setting(shop):
    tracking_plan_save(source=shop, mode="block", unplanned="allow", events={"Order Completed": ORDER})
    assert plans_check(source=shop, messages=[{"type": "track", "event": "Other"}])[0].action == "allow"
    tracking_plan_save(source=shop, mode="allow", unplanned="block", events={"Order Completed": ORDER})
    unplanned, broken = plans_check(source=shop, messages=[{"type": "track", "event": "Other"}, order("x")])
    assert unplanned.action == "block"
    assert unplanned.violations == [{"path": "event", "message": "unplanned event", "schema": "Other"}]
    assert broken.action == "allow"  # allow mode does not check planned events


def test_unplanned_event_names_are_aggregated_per_name_up_to_a_cap(shop, monkeypatch):
    monkeypatch.setattr(plans, "MAX_UNPLANNED_NAMES", 3)
    tracking_plan_save(source=shop, mode="flag", unplanned="flag", events={"Order Completed": ORDER})
    # A client that makes up a name per message: 2 names seen twice, then 20 more names over two batches.
    plans_check(source=shop, messages=[{"type": "track", "event": name, "userId": "u"}
                                       for name in ("A", "B", "A", "B")])
    plans_check(source=shop, messages=[{"type": "track", "event": f"N{i}", "userId": "u"} for i in range(10)])
    plans_check(source=shop, messages=[{"type": "track", "event": f"N{i}", "userId": "u"} for i in range(10, 20)]
                + [{"type": "track", "event": "A", "userId": "u"}])
    rows = {row.schema: row for row in PlanViolation.objects.filter(source=shop, path="event")}
    assert set(rows) == {"A", "B", "N0", plans.OTHER_UNPLANNED}
    assert (rows["A"].count, rows["B"].count, rows["N0"].count) == (3, 2, 1)
    other = rows[plans.OTHER_UNPLANNED]
    assert other.count == 19 and other.message == "unplanned event"
    assert len(other.examples) == MAX_EXAMPLES
    # The examples keep the names (the latest first).
    assert [example["message"]["event"] for example in other.examples] == ["N14", "N13", "N12", "N11", "N10"]
    assert sum(row.count for row in rows.values()) == 4 + 10 + 11  # every violation is counted


def test_identify_traits_and_other_types(shop):
    tracking_plan_save(source=shop, mode="block", identify_schema=TRAITS, unplanned="block")
    identify_ok, identify_bad, page = plans_check(source=shop, messages=[
        {"type": "identify", "userId": "u", "traits": {"email": "a@example.com"}},
        {"type": "identify", "userId": "u"},
        {"type": "page", "name": "Home", "anonymousId": "a"},
    ])
    assert identify_ok.action == "allow"
    assert identify_bad.action == "block"
    assert identify_bad.violations == [{"path": "traits.email", "message": "is required", "schema": "identify"}]
    assert page.action == "allow"


def test_wrong_shapes_are_violations_not_crashes(shop):
    tracking_plan_save(source=shop, mode="flag", unplanned="flag", events={"Order Completed": ORDER})
    verdicts = plans_check(source=shop, messages=[
        {"type": "track", "event": "Order Completed", "properties": ["not", "an", "object"]},
        {"type": "track", "event": {"name": "odd"}},
        {"type": "track"},
    ])
    assert verdicts[0].violations[0] == {"path": "properties", "message": "expected type object",
                                         "schema": "Order Completed"}
    assert verdicts[1].violations[0]["schema"] == "(no event name)"
    assert verdicts[2].action == "flag"


def test_the_block_reason():
    from ingestion.services.plans import PlanVerdict

    verdict = PlanVerdict("block", [{"path": "properties.total", "message": "is required", "schema": "Order"}])
    assert block_reason(verdict) == f"{BLOCK_REASON_PREFIX}Order properties.total: is required"


# --- recorded violations ---------------------------------------------------------------------------------------

def test_violations_are_aggregated_with_masked_examples(shop):
    tracking_plan_save(source=shop, mode="flag", events={"Order Completed": ORDER})
    plans_check(source=shop, messages=[order("x", email="ada.lovelace@example.com") for _ in range(3)])
    plans_check(source=shop, messages=[order("y", email="ada.lovelace@example.com") for _ in range(MAX_EXAMPLES)])
    row = PlanViolation.objects.get(source=shop, path="properties.total")
    assert (row.schema, row.message, row.count, row.blocked) == ("Order Completed", "expected type number", 8, 0)
    assert len(row.examples) == MAX_EXAMPLES
    assert row.first_seen <= row.last_seen
    example = row.examples[0]["message"]
    assert example["event"] == "Order Completed"
    assert example["properties"]["total"] == "y"
    assert "ada.lovelace@example.com" not in str(row.examples)
    assert example["properties"]["email"].endswith(".com") and "•" in example["properties"]["email"]


@pytest.mark.django_db
def test_masking_of_example_snippets():
    from profiles.services import trait_classify

    trait_classify(trait="diagnosis", classification="sensitive")
    snippet = masked({"email": "a@b.de", "phone_number": "+49 170 1234567", "note": "x" * 80, "plan": "gold",
                      "total": 5, "first_name": "Ada", "contact": "+491701234567", "items": [{"name": "Ada"}],
                      "diagnosis": "asthma"})
    assert snippet["plan"] == "gold" and snippet["total"] == 5
    for key in ("email", "phone_number", "note", "first_name", "contact"):
        assert "•" in snippet[key], key
    assert snippet["items"][0]["name"] != "Ada"
    assert snippet["diagnosis"] == "•••"  # a sensitive trait is hidden whole, by its classification


# --- through the pipeline: block, fix, replay ------------------------------------------------------------------

def test_a_blocked_message_is_rejected_and_replayed_after_the_plan_is_fixed(
        shop, django_capture_on_commit_callbacks):
    tracking_plan_save(source=shop, mode="block", events={"Order Completed": ORDER})
    with django_capture_on_commit_callbacks(execute=True):
        inbox_store(source=shop, messages=[order(10), order("12.50")])
    good, bad = InboxMessage.objects.order_by("id")
    assert good.status == "processed"
    assert bad.status == "rejected"
    assert bad.reason.startswith(BLOCK_REASON_PREFIX)
    assert "properties.total" in bad.reason
    assert PlanViolation.objects.get(source=shop, path="properties.total").blocked == 1

    # Replaying before the fix blocks it again.
    with django_capture_on_commit_callbacks(execute=True):
        assert blocked_messages_replay(source=shop) == 1
    bad.refresh_from_db()
    assert bad.status == "rejected"

    fixed = {**ORDER, "properties": {**ORDER["properties"], "total": {"type": ["number", "string"]}}}
    tracking_plan_save(source=shop, mode="block", events={"Order Completed": fixed})
    with django_capture_on_commit_callbacks(execute=True):
        assert blocked_messages_replay(source=shop, event="Order Completed") == 1
    bad.refresh_from_db()
    assert bad.status == "processed"
    assert bad.reason == ""
    assert Event.objects.filter(name="Order Completed").count() == 2


def test_replay_only_touches_blocked_messages_of_the_filter(shop, django_capture_on_commit_callbacks):
    tracking_plan_save(source=shop, mode="block", identify_schema=TRAITS, events={"Order Completed": ORDER})
    with django_capture_on_commit_callbacks(execute=True):
        inbox_store(source=shop, messages=[order("x"), {"type": "identify", "userId": "u", "traits": {}}])
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"rejected"}
    tracking_plan_save(source=shop, mode="flag", identify_schema=TRAITS, events={"Order Completed": ORDER})
    with django_capture_on_commit_callbacks(execute=True):
        assert blocked_messages_replay(source=shop, event="identify") == 1
    identify = InboxMessage.objects.get(type="identify", payload__userId="u")
    assert identify.status == "processed"
    assert InboxMessage.objects.get(type="track").status == "rejected"


def test_flag_mode_processes_and_records(shop, django_capture_on_commit_callbacks):
    tracking_plan_save(source=shop, mode="flag", events={"Order Completed": ORDER})
    with django_capture_on_commit_callbacks(execute=True):
        inbox_store(source=shop, messages=[order("x"), order("y")])
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}
    row = PlanViolation.objects.get(source=shop, path="properties.total")
    assert (row.count, row.blocked) == (2, 0)


# --- the fast check agrees with jsonschema ---------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

from ingestion.services.plan_schemas import fast_validator  # noqa: E402

FAST_SCHEMAS = [
    ORDER,
    TRAITS,
    {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "integer", "maximum": 3}}},
    {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}, "minProperties": 1},
    {"type": ["string", "null"], "pattern": "^a", "minLength": 2},
    {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1, "maxItems": 3},
    {"enum": [1, "1", True, None]},
    {"const": 0},
    {"type": "object", "properties": {"x": {"type": "boolean"}, "y": {"enum": [False]}}, "required": ["x"],
     "title": "annotations are ignored", "description": "..."},
    {"properties": {"n": {"type": "integer", "minimum": 0}}},
    {"type": "string", "format": "email"},
    True,
    False,
]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False),
                    st.sampled_from(["", "a", "ab", "abcd", "1", "a@b.de", "x"]))
instances = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.sampled_from(["a", "b", "x", "y", "n", "total", "currency", "email", "z"]), children,
                    max_size=5)), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(instance=instances, index=st.integers(0, len(FAST_SCHEMAS) - 1))
def test_the_fast_check_agrees_with_jsonschema(instance, index):
    schema = FAST_SCHEMAS[index]
    fast = fast_validator(schema)
    assert fast is not None
    reference = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert fast(instance) == reference.is_valid(instance)


@pytest.mark.parametrize("schema", [
    {"$ref": "#/$defs/a", "$defs": {"a": {}}},
    {"anyOf": [{"type": "string"}]},
    {"type": "array", "prefixItems": [{"type": "string"}]},
    {"patternProperties": {"^a": {}}},
    {"properties": {"a": {"not": {}}}},
    {"enum": [{"a": 1}]},
    {"$schema": "http://json-schema.org/draft-07/schema#"},
    {"nullable": True},
])
def test_other_keywords_fall_back_to_jsonschema(schema):
    assert fast_validator(schema) is None


# --- API -------------------------------------------------------------------------------------------------------

def test_api_plans_crud_with_field_errors(shop, api_as):
    admin = api_as("Admin")
    response = admin.post("/api/v1/tracking-plans/", {"source": "shop", "mode": "block",
                                                       "events": {"Order Completed": {"type": "numbr"}}},
                          format="json")
    assert response.status_code == 400
    assert "events.Order Completed" in response.json()["error"]["fields"]

    response = admin.post("/api/v1/tracking-plans/", {"source": "shop", "mode": "block",
                                                       "events": {"Order Completed": ORDER}}, format="json")
    assert response.status_code == 201, response.json()
    plan_id = response.json()["id"]
    assert response.json()["version"] == 1

    response = admin.post("/api/v1/tracking-plans/", {"source": "shop"}, format="json")
    assert response.status_code == 400
    assert "source" in response.json()["error"]["fields"]

    response = admin.patch(f"/api/v1/tracking-plans/{plan_id}/", {"mode": "flag"}, format="json")
    assert response.status_code == 200
    assert (response.json()["mode"], response.json()["version"], response.json()["events"]) == (
        "flag", 2, {"Order Completed": ORDER})

    listed = admin.get("/api/v1/tracking-plans/", {"source": "shop"}).json()
    assert [row["id"] for row in listed["results"]] == [plan_id]
    assert admin.delete(f"/api/v1/tracking-plans/{plan_id}/").status_code == 204


def test_api_marketing_reads_plans_but_cannot_change_them(shop, api_as):
    tracking_plan_save(source=shop, events={"Order Completed": ORDER})
    marketing = api_as("Marketing")
    assert marketing.get("/api/v1/tracking-plans/").status_code == 200
    assert marketing.get("/api/v1/plan-violations/").status_code == 200
    response = marketing.post("/api/v1/tracking-plans/", {"source": "shop"}, format="json")
    assert response.status_code == 403
    plan = shop.tracking_plan
    assert marketing.post(f"/api/v1/tracking-plans/{plan.pk}/replay/", {}, format="json").status_code == 403


def test_api_violations_with_filters_and_replay(shop, api_as, django_capture_on_commit_callbacks):
    plan = tracking_plan_save(source=shop, mode="block", events={"Order Completed": ORDER})
    with django_capture_on_commit_callbacks(execute=True):
        inbox_store(source=shop, messages=[order("x"), order("y"), {"type": "track", "event": "Order Completed",
                                                                  "userId": "u", "properties": {}}])
    admin = api_as("Admin")
    rows = admin.get("/api/v1/plan-violations/", {"source": "shop", "path": "total", "min_count": 2}).json()
    assert [(r["path"], r["message"], r["count"], r["blocked"]) for r in rows["results"]] == [
        ("properties.total", "expected type number", 2, 2)]
    assert admin.get("/api/v1/plan-violations/", {"source": "shop", "min_count": 3}).json()["results"] == []
    bad = admin.get("/api/v1/plan-violations/", {"since": "yesterday"})
    assert bad.status_code == 400

    response = admin.post(f"/api/v1/tracking-plans/{plan.pk}/replay/", {"message_ids": "x"}, format="json")
    assert response.status_code == 400
    fixed = {**ORDER, "required": [], "properties": {**ORDER["properties"], "total": {}}}
    tracking_plan_save(source=shop, mode="block", events={"Order Completed": fixed})
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/api/v1/tracking-plans/{plan.pk}/replay/", {}, format="json")
    assert response.json() == {"replayed": 3}
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}


# --- UI --------------------------------------------------------------------------------------------------------

def test_ui_plan_editor_saves_and_shows_schema_errors(shop, client, make_user):
    client.force_login(make_user("Admin"))
    assert client.get("/sources/plans/").status_code == 200
    page = client.get("/sources/shop/plan/")
    assert page.status_code == 200
    assert b"No plan yet" in page.content

    response = client.post("/sources/shop/plan/", {"mode": "block", "unplanned": "allow",
                                                  "events": '{"Order Completed": {"type": "numbr"}}'},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"Order Completed: not a valid JSON Schema" in response.content
    assert not TrackingPlan.objects.filter(source=shop).exists()

    response = client.post("/sources/shop/plan/", {"mode": "block", "unplanned": "allow",
                                                  "events": json.dumps({"Order Completed": ORDER})},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "plan-saved" in response.headers["HX-Trigger"]
    assert b'id="plan-editor"' in response.content and b"<html" not in response.content
    shop.refresh_from_db()
    assert shop.tracking_plan.events == {"Order Completed": ORDER}

    response = client.post("/sources/shop/plan/", {"mode": "block", "unplanned": "allow", "events": "{not json"})
    assert response.status_code == 200
    assert b"Enter a valid JSON" in response.content


def test_ui_violations_and_replay(shop, client, make_user, django_capture_on_commit_callbacks):
    tracking_plan_save(source=shop, mode="block", events={"Order Completed": ORDER})
    with django_capture_on_commit_callbacks(execute=True):
        inbox_store(source=shop, messages=[order("x", email="grace@example.com")])
    client.force_login(make_user("Marketing"))
    listing = client.get("/sources/shop/plan/violations/?compact=1", HTTP_HX_REQUEST="true")
    assert listing.status_code == 200
    assert b"expected type number" in listing.content and b"<html" not in listing.content
    assert b"grace@example.com" not in listing.content
    assert b"Replay them" not in listing.content  # Marketing may not replay
    page = client.get("/sources/shop/plan/")
    assert b"Save the plan" not in page.content  # read-only for Marketing
    assert client.post("/sources/shop/plan/replay/").status_code == 403

    client.force_login(make_user("Admin"))
    assert b"Replay them" in client.get("/sources/shop/plan/violations/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/sources/shop/plan/replay/", HTTP_HX_REQUEST="true")
    assert b"1 blocked message replayed" in response.content
    assert "violations-changed" in response.headers["HX-Trigger"]
    assert InboxMessage.objects.get().status == "rejected"  # the plan is unchanged: blocked again


def test_admin_saves_plans_through_the_service(shop, client, db):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only"))
    url = "/admin/ingestion/trackingplan/add/"
    response = client.post(url, {"source": shop.pk, "mode": "block", "unplanned": "allow",
                                 "events": '{"Order": {"type": "numbr"}}', "identify_schema": "null"})
    assert response.status_code == 200
    assert b"not a valid JSON Schema" in response.content
    response = client.post(url, {"source": shop.pk, "mode": "block", "unplanned": "allow",
                                 "events": json.dumps({"Order": ORDER}), "identify_schema": "null"})
    assert response.status_code == 302
    assert TrackingPlan.objects.get(source=shop).version == 1
