"""The rule tree: validation with paths, the compiler (population and correlated shapes agree), explanations."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consent.services import consent_record, purposes_install
from segments.rules import RuleError, profiles_matching, rules_describe, rules_explain, rules_validate
from segments.services import memberships_recheck, segment_create, segment_update
from tests.segments.conftest import shopper

pytestmark = pytest.mark.django_db


def AND(*children):
    return {"type": "group", "op": "and", "children": list(children)}


def OR(*children):
    return {"type": "group", "op": "or", "children": list(children)}


def NOT(*children):
    return {"type": "group", "op": "not", "children": list(children)}


def trait(name, op, value=None):
    node = {"type": "trait", "trait": name, "op": op}
    if value is not None:
        node["value"] = value
    return node


def event(name, op, **extra):
    return {"type": "event", "event": name, "op": op, **extra}


@pytest.fixture
def people(db):
    """Five people whose differences each condition type can tell apart."""
    return {
        "anna": shopper("anna@example.de", traits={"country": "DE", "age": 34, "tier": "gold", "newsletter": True,
                                                   "birth_date": "1990-04-01"},
                        events=[("Order Completed", 24 * 3, {"revenue": 120.0}),
                                ("Order Completed", 24 * 10, {"revenue": 30.0}),
                                ("Product Added", 24 * 40, {"sku": "A"})]),
        "ben": shopper("ben@example.at", traits={"country": "AT", "age": 51, "tier": "silver", "newsletter": False,
                                                 "birth_date": "1973-09-12"},
                       events=[("Product Added", 30, {"sku": "B"})]),  # 30 h ago, no order since: abandoned
        "cleo": shopper("cleo@example.ch", traits={"country": "CH", "age": "unknown", "tier": "bronze"},
                        events=[("Product Added", 50, {"sku": "C"}), ("Order Completed", 49, {"revenue": 80.0})]),
        "dora": shopper("dora@example.de", traits={"country": "DE", "age": 19},
                        events=[("Order Completed", 24 * 60, {"revenue": 500.0})]),
        "emil": shopper("emil@example.de", traits={"country": "de"},
                        events=[("Product Added", 2, {"sku": "E"})]),  # 2 h ago: not abandoned yet
    }


def names(rules, people, *, correlated=False, shape=None):
    """Who meets the tree: counted as a population, correlated per profile, or (shape "recheck") as members of a
    dynamic segment after the real-time re-check of everyone (its rules compiled once, time bounds computed by
    the database)."""
    if shape == "recheck":
        segment = segment_create(name="Re-checked", rules=rules)  # its refresh would run on commit: never here
        memberships_recheck(profile_ids=[p.pk for p in people.values()])
        ids = set(segment.memberships.filter(exited_at__isnull=True).values_list("profile_id", flat=True))
    else:
        ids = set(profiles_matching(rules, correlated=correlated or shape == "correlated")
                  .values_list("pk", flat=True))
    return sorted(name for name, profile in people.items() if profile.pk in ids)


SHAPES = ["population", "correlated", "recheck"]


# --- validation -------------------------------------------------------------------------------------------------

def test_an_invalid_tree_names_the_path_of_each_wrong_node(people):
    tree = AND(trait("country", "equals", "DE"),
               OR(trait("age", "between", [1]), {"type": "galaxy"}),
               event("Order Completed", "at_least"),
               {"type": "trait", "op": "equals", "value": 1})
    with pytest.raises(RuleError) as caught:
        rules_validate(tree)
    errors = caught.value.errors
    assert "between" in errors["children.1.children.0.value"][0]
    assert "Unknown node type" in errors["children.1.children.1.type"][0]
    assert "needs a count" in errors["children.2.count"][0]
    assert errors["children.3.trait"] == ["This field is required."]
    assert not any(path.startswith("children.0") for path in errors)  # the valid node is not blamed


def test_a_condition_on_a_trait_or_event_that_does_not_exist_is_an_error_not_an_empty_segment(people):
    with pytest.raises(RuleError) as caught:
        rules_validate(AND(trait("shoe_size", "gt", 40), event("Rocket Launched", "performed"),
                           {"type": "computed", "trait": "no_such_measure", "op": "gt", "value": 1},
                           {"type": "consent", "purpose": "telepathy", "op": "granted"},
                           {"type": "segment", "segment": "nobody-made-this", "op": "member"},
                           {"type": "identity", "identity_type": "fax", "op": "exists"}))
    errors = caught.value.errors
    assert "shoe_size" in errors["children.0.trait"][0]
    assert "Rocket Launched" in errors["children.1.event"][0]
    assert "no_such_measure" in errors["children.2.trait"][0]
    assert "telepathy" in errors["children.3.purpose"][0]
    assert "nobody-made-this" in errors["children.4.segment"][0]
    assert "fax" in errors["children.5.identity_type"][0]


def test_unknown_fields_empty_groups_and_wrong_value_types_are_refused(people):
    with pytest.raises(RuleError) as caught:
        rules_validate(AND(AND(), {**trait("age", "gt", "old"), "colour": "red"},
                           trait("country", "in", []), trait("birth_date", "before", "1st of May")))
    errors = caught.value.errors
    assert "at least one condition" in errors["children.0.children"][0]
    assert "colour" in errors["children.1.colour"][0]
    assert "number or a date" in errors["children.1.value"][0]
    assert "non-empty list" in errors["children.2.value"][0]
    assert "date" in errors["children.3.value"][0]


def test_a_trait_that_arrived_after_the_catalog_was_cached_is_accepted(people):
    rules_validate(trait("country", "equals", "DE"))  # fills the cached catalog
    shopper("finn@example.de", traits={"loyalty_card": "yes"})
    rules_validate(trait("loyalty_card", "equals", "yes"))


def test_a_segment_cannot_come_to_depend_on_itself(people):
    first = segment_create(name="Germans", rules=trait("country", "equals", "DE"))
    second = segment_create(name="German buyers",
                            rules=AND({"type": "segment", "segment": first.slug, "op": "member"},
                                      event("Order Completed", "performed")))
    with pytest.raises(RuleError) as caught:
        segment_update(segment=first, rules={"type": "segment", "segment": second.slug, "op": "member"})
    assert "depend on itself" in caught.value.errors["segment"][0]


# --- what each condition selects ----------------------------------------------------------------------------------

CASES = [
    (trait("country", "equals", "DE"), ["anna", "dora"]),
    (trait("country", "in", ["AT", "CH"]), ["ben", "cleo"]),
    (trait("country", "contains", "d"), ["anna", "dora", "emil"]),  # case-insensitive
    (trait("age", "gt", 30), ["anna", "ben"]),  # "unknown" is not a number: never more than 30, no error
    (trait("age", "between", [18, 40]), ["anna", "dora"]),
    (trait("tier", "exists"), ["anna", "ben", "cleo"]),
    (trait("tier", "not_exists"), ["dora", "emil"]),
    (trait("tier", "not_equals", "gold"), ["ben", "cleo"]),
    (trait("newsletter", "is_true"), ["anna"]),
    (trait("birth_date", "before", "1980-01-01"), ["ben"]),
    (trait("birth_date", "more_than_days_ago", 365 * 40), ["ben"]),
    (trait("birth_date", "within_last_days", 365 * 40), ["anna"]),
    ({"type": "identity", "identity_type": "email", "op": "exists"}, ["anna", "ben", "cleo", "dora", "emil"]),
    ({"type": "identity", "identity_type": "phone", "op": "exists"}, []),
    (event("Order Completed", "performed", within_days=30), ["anna", "cleo"]),
    (event("Order Completed", "not_performed", within_days=30), ["ben", "dora", "emil"]),
    (event("Order Completed", "at_least", count=2), ["anna"]),
    (event("Order Completed", "at_most", count=1), ["ben", "cleo", "dora", "emil"]),
    (event("Order Completed", "performed", where=[{"property": "revenue", "op": "gte", "value": 100}]),
     ["anna", "dora"]),
    (event("Product Added", "performed", within_days=30, where=[{"property": "sku", "op": "in", "value": ["B", "E"]}]),
     ["ben", "emil"]),
    # The cart abandoner: added to cart, then no order within 24 h (decided once 24 h have passed).
    ({"type": "sequence", "first": {"event": "Product Added"}, "then": {"event": "Order Completed"},
      "op": "not_followed_by", "within_hours": 24, "first_within_days": 7}, ["ben"]),
    ({"type": "sequence", "first": {"event": "Product Added"}, "then": {"event": "Order Completed"},
      "op": "followed_by", "within_hours": 24}, ["cleo"]),
    (NOT(trait("country", "equals", "DE")), ["ben", "cleo", "emil"]),
    (OR(trait("tier", "equals", "gold"), AND(trait("country", "equals", "DE"), trait("age", "lt", 20))),
     ["anna", "dora"]),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("rules", "expected"), CASES, ids=[rules_describe(rules) for rules, _ in CASES])
def test_each_condition_selects_the_right_people_in_every_shape(people, rules, expected, shape):
    rules_validate(rules)
    assert names(rules, people, shape=shape) == expected


def test_the_whole_tree_is_one_sql_query(people):
    tree = AND(trait("country", "in", ["DE", "AT"]), trait("age", "gte", 18),
               event("Order Completed", "at_least", count=2, within_days=30),
               NOT(event("Product Added", "performed", within_days=7)))
    with CaptureQueriesContext(connection) as queries:
        assert names(tree, people) == ["anna"]
    assert len(queries) == 1


def test_consent_conditions_follow_the_latest_decision(people):
    [email_marketing, *_] = purposes_install()
    now = timezone.now()
    consent_record(profile=people["anna"], purpose=email_marketing, status="granted", at=now - timedelta(days=5))
    consent_record(profile=people["ben"], purpose=email_marketing, status="granted", at=now - timedelta(days=5))
    consent_record(profile=people["ben"], purpose=email_marketing, status="withdrawn", at=now - timedelta(days=1))
    granted = {"type": "consent", "purpose": "email_marketing", "op": "granted"}
    rules_validate(granted)
    assert names(granted, people) == ["anna"]
    assert names(granted, people, correlated=True) == ["anna"]
    assert names({**granted, "op": "not_granted"}, people) == ["ben", "cleo", "dora", "emil"]


def test_membership_of_another_segment(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        germans = segment_create(name="Germans", rules=trait("country", "equals", "DE"))
    in_germans = {"type": "segment", "segment": germans.slug, "op": "member"}
    assert names(in_germans, people) == ["anna", "dora"]
    assert names({**in_germans, "op": "not_member"}, people, correlated=True) == ["ben", "cleo", "emil"]


def test_merged_profiles_are_never_members(people):
    from profiles.services import profiles_merge

    profiles_merge(winner=people["anna"], loser=people["dora"], reason="manual")
    assert names(trait("country", "equals", "DE"), people) == ["anna"]


# --- explaining ---------------------------------------------------------------------------------------------------

def test_explain_shows_which_conditions_a_profile_meets(people):
    tree = AND(trait("country", "equals", "DE"), OR(trait("tier", "equals", "gold"), trait("age", "lt", 20)),
               NOT(event("Product Added", "performed", within_days=7)))
    by_path = {entry["path"]: entry for entry in rules_explain(tree, people["dora"])}
    assert by_path[""]["matched"] is True
    assert by_path["children.0"] == {"path": "children.0", "depth": 1, "type": "trait", "label": "country is DE",
                                     "matched": True}
    assert by_path["children.1.children.0"]["matched"] is False
    assert by_path["children.1.children.1"]["matched"] is True
    assert by_path["children.2"]["matched"] is True and by_path["children.2"]["label"] == "Not all of"
    assert by_path["children.2.children.0"]["matched"] is False
    emil = {entry["path"]: entry["matched"] for entry in rules_explain(tree, people["emil"])}
    assert emil == {"": False, "children.0": False, "children.1": False, "children.1.children.0": False,
                    "children.1.children.1": False, "children.2": False, "children.2.children.0": True}


# --- computed traits --------------------------------------------------------------------------------------------

def computed(key, op, value=None):
    node = {"type": "computed", "trait": key, "op": op}
    if value is not None:
        node["value"] = value
    return node


COMPUTED_CASES = [
    (computed("lifetime_value", "gte", 100), ["anna", "dora"]),  # 150 and 500
    (computed("order_count", "gte", 2), ["anna"]),
    (computed("lifetime_value", "not_exists"), ["ben", "emil"]),
    (computed("days_since_last_order", "lt", 7), ["anna", "cleo"]),  # 3 days and 2 days ago
    (computed("days_since_last_order", "between", [50, 70]), ["dora"]),
    (computed("days_since_last_order", "equals", 3), ["anna"]),
    (computed("preferred_channel", "equals", "WEB"), ["anna", "ben", "cleo", "dora", "emil"]),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("rules", "expected"), COMPUTED_CASES,
                         ids=[rules_describe(rules) for rules, _ in COMPUTED_CASES])
def test_computed_trait_conditions(people, rules, expected, shape):
    from profiles.services import computed_values_refresh

    computed_values_refresh(profile_ids=[p.pk for p in people.values()])
    rules_validate(rules)
    assert names(rules, people, shape=shape) == expected


@pytest.mark.parametrize("shape", SHAPES)
def test_conditions_on_a_computed_time(people, shape):
    """A computed trait holding a time (the last order) against windows that move with the clock."""
    from profiles.services import computed_trait_create, computed_values_refresh

    computed_trait_create(key="last_order_at", name="Last order at", aggregation="max", field="timestamp",
                          event_names=["Order Completed"])
    computed_values_refresh(profile_ids=[p.pk for p in people.values()])
    recent = computed("last_order_at", "within_last_days", 7)
    rules_validate(recent)
    assert names(recent, people, shape=shape) == ["anna", "cleo"]  # 3 days and 49 hours ago
    long_ago = computed("last_order_at", "more_than_days_ago", 30)
    assert names(long_ago, people, shape=shape) == ["dora"]  # 60 days ago


def test_an_operator_that_does_not_fit_the_computed_type_is_refused(people):
    with pytest.raises(RuleError) as caught:
        rules_validate(computed("preferred_channel", "gt", 3))
    assert "does not apply to text" in caught.value.errors["op"][0]
