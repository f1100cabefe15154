"""Computed traits: definitions, aggregations and windows over real events (built through observations_apply),
the incremental refresh against the full recompute, RFM scoring, the stock set. Runs on SQLite and PostgreSQL
(``_bounds_ntile`` and the one-statement upsert are the PostgreSQL paths; the tests below run whichever the
database is, and the RFM boundary test compares both methods where ntile exists)."""

import json
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from profiles.models import ComputedTrait, ComputedValue, Profile, days_since
from profiles.services import (
    ComputedTraitInvalid,
    Observation,
    computed,
    computed_trait_create,
    computed_trait_recompute,
    computed_trait_update,
    computed_traits_install,
    computed_values_refresh,
    observations_apply,
    profiles_merge,
)
from profiles.services.computed import (
    INSIGHT_TRAITS,
    RFM_GRID,
    STOCK_KEYS,
    _tile_offsets,
    computed_trait_definition_check,
    insight_traits_install,
    rfm_boundaries_compute,
    rfm_segment_name,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_queued_cuts():
    """A queued RFM cut is remembered in the cache for an hour; each test starts without one."""
    cache.clear()
    yield
    cache.clear()

NOW = timezone.now()


def shop(email: str, *events) -> Profile:
    """A person and their events: (name, days_ago, properties[, channel])."""
    observations = [Observation(identities=[("email", email)], timestamp=NOW - timedelta(days=400), source="crm",
                                channel="crm", traits={"email": email}, event_type="identify",
                                message_id=f"id-{email}")]
    for index, (name, days_ago, properties, *channel) in enumerate(events):
        observations.append(Observation(
            identities=[("email", email)], timestamp=NOW - timedelta(days=days_ago, minutes=index), source="shop",
            channel=channel[0] if channel else "web", event_type="track", event_name=name, properties=properties,
            message_id=f"{email}-{index}"))
    [profile_id] = set(observations_apply(observations=observations))
    return Profile.objects.get(pk=profile_id)


def values(key: str) -> dict[int, object]:
    trait = ComputedTrait.objects.get(key=key)
    return {v.profile_id: v.value for v in ComputedValue.objects.filter(trait=trait).select_related("trait")}


def trait(key: str, **definition) -> ComputedTrait:
    return computed_trait_create(key=key, name=key.replace("_", " "), **definition)


@pytest.fixture
def customers():
    anna = shop("anna@example.com",
                ("Order Completed", 2, {"revenue": 100, "coupon": "WELCOME"}),
                ("Order Completed", 40, {"revenue": 50.5, "coupon": "SUMMER"}, "app"),
                ("Order Completed", 400, {"revenue": "n/a"}),
                ("Product Viewed", 1, {"sku": "A-1", "category": "shoes"}),
                ("Product Viewed", 3, {"sku": "A-2", "category": "shoes"}, "app"),
                ("Product Viewed", 5, {"sku": "A-1", "category": "bags"}, "app"))
    ben = shop("ben@example.com",
               ("Order Completed", 10, {"revenue": 20, "items": {"count": 2}}),
               ("Product Viewed", 10, {"sku": "B-1"}, "email"))
    cleo = shop("cleo@example.com", ("Product Viewed", 200, {"sku": "C-1"}))
    return anna, ben, cleo


def test_stock_traits_installed_by_the_migration_and_install_is_idempotent():
    assert set(ComputedTrait.objects.filter(stock=True).values_list("key", flat=True)) == {*STOCK_KEYS,
                                                                                            *INSIGHT_TRAITS}
    assert computed_traits_install() == 0 and insight_traits_install() == 0
    ComputedTrait.objects.filter(key="order_count").update(name="Orders (renamed)")
    ComputedTrait.objects.filter(key="preferred_channel").delete()
    assert computed_traits_install() == 1
    assert ComputedTrait.objects.get(key="order_count").name == "Orders (renamed)"
    types = dict(ComputedTrait.objects.values_list("key", "value_type"))
    assert types["lifetime_value"] == "number" and types["days_since_last_order"] == "days_since"
    assert types["rfm_segment"] == "text" and types["rfm_recency"] == "number"
    assert types["preferred_channel"] == "text"
    assert types["churn_risk"] == "number" and types["churn_risk_level"] == "text"
    assert ComputedTrait.objects.get(key="churn_risk").aggregation == "insight"


def test_insight_traits_cannot_be_defined_and_keep_their_definition():
    with pytest.raises(ComputedTraitInvalid) as error:
        computed_trait_create(key="my_churn", name="Mine", aggregation="insight")
    assert "aggregation" in error.value.errors
    trait = ComputedTrait.objects.get(key="churn_risk")
    with pytest.raises(ComputedTraitInvalid):
        computed_trait_update(trait=trait, aggregation="count")
    computed_trait_update(trait=trait, name="Churn risk (90 days)")
    assert ComputedTrait.objects.get(key="churn_risk").name == "Churn risk (90 days)"


def test_stock_values_after_a_full_recompute(customers):
    anna, ben, cleo = customers
    for key in STOCK_KEYS:
        computed_trait_recompute(trait=ComputedTrait.objects.get(key=key))
    assert values("lifetime_value") == {anna.pk: 150.5, ben.pk: 20.0}  # "n/a" is skipped
    assert values("order_count") == {anna.pk: 3, ben.pk: 1}
    assert values("average_order_value") == {anna.pk: 75.25, ben.pk: 20.0}
    assert values("days_since_last_order") == {anna.pk: 2, ben.pk: 10}
    assert values("days_since_last_seen") == {anna.pk: 1, ben.pk: 10, cleo.pk: 200}
    assert values("preferred_channel") == {anna.pk: "web", ben.pk: "web", cleo.pk: "web"} or \
        values("preferred_channel")[anna.pk] in {"web", "app"}
    trait_row = ComputedTrait.objects.get(key="order_count")
    assert trait_row.last_run_rows == 2 and trait_row.last_run_at and not trait_row.running


def test_preferred_channel_is_the_most_frequent_channel_ties_to_the_most_recent():
    dora = shop("dora@example.com", ("A", 1, {}, "app"), ("A", 2, {}, "app"), ("A", 3, {}, "web"),
                ("A", 4, {}, "email"), ("A", 5, {}, "email"))
    computed_trait_recompute(trait=ComputedTrait.objects.get(key="preferred_channel"))
    # identify on crm (1), app 2, email 2, web 1: app and email tie, app is the more recent
    assert values("preferred_channel")[dora.pk] == "app"


@pytest.mark.parametrize(("definition", "expected"), [
    ({"aggregation": "count", "event_names": ["Product Viewed"]}, {"anna": 3, "ben": 1, "cleo": 1}),
    ({"aggregation": "count", "event_names": ["Product Viewed"], "window_days": 30}, {"anna": 3, "ben": 1}),
    ({"aggregation": "count", "event_names": ["Product Viewed", "Order Completed"], "window_days": 30},
     {"anna": 4, "ben": 2}),
    ({"aggregation": "sum", "event_names": ["Order Completed"], "field": "revenue",
      "filters": [{"property": "coupon", "op": "in", "value": ["WELCOME", "SPRING"]}]}, {"anna": 100.0}),
    ({"aggregation": "max", "event_names": ["Order Completed"], "field": "revenue"}, {"anna": 100.0, "ben": 20.0}),
    ({"aggregation": "min", "event_names": ["Order Completed"], "field": "properties.revenue"},
     {"anna": 50.5, "ben": 20.0}),
    ({"aggregation": "sum", "field": "items.count"}, {"ben": 2.0}),
    ({"aggregation": "distinct_count", "event_names": ["Product Viewed"], "field": "sku"},
     {"anna": 2, "ben": 1, "cleo": 1}),
    ({"aggregation": "distinct_count", "field": "channel", "event_names": ["Product Viewed"]},
     {"anna": 2, "ben": 1, "cleo": 1}),
    ({"aggregation": "last", "event_names": ["Order Completed"], "field": "coupon"}, {"anna": "WELCOME"}),
    ({"aggregation": "first", "event_names": ["Order Completed"], "field": "coupon"}, {"anna": "SUMMER"}),
    ({"aggregation": "last", "event_names": ["Order Completed"], "field": "revenue", "field_type": "number"},
     {"anna": 100.0, "ben": 20.0}),
    ({"aggregation": "first", "event_names": ["Order Completed"], "field": "revenue"},
     {"anna": "n/a", "ben": "20"}),
    ({"aggregation": "most_frequent", "event_names": ["Product Viewed"], "field": "category"}, {"anna": "shoes"}),
    ({"aggregation": "most_frequent", "field": "name", "window_days": 60}, {"anna": "Product Viewed",
                                                                             "ben": "Order Completed"}),
    ({"aggregation": "count", "filters": [{"property": "revenue", "op": "gt", "value": 30}]}, {"anna": 2}),
    ({"aggregation": "count", "filters": [{"property": "revenue", "op": "lte", "value": 20}]}, {"ben": 1}),
    ({"aggregation": "count", "filters": [{"property": "coupon", "op": "contains", "value": "umm"}]}, {"anna": 1}),
    ({"aggregation": "count", "event_names": ["Order Completed"],
      "filters": [{"property": "coupon", "op": "not_equals", "value": "SUMMER"}]}, {"anna": 2, "ben": 1}),
    ({"aggregation": "count", "filters": [{"property": "channel", "op": "equals", "value": "app"}]}, {"anna": 3}),
    ({"aggregation": "count", "filters": [{"property": "revenue", "op": "equals", "value": 20}]}, {"ben": 1}),
    ({"aggregation": "count", "filters": [{"property": "revenue", "op": "in", "value": [20, 100]}]},
     {"anna": 1, "ben": 1}),
])
def test_aggregations_filters_and_windows(customers, definition, expected):
    by_name = dict(zip(("anna", "ben", "cleo"), customers, strict=True))
    measure = trait("measure", **definition)  # enqueued recompute runs on commit; run it here
    computed_trait_recompute(trait=measure)
    assert values("measure") == {by_name[name].pk: value for name, value in expected.items()}


def test_time_values_and_days_since(customers):
    anna, ben, _cleo = customers
    first = trait("first_order_at", aggregation="first", field="timestamp", event_names=["Order Completed"])
    since = trait("days_since_first_view", aggregation="min", field="timestamp", event_names=["Product Viewed"],
                  as_days_since=True)
    assert first.value_type == "datetime" and since.value_type == "days_since"
    computed_trait_recompute(trait=first)
    computed_trait_recompute(trait=since)
    assert abs(values("first_order_at")[anna.pk] - (NOW - timedelta(days=400, minutes=2))) < timedelta(seconds=1)
    assert values("days_since_first_view") == {anna.pk: 5, ben.pk: 10, customers[2].pk: 200}
    stored = ComputedValue.objects.get(trait=since, profile=ben)
    assert stored.value_time is not None and stored.value_number is None
    assert days_since(stored.value_time, now=stored.value_time + timedelta(days=3, hours=1)) == 3


def test_window_between_two_days(customers):
    anna, ben, _cleo = customers
    today = timezone.localdate()
    measure = trait("orders_in_range", aggregation="count", event_names=["Order Completed"],
                    window_start=today - timedelta(days=45), window_end=today - timedelta(days=5))
    computed_trait_recompute(trait=measure)
    assert values("orders_in_range") == {anna.pk: 1, ben.pk: 1}


def test_incremental_refresh_gives_what_the_full_run_gives(customers):
    anna, ben, cleo = customers
    for key in STOCK_KEYS:
        computed_trait_recompute(trait=ComputedTrait.objects.get(key=key))
    full = {(v.trait_id, v.profile_id): (v.value_number, v.value_text, v.value_time)
            for v in ComputedValue.objects.all()}
    ComputedValue.objects.all().delete()
    assert computed_values_refresh(profile_ids=[anna.pk, ben.pk, cleo.pk]) == len(full)
    incremental = {(v.trait_id, v.profile_id): (v.value_number, v.value_text, v.value_time)
                   for v in ComputedValue.objects.all()}
    assert incremental == full
    # nothing changed: nothing written
    assert computed_values_refresh(profile_ids=[anna.pk, ben.pk, cleo.pk]) == 0


def test_refresh_follows_new_events_and_removes_values_that_are_gone(customers):
    anna, ben, cleo = customers
    computed_values_refresh(profile_ids=[cleo.pk])
    assert cleo.pk not in values("order_count")
    shop("cleo@example.com", ("Order Completed", 0, {"revenue": 30}))
    computed_values_refresh(profile_ids=[cleo.pk])
    assert values("order_count")[cleo.pk] == 1 and values("lifetime_value")[cleo.pk] == 30.0
    assert values("days_since_last_order")[cleo.pk] == 0
    # only the asked profiles are touched
    assert anna.pk not in values("order_count")
    measure = trait("big_orders", aggregation="count", filters=[{"property": "revenue", "op": "gte", "value": 25}])
    computed_values_refresh(profile_ids=[cleo.pk])
    assert values("big_orders") == {cleo.pk: 1}
    computed_trait_update(trait=measure, filters=[{"property": "revenue", "op": "gte", "value": 1000}])
    computed_values_refresh(profile_ids=[cleo.pk])
    assert values("big_orders") == {}


def test_merged_profiles_have_no_values(customers):
    anna, ben, _cleo = customers
    computed_values_refresh(profile_ids=[anna.pk, ben.pk])
    assert ben.pk in values("order_count")
    profiles_merge(winner=anna, loser=ben, reason="manual")
    computed_values_refresh(profile_ids=[anna.pk, ben.pk])
    assert values("order_count") == {anna.pk: 4}
    computed_trait_recompute(trait=ComputedTrait.objects.get(key="lifetime_value"))
    assert values("lifetime_value") == {anna.pk: 170.5}


def test_disabled_traits_lose_their_values_and_are_not_refreshed(customers):
    anna, _ben, _cleo = customers
    order_count = ComputedTrait.objects.get(key="order_count")
    computed_values_refresh(profile_ids=[anna.pk])
    computed_trait_update(trait=order_count, enabled=False)
    assert values("order_count") == {}
    computed_values_refresh(profile_ids=[anna.pk])
    assert values("order_count") == {}
    computed_trait_update(trait=order_count, enabled=True)  # recompute enqueued on commit (eager in tests)
    computed_trait_recompute(trait=order_count)
    assert values("order_count")[anna.pk] == 3


# --- RFM ---------------------------------------------------------------------------------------------------------


def _rfm_shop(count=10):
    """Customer i ordered i+1 times, last 10*(count-i) days ago, 10*(i+1) each time: the best is the last."""
    people = []
    for i in range(count):
        orders = [("Order Completed", 10 * (count - i) + k, {"revenue": 10 * (i + 1)}) for k in range(i + 1)]
        people.append(shop(f"c{i}@example.com", *orders))
    return people


def test_tile_offsets_cut_as_ntile_does():
    assert _tile_offsets(10) == [1, 3, 5, 7]
    assert _tile_offsets(7) == [1, 3, 4, 5]   # tiles of 2, 2, 1, 1, 1
    assert _tile_offsets(3) == [0, 1, 2, 2]   # tiles of 1, 1, 1 and two empty ones
    assert _tile_offsets(1) == [0, 0, 0, 0]


def test_rfm_scores_by_quintiles_and_segments():
    people = _rfm_shop(10)
    for key in ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"):
        computed_trait_recompute(trait=ComputedTrait.objects.get(key=key))
    recency, frequency, monetary = values("rfm_recency"), values("rfm_frequency"), values("rfm_monetary")
    expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [recency[p.pk] for p in people] == expected
    assert [frequency[p.pk] for p in people] == expected
    assert [monetary[p.pk] for p in people] == expected
    segments = values("rfm_segment")
    assert segments[people[9].pk] == "Champions" and segments[people[0].pk] == "Lost"
    assert segments[people[5].pk] == "Need Attention"
    bounds = ComputedTrait.objects.get(key="rfm_frequency").boundaries
    assert bounds["frequency"] == [2.0, 4.0, 6.0, 8.0]


def test_rfm_boundaries_ntile_and_plain_paths_agree():
    _rfm_shop(7)
    trait_row = ComputedTrait.objects.get(key="rfm_monetary")
    plain = rfm_boundaries_compute(trait=trait_row, now=NOW, method="plain")
    assert plain["frequency"] == [2.0, 4.0, 5.0, 6.0] and plain["customers"] == 7
    if connection.vendor == "postgresql":
        assert rfm_boundaries_compute(trait=trait_row, now=NOW, method="ntile") == plain


def test_rfm_incremental_scores_against_the_last_full_run(monkeypatch):
    monkeypatch.setattr(computed, "RFM_RECUT_BELOW", 5)  # a "large" shop: 10 customers are enough
    people = _rfm_shop(10)
    segment = ComputedTrait.objects.get(key="rfm_segment")
    frequency = ComputedTrait.objects.get(key="rfm_frequency")
    computed_trait_recompute(trait=segment)
    computed_trait_recompute(trait=frequency)
    newcomer = shop("new@example.com", ("Order Completed", 0, {"revenue": 5}))
    computed_values_refresh(profile_ids=[newcomer.pk])
    assert values("rfm_frequency")[newcomer.pk] == 1
    assert values("rfm_segment")[newcomer.pk] == "New Customers"
    assert ComputedTrait.objects.get(key="rfm_frequency").boundaries["frequency"] == [2.0, 4.0, 6.0, 8.0]
    # the lowest customer orders a lot: scored against the stored boundaries, not re-cut
    shop("c0@example.com", *[("Order Completed", 0, {"revenue": 100}) for _ in range(9)])
    computed_values_refresh(profile_ids=[people[0].pk])
    assert values("rfm_frequency")[people[0].pk] == 5
    assert values("rfm_segment")[people[0].pk] == "Champions"


def test_rfm_cuts_missing_or_stale_are_queued_small_shops_are_cut_inline(django_capture_on_commit_callbacks):
    people = _rfm_shop(10)
    frequency = ComputedTrait.objects.get(key="rfm_frequency")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        computed_values_refresh(profile_ids=[people[0].pk])  # never cut: the full recompute is queued, once
        computed_values_refresh(profile_ids=[people[1].pk])
    assert len(queued) == 4 and values("rfm_frequency") == {}  # one per RFM trait, not one per refresh
    for callback in queued:
        callback()
    frequency.refresh_from_db()
    assert frequency.boundaries["frequency"] == [2.0, 4.0, 6.0, 8.0] and frequency.boundaries["customers"] == 10
    for i in range(10, 15):  # five more customers with many orders
        shop(f"c{i}@example.com", *[("Order Completed", 1, {"revenue": 10}) for _ in range(20)])
    computed_values_refresh(profile_ids=[people[0].pk])  # under RFM_RECUT_BELOW customers: cut again
    frequency.refresh_from_db()
    assert frequency.boundaries["customers"] == 15 and frequency.boundaries["frequency"] == [3.0, 6.0, 9.0, 20.0]
    assert ComputedTrait.objects.get(key="rfm_segment").boundaries["frequency"] == [3.0, 6.0, 9.0, 20.0]
    # a large shop's cut older than RFM_CUT_MAX_AGE: queued again, scored against the old cut meanwhile
    stale = {**frequency.boundaries, "customers": 5000, "cut_at": (NOW - timedelta(hours=30)).isoformat()}
    ComputedTrait.objects.filter(aggregation="rfm").update(boundaries=stale)
    cache.clear()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        computed_values_refresh(profile_ids=[people[0].pk])
    assert len(queued) == 4 and values("rfm_frequency")[people[0].pk] == 1


def test_rfm_grid_covers_every_cell_once():
    cells = [(r, fm) for rs, fms in RFM_GRID.values() for r in rs for fm in fms]
    assert sorted(cells) == [(r, fm) for r in range(1, 6) for fm in range(1, 6)]
    assert rfm_segment_name(5, 5, 4) == "Champions"
    assert rfm_segment_name(1, 5, 5) == "Cannot Lose Them"
    assert rfm_segment_name(1, 1, 1) == "Lost"
    assert rfm_segment_name(2, 1, 2) == "Hibernating"
    assert len(RFM_GRID) == 11


# --- definitions -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "field"), [
    ({"aggregation": "median"}, "aggregation"),
    ({"aggregation": "sum"}, "field"),
    ({"aggregation": "sum", "field": "channel"}, "field"),
    ({"aggregation": "avg", "field": "timestamp"}, "field"),
    ({"aggregation": "max", "field": "name"}, "field"),
    ({"aggregation": "most_frequent", "field": "timestamp"}, "field"),
    ({"aggregation": "sum", "field": "a..b"}, "field"),
    ({"aggregation": "sum", "field": "rev'enue"}, "field"),
    ({"aggregation": "count", "event_names": "x", "window_days": 0}, "window_days"),
    ({"aggregation": "count", "window_days": 3, "window_start": "2026-01-01"}, "window_days"),
    ({"aggregation": "count", "window_start": "2026-02-01", "window_end": "2026-01-01"}, "window_end"),
    ({"aggregation": "count", "window_start": "yesterday"}, "window_start"),
    ({"aggregation": "count", "filters": [{"property": "x", "op": "like", "value": 1}]}, "filters.0.op"),
    ({"aggregation": "count", "filters": [{"property": "x", "op": "in", "value": "a"}]}, "filters.0.value"),
    ({"aggregation": "count", "filters": [{"op": "equals", "value": "a"}]}, "filters.0.property"),
    ({"aggregation": "count", "filters": [{"property": "timestamp", "op": "gt", "value": "2026"}]},
     "filters.0.property"),
    ({"aggregation": "count", "filters": ["x"]}, "filters.0"),
    ({"aggregation": "count", "as_days_since": True}, "as_days_since"),
    ({"aggregation": "max", "field": "revenue", "as_days_since": True}, "as_days_since"),
    ({"aggregation": "rfm", "field": "revenue"}, "rfm_part"),
])
def test_invalid_definitions_name_the_field(definition, field):
    with pytest.raises(ComputedTraitInvalid) as caught:
        computed_trait_definition_check(definition)
    assert field in caught.value.errors


