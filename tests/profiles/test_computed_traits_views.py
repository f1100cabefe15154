"""Computed traits in the UI and the API: who may see and define them, the forms' and the API's errors (the field
named), "Recompute now", the distribution, the 360° panel and ``computed`` in the profile API."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.models import ComputedTrait, ComputedValue, Profile
from profiles.services import Observation, computed_trait_recompute, computed_values_refresh, observations_apply
from profiles.services.computed import STOCK_KEYS

pytestmark = pytest.mark.django_db


class InlineAudit(HTMLParser):
    """What the strict CSP forbids: inline scripts, style attributes, inline handlers."""

    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src") and attrs.get("type") != "application/json":
            self.problems.append("inline script")
        if tag == "style" or "style" in attrs or any(name.startswith(("on", "hx-on")) for name in attrs):
            self.problems.append(f"inline style/handler on <{tag}>")


def csp_clean(html: str) -> bool:
    audit = InlineAudit()
    audit.feed(html)
    return not audit.problems


@pytest.fixture
def login_as(client, make_user):
    def login(role):
        user = make_user(role)
        client.force_login(user)
        return client

    return login


def buyer(email: str, *revenues, channel="shop", days_ago=3) -> Profile:
    now = timezone.now()
    observations = [Observation(identities=[("email", email)], timestamp=now - timedelta(days=days_ago, minutes=i),
                                source="shop", channel=channel, traits={"email": email}, event_type="track",
                                event_name="Order Completed", properties={"revenue": revenue},
                                message_id=f"{email}-{i}") for i, revenue in enumerate(revenues)]
    [profile_id] = set(observations_apply(observations=observations))
    return Profile.objects.get(pk=profile_id)


@pytest.fixture
def shop():
    """Six customers; customer i ordered i+1 times for 10*(i+1) each, last 6-i days ago: the last is the best."""
    people = [buyer(f"p{i}@example.com", *([10.0 * (i + 1)] * (i + 1)), days_ago=6 - i) for i in range(6)]
    for key in STOCK_KEYS:
        computed_trait_recompute(trait=ComputedTrait.objects.get(key=key))
    return people


# --- UI ----------------------------------------------------------------------------------------------------------


def test_list_shows_type_coverage_and_last_run(login_as, shop):
    client = login_as("Sales")
    response = client.get(reverse("profiles:computed-list"))
    html = response.content.decode()
    assert response.status_code == 200 and csp_clean(html)
    assert "Lifetime value" in html and "lifetime_value" in html and "Days since" in html
    assert ">6<" in html  # six profiles with an order
    assert "New computed trait" not in html and "Recompute now" not in html  # Sales only reads


def test_marketing_defines_a_trait_in_the_form(login_as, shop, django_capture_on_commit_callbacks):
    client = login_as("Marketing")
    assert "New computed trait" in client.get(reverse("profiles:computed-list")).content.decode()
    form = client.get(reverse("profiles:computed-create"))
    assert form.status_code == 200 and csp_clean(form.content.decode())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("profiles:computed-create"), {
            "key": "big_orders_30d", "name": "Big orders (30 days)", "aggregation": "count",
            "event_names": "Order Completed", "filters": "revenue gte 40", "window_days": "30",
            "field_type": "text", "enabled": "on"})
    assert response.status_code == 302 and response.url == reverse("profiles:computed-detail",
                                                                   args=["big_orders_30d"])
    trait = ComputedTrait.objects.get(key="big_orders_30d")
    assert trait.filters == [{"property": "revenue", "op": "gte", "value": 40}] and trait.window_days == 30
    # the recompute was queued on commit (the task runs in-process in tests): p3..p5 ordered for 40, 50, 60
    assert ComputedValue.objects.filter(trait=trait).count() == 3
    detail = client.get(reverse("profiles:computed-detail", args=["big_orders_30d"]))
    html = detail.content.decode()
    assert detail.status_code == 200 and csp_clean(html)
    assert "revenue gte 40" in html and "computed-distribution" in html


def test_form_errors_land_on_their_fields(login_as):
    client = login_as("Marketing")
    response = client.post(reverse("profiles:computed-create"), {
        "key": "bad", "name": "Bad", "aggregation": "sum", "field": "channel", "filters": "coupon like X\nrevenue",
        "field_type": "text"})
    assert response.status_code == 400
    form = response.context["form"]
    assert "filters" in form.errors and "Line 2" in " ".join(form.errors["filters"])
    response = client.post(reverse("profiles:computed-create"), {
        "key": "bad", "name": "Bad", "aggregation": "sum", "field": "channel", "filters": "coupon like X",
        "field_type": "text"})
    form = response.context["form"]
    assert "field" in form.errors and "Line 1 (op)" in " ".join(form.errors["filters"])
    assert not ComputedTrait.objects.filter(key="bad").exists()


def test_stock_trait_keeps_its_key_in_the_edit_form(login_as, shop):
    client = login_as("Marketing")
    response = client.post(reverse("profiles:computed-edit", args=["order_count"]), {
        "key": "orders", "name": "Orders", "aggregation": "count", "event_names": "Order Completed",
        "field_type": "text", "enabled": "on"})
    assert response.status_code == 302
    trait = ComputedTrait.objects.get(key="order_count")
    assert trait.name == "Orders"


def test_detail_shows_a_histogram_for_numbers_and_top_values_for_text(login_as, shop):
    client = login_as("Service")
    html = client.get(reverse("profiles:computed-detail", args=["lifetime_value"])).content.decode()
    assert "computed-distribution" in html and "Profiles per range of values" in html
    html = client.get(reverse("profiles:computed-detail", args=["preferred_channel"])).content.decode()
    assert "The most frequent values" in html and ">shop<" in html
    html = client.get(reverse("profiles:computed-detail", args=["days_since_last_order"])).content.decode()
    assert "(days since)" in html and "1 day" in html and "1 days" not in html


def test_recompute_now_queues_the_task(login_as, shop, django_capture_on_commit_callbacks):
    client = login_as("Marketing")
    ComputedValue.objects.filter(trait__key="order_count").delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("profiles:computed-recompute", args=["order_count"]),
                               HTTP_HX_REQUEST="true")
    assert response.status_code == 204  # htmx stays on the page: a toast, and the status reloads on the event
    assert "toast" in response["HX-Trigger"] and "computedTraitsChanged" in response["HX-Trigger"]
    assert ComputedValue.objects.filter(trait__key="order_count").count() == 6
    ComputedValue.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("profiles:computed-recompute-all"))
    assert response.status_code == 302 and response.url == reverse("profiles:computed-list")
    assert ComputedValue.objects.filter(trait__key="rfm_segment").count() == 6


def test_only_definers_may_write(login_as, shop):
    client = login_as("Service")
    assert client.get(reverse("profiles:computed-create")).status_code == 403
    assert client.post(reverse("profiles:computed-recompute-all")).status_code == 403
    assert client.post(reverse("profiles:computed-delete", args=["order_count"])).status_code == 403
    client = login_as(None)
    assert client.get(reverse("profiles:computed-list")).status_code == 403


def test_marketing_deletes_a_trait_with_its_values(login_as, shop):
    client = login_as("Marketing")
    assert client.post(reverse("profiles:computed-delete", args=["order_count"])).status_code == 302
    assert not ComputedTrait.objects.filter(key="order_count").exists()
    response = client.post(reverse("profiles:computed-delete", args=["lifetime_value"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == reverse("profiles:computed-list")
    assert not ComputedValue.objects.filter(trait__key="order_count").exists()


def test_the_360_page_lists_the_profiles_computed_values(login_as, shop):
    client = login_as("Sales")
    best = shop[-1]
    html = client.get(reverse("profiles:detail", args=[best.pk])).content.decode()
    assert "Computed traits" in html
    assert 'data-computed="lifetime_value">360<' in html  # 6 orders of 60
    assert 'data-computed="days_since_last_order">1 day<' in html
    assert "Champions (R 5 · F 5 · M 5)" in html


# --- API ---------------------------------------------------------------------------------------------------------


def test_api_lists_and_reads_by_key(api_as, shop):
    client = api_as("Service")
    listing = client.get("/api/v1/computed-traits/").json()
    rows = {row["key"]: row for row in listing["results"]}
    assert set(STOCK_KEYS) <= set(rows)
    assert rows["lifetime_value"]["coverage"] == 6 and rows["lifetime_value"]["value_type"] == "number"
    one = client.get("/api/v1/computed-traits/rfm_segment/").json()
    assert one["value_type"] == "text" and one["boundaries"]["frequency"]
    distribution = client.get("/api/v1/computed-traits/preferred_channel/distribution/").json()
    assert distribution == {"kind": "top", "total": 6, "distinct": 1, "rows": [{"value": "shop", "count": 6}]}
    assert client.post("/api/v1/computed-traits/", {"key": "x", "name": "X", "aggregation": "count"},
                       format="json").status_code == 403


def test_api_creates_updates_and_deletes(api_as, shop, django_capture_on_commit_callbacks):
    client = api_as("Marketing")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/computed-traits/", {
            "key": "last_revenue", "name": "Last revenue", "aggregation": "last", "field": "revenue",
            "field_type": "number", "event_names": ["Order Completed"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["value_type"] == "number"
    assert ComputedValue.objects.filter(trait__key="last_revenue").count() == 6
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch("/api/v1/computed-traits/last_revenue/", {"window_days": 2}, format="json")
    assert response.status_code == 200 and response.json()["window_days"] == 2
    assert ComputedValue.objects.filter(trait__key="last_revenue").count() == 1  # only p5 ordered within 2 days
    assert client.post("/api/v1/computed-traits/last_revenue/recompute/").status_code == 202
    assert client.delete("/api/v1/computed-traits/last_revenue/").status_code == 204
    assert not ComputedTrait.objects.filter(key="last_revenue").exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"key": "a", "name": "A", "aggregation": "median"}, "aggregation"),
    ({"key": "a", "name": "A", "aggregation": "sum"}, "field"),
    ({"key": "a", "name": "A", "aggregation": "count", "filters": [{"property": "x", "op": "like", "value": 1}]},
     "filters.0.op"),
    ({"key": "a", "name": "A", "aggregation": "count", "filters": [{"property": "x", "op": "in", "value": 3}]},
     "filters.0.value"),
    ({"key": "a", "name": "A", "aggregation": "count", "window_days": 3, "window_start": "2026-01-01"},
     "window_days"),
    ({"key": "a", "name": "A", "aggregation": "count", "window_start": "soon"}, "window_start"),
    ({"key": "lifetime_value", "name": "A", "aggregation": "count"}, "key"),
    ({"key": "Not a slug", "name": "A", "aggregation": "count"}, "key"),
    ({"key": "a", "name": "A", "aggregation": "rfm", "field": "revenue", "rfm_part": "loyalty"}, "rfm_part"),
    ({"key": "a", "name": "A", "aggregation": "max", "field": "revenue", "as_days_since": True}, "as_days_since"),
])
def test_api_400_names_the_field(api_as, body, field):
    response = api_as("Marketing").post("/api/v1/computed-traits/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"], error


def test_api_stock_key_is_fixed(api_as):
    response = api_as("Admin").patch("/api/v1/computed-traits/order_count/", {"key": "orders"}, format="json")
    assert response.status_code == 400 and "key" in response.json()["error"]["fields"]


def test_profile_api_includes_computed_values(api_as, shop):
    client = api_as("Marketing")
    best = shop[-1]
    computed = client.get(f"/api/v1/profiles/{best.pk}/").json()["computed"]
    assert computed["lifetime_value"] == 360.0 and computed["order_count"] == 6
    assert computed["days_since_last_order"] == 1 and computed["rfm_segment"] == "Champions"
    assert computed["preferred_channel"] == "shop"
    none = Profile.objects.create()
    computed_values_refresh(profile_ids=[none.pk])
    assert client.get(f"/api/v1/profiles/{none.pk}/").json()["computed"]["lifetime_value"] is None