def test_create_checks_the_key():
    with pytest.raises(ComputedTraitInvalid) as caught:
        trait("lifetime_value", aggregation="count")
    assert "key" in caught.value.errors
    with pytest.raises(ComputedTraitInvalid) as caught:
        trait("Not A Slug", aggregation="count")
    assert "key" in caught.value.errors
    with pytest.raises(ComputedTraitInvalid) as caught:
        computed_trait_update(trait=ComputedTrait.objects.get(key="order_count"), key="orders")
    assert "key" in caught.value.errors


def test_window_dates_are_kept_as_days():
    data = computed_trait_definition_check({"aggregation": "count", "window_start": "2026-01-01"})
    assert data["window_start"] == date(2026, 1, 1) and data["value_type"] == "number"


def test_refresh_never_sends_profile_changed(customers, django_capture_on_commit_callbacks):
    from profiles.signals import profile_changed

    sent = []

    def receiver(sender, profile_ids, **kwargs):
        sent.append(profile_ids)

    profile_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            computed_values_refresh(profile_ids=[p.pk for p in customers])
            computed_trait_recompute(trait=ComputedTrait.objects.get(key="order_count"))
    finally:
        profile_changed.disconnect(receiver)
    assert sent == [] and ComputedValue.objects.exists()


def test_values_are_exported_and_erased_with_the_person(customers):
    from profiles.services import personal_data_erase, personal_data_export

    anna = customers[0]
    computed_values_refresh(profile_ids=[anna.pk])
    exported = personal_data_export(anna)["computed"]
    assert exported["order_count"] == 3 and exported["days_since_last_order"] == 2
    personal_data_erase(anna)
    assert not ComputedValue.objects.filter(profile=anna).exists()


def test_the_command_recomputes_everything_with_one_rfm_cut(customers):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("computed_traits", "--recompute", stdout=out)
    assert f"{len(STOCK_KEYS)}/{len(STOCK_KEYS)}" in out.getvalue()  # insight traits: manage.py insights
    assert values("order_count") == {customers[0].pk: 3, customers[1].pk: 1}
    cuts = {json.dumps(t.boundaries, sort_keys=True) for t in ComputedTrait.objects.filter(aggregation="rfm")}
    assert len(cuts) == 1
    out = StringIO()
    call_command("computed_traits", stdout=out)
    assert "lifetime_value" in out.getvalue() and "2 profiles" in out.getvalue()
