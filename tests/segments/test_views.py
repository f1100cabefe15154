"""The segments UI: the list, the builder (the rule tree held by the form: buttons, errors at their node, the
estimate and the preview), the segment page (definition, members, size over time, overlap, why a profile is a
member, refresh, delete) and the quick segment from the profile list, for each role."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from cdp.core.models import AuditEntry
from consent.services import purposes_install
from profiles.filters import ProfileFilter
from profiles.models import Profile
from profiles.services import computed_traits_install
from segments.models import Membership, Segment
from segments.services import segment_create, segment_refresh
from tests.core.test_ui_shell import audit_page
from tests.segments.conftest import shopper

pytestmark = pytest.mark.django_db

ROLES = ["Marketing", "Sales", "Service", "Privacy", "Admin"]
EDITORS = {"Marketing", "Admin"}


@pytest.fixture
def people(db):
    return {
        "anna": shopper("anna@example.de", traits={"first_name": "Anna", "country": "DE", "age": 34},
                        events=[("Order Completed", 24 * 3, {"revenue": 120.0}),
                                ("Order Completed", 24 * 10, {"revenue": 30.0})]),
        "ben": shopper("ben@example.at", traits={"first_name": "Ben", "country": "AT", "age": 51},
                       events=[("Product Added", 30, {"sku": "B"})]),
        "dora": shopper("dora@example.de", traits={"first_name": "Dora", "country": "DE", "age": 19},
                        events=[("Order Completed", 24 * 60, {"revenue": 500.0})]),
    }


@pytest.fixture
def login_as(client, make_user):
    def login(role):
        user = make_user(role, username=f"{(role or 'nobody').lower()}-user")
        client.force_login(user)
        client.user = user
        return client

    return login


def germans() -> dict:
    return {"type": "group", "op": "and", "children": [{"type": "trait", "trait": "country", "op": "equals",
                                                          "value": "DE"}]}


def refreshed(name: str, rules: dict, **kwargs) -> Segment:
    segment = segment_create(name=name, rules=rules, **kwargs)
    segment_refresh(segment=segment)
    segment.refresh_from_db()
    return segment


def builder_post(**fields) -> dict:
    """The builder form's fields: {"children.0.trait": "country"} -> {"rules.children.0.trait": "country"}."""
    data = {"name": fields.pop("name", "Test segment"), "description": "", "kind": fields.pop("kind", "dynamic"),
            "rules.type": "group", "rules.op": fields.pop("op", "and")}
    action = fields.pop("action", None)
    if action is not None:
        data["action"] = action
    data.update({f"rules.{key}": value for key, value in fields.items()})
    return data


class FormFields(HTMLParser):
    """What a browser would submit from the page's builder form (no button): inputs and selected options."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self.select: str | None = None
        self.in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "builder":
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and attrs.get("type") not in ("submit", "button") and attrs.get("name"):
            self.data[attrs["name"]] = attrs.get("value") or ""
        elif tag == "select":
            self.select = attrs["name"]
        elif tag == "option" and self.select and "selected" in attrs:
            self.data[self.select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        if tag == "form":
            self.in_form = False


def form_fields(html: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(html)
    return parser.data


def errors_at(html: str, element_id: str) -> list[str]:
    """The messages of the error list with this id."""
    match = re.search(rf'<ul class="field-errors" id="{re.escape(element_id)}-errors"[^>]*>(.*?)</ul>', html, re.S)
    assert match, f"no error list {element_id}-errors"
    return re.findall(r"<li>(.*?)</li>", match.group(1))


# --- pages and permissions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_pages_render_for_each_role_and_editing_is_for_marketing_and_admin(login_as, people, role):
    segment = refreshed("Germans", germans())
    client = login_as(role)
    listing = client.get(reverse("segments:list"))
    assert listing.status_code == 200
    assert "Germans" in listing.content.decode()
    assert ('href="/segments/new/"' in listing.content.decode()) is (role in EDITORS)
    detail = client.get(reverse("segments:detail", args=[segment.pk]))
    assert detail.status_code == 200
    assert (f'href="/segments/{segment.pk}/edit/"' in detail.content.decode()) is (role in EDITORS)
    expected = 200 if role in EDITORS else 403
    assert client.get(reverse("segments:create")).status_code == expected
    assert client.get(reverse("segments:edit", args=[segment.pk])).status_code == expected
    assert client.get(reverse("segments:delete", args=[segment.pk])).status_code == expected
    assert client.post(reverse("segments:refresh", args=[segment.pk])).status_code in (
        (302,) if role in EDITORS else (403,))


def test_a_user_without_a_role_sees_no_segment(login_as, people):
    segment = refreshed("Germans", germans())
    client = login_as(None)
    assert client.get(reverse("segments:list")).status_code == 403
    assert client.get(reverse("segments:detail", args=[segment.pk])).status_code == 403
    assert client.post(reverse("segments:estimate"), builder_post()).status_code == 403


def test_segment_pages_have_no_inline_script_or_style(login_as, people):
    segment = refreshed("Germans", germans())
    client = login_as("Admin")
    for url in (reverse("segments:list"), reverse("segments:create"), reverse("segments:detail", args=[segment.pk]),
                reverse("segments:edit", args=[segment.pk]), reverse("segments:delete", args=[segment.pk]),
                reverse("segments:explain", args=[segment.pk]) + f"?profile={people['anna'].pk}",
                reverse("segments:quick") + "?q=anna"):
        response = client.get(url)
        assert response.status_code == 200, url
        audit = audit_page(response.content.decode())
        assert audit.problems == [], (url, audit.problems)


# --- the builder --------------------------------------------------------------------------------------------------


def test_create_a_segment_through_the_form(login_as, people, django_capture_on_commit_callbacks):
    client = login_as("Marketing")
    data = builder_post(name="German buyers", **{
        "children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
        "children.0.value": "DE",
        "children.1.type": "event", "children.1.event": "Order Completed", "children.1.op": "at_least",
        "children.1.count": "2", "children.1.window": "days", "children.1.within_days": "30",
        "children.2.type": "trait", "children.2.trait": "age", "children.2.op": "between",
        "children.2.value.0": "18", "children.2.value.1": "40"}, action="save")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segments:create"), data)
    segment = Segment.objects.get(name="German buyers")
    assert response.status_code == 302 and response["Location"] == reverse("segments:detail", args=[segment.pk])
    assert segment.rules == {"type": "group", "op": "and", "children": [
        {"type": "trait", "trait": "country", "op": "equals", "value": "DE"},
        {"type": "event", "event": "Order Completed", "op": "at_least", "count": 2, "within_days": 30, "where": []},
        {"type": "trait", "trait": "age", "op": "between", "value": [18, 40]},
    ]}
    assert segment.created_by == client.user
    assert set(Membership.objects.filter(segment=segment).values_list("profile_id", flat=True)) == {people["anna"].pk}


def test_saving_with_htmx_answers_with_a_redirect_for_the_browser(login_as, people):
    client = login_as("Marketing")
    data = builder_post(**{"children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
                           "children.0.value": "DE"}, action="save")
    response = client.post(reverse("segments:create"), data, HTTP_HX_REQUEST="true")
    segment = Segment.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("segments:detail", args=[segment.pk])


def test_buttons_add_and_remove_conditions_groups_and_property_filters(login_as, people):
    client = login_as("Marketing")
    url = reverse("segments:create")
    base = {"children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
            "children.0.value": "DE"}

    # With htmx the builder alone comes back; the tree as typed stays.
    html = client.post(url, builder_post(**base, action="add:"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and html.lstrip().startswith("<form")
    assert 'name="rules.children.0.value" id="r-children-0-value" value="DE"' in html
    assert 'name="rules.children.1.trait"' in html

    html = client.post(url, builder_post(**base, action="group:")).content.decode()  # without JavaScript: the page
    assert "<html" in html
    assert 'name="rules.children.1.type" value="group"' in html
    assert 'name="rules.children.1.children.0.trait"' in html

    with_event = {**base, "children.1.type": "event", "children.1.event": "Order Completed",
                  "children.1.op": "performed"}
    html = client.post(url, builder_post(**with_event, action="where:children.1")).content.decode()
    assert 'name="rules.children.1.where.0.property"' in html
    assert '<option value="revenue">revenue</option>' in html  # the event's properties, from the data

    html = client.post(url, builder_post(**with_event, action="remove:children.0")).content.decode()
    assert 'name="rules.children.0.event"' in html and "rules.children.1." not in html


def test_changing_the_type_of_a_condition_shows_its_own_fields(login_as, people):
    client = login_as("Marketing")
    data = builder_post(**{"children.0.type": "sequence", "children.0.trait": "country"})
    html = client.post(reverse("segments:create"), data, HTTP_HX_REQUEST="true").content.decode()
    assert 'name="rules.children.0.first.event"' in html and 'name="rules.children.0.then.event"' in html
    assert 'name="rules.children.0.within_hours"' in html
    assert "rules.children.0.trait" not in html
    for kind, field in (("consent", "purpose"), ("segment", "segment"), ("identity", "identity_type"),
                        ("computed", "trait")):
        html = client.post(reverse("segments:create"), builder_post(**{"children.0.type": kind}),
                           HTTP_HX_REQUEST="true").content.decode()
        assert f'name="rules.children.0.{field}"' in html, kind


def test_choices_come_from_the_data(login_as, people):
    html = login_as("Marketing").get(reverse("segments:create")).content.decode()
    trait_select = re.search(r'<select[^>]*name="rules.children.0.trait".*?</select>', html, re.S).group(0)
    assert '<option value="country">' in trait_select and '<option value="age">' in trait_select
    assert "shoe_size" not in trait_select


def test_an_invalid_tree_is_not_saved_and_shows_each_error_at_its_node(login_as, people):
    client = login_as("Marketing")
    data = builder_post(name="Broken", **{
        "children.0.type": "trait", "children.0.trait": "shoe_size", "children.0.op": "equals",
        "children.0.value": "42",
        "children.1.type": "group", "children.1.op": "or",
        "children.1.children.0.type": "trait", "children.1.children.0.trait": "age",
        "children.1.children.0.op": "gt", "children.1.children.0.value": "old",
        "children.2.type": "event", "children.2.event": "Order Completed", "children.2.op": "at_least",
        "children.2.count": "", "children.2.window": ""}, action="save")
    response = client.post(reverse("segments:create"), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert not Segment.objects.exists()
    assert "The segment was not saved" in html
    assert errors_at(html, "r-children-0-trait") == ["No profile has a trait &#x27;shoe_size&#x27;."]
    assert errors_at(html, "r-children-1-children-0-value") == ["&#x27;gt&#x27; needs a number or a date."]
    assert errors_at(html, "r-children-2-count") == ["Fill this in."]
    assert errors_at(html, "r-children-0-op") == []
    assert 'id="r-children-0-trait" aria-invalid="true"' in html
    assert '<option value="shoe_size" selected>shoe_size (not in the data)</option>' in html  # kept, not lost


def test_a_property_filter_error_shows_at_the_filter(login_as, people):
    data = builder_post(**{"children.0.type": "event", "children.0.event": "Order Completed",
                           "children.0.op": "performed", "children.0.where.0.property": "revenue",
                           "children.0.where.0.op": "between", "children.0.where.0.value.0": "10",
                           "children.0.where.0.value.1": "x"})
    html = login_as("Marketing").post(reverse("segments:create"), data).content.decode()
    # A between's error shows at its second value.
    assert errors_at(html, "r-children-0-where-0-value-1") == [
        "&#x27;between&#x27; needs a list of two numbers or two dates: [low, high]."]
    assert errors_at(html, "r-children-0-where-0-value-0") == []


def test_missing_values_are_errors_only_once_saving_was_tried(login_as, people):
    client = login_as("Marketing")
    data = builder_post(**{"children.0.type": "trait", "children.0.trait": "", "children.0.op": "equals",
                           "children.0.value": ""})
    html = client.post(reverse("segments:create"), data, HTTP_HX_REQUEST="true").content.decode()
    assert errors_at(html, "r-children-0-trait") == []
    html = client.post(reverse("segments:create"), {**data, "action": "save"}, HTTP_HX_REQUEST="true").content.decode()
    assert errors_at(html, "r-children-0-trait") == ["Choose one."]
    assert 'name="checked" value="1"' in html  # later answers keep showing what is missing
    html = client.post(reverse("segments:create"), {**data, "checked": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert errors_at(html, "r-children-0-trait") == ["Choose one."]


def test_a_segment_name_is_required(login_as, people):
    client = login_as("Marketing")
    data = builder_post(name="  ", **{"children.0.type": "identity", "children.0.identity_type": "email",
                                      "children.0.op": "exists"}, action="save")
    html = client.post(reverse("segments:create"), data).content.decode()
    assert not Segment.objects.exists()
    assert "This field is required." in html


def test_edit_shows_the_tree_and_saves_the_change(login_as, people, django_capture_on_commit_callbacks):
    segment = refreshed("Germans", germans())
    client = login_as("Admin")
    html = client.get(reverse("segments:edit", args=[segment.pk])).content.decode()
    assert 'name="rules.children.0.value" id="r-children-0-value" value="DE"' in html
    assert 'name="kind"' not in html  # the kind is chosen once
    data = builder_post(name="Austrians", **{"children.0.type": "trait", "children.0.trait": "country",
                                             "children.0.op": "in", "children.0.value": "AT, CH"}, action="save")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segments:edit", args=[segment.pk]), data)
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "Austrians"
    assert segment.rules["children"][0] == {"type": "trait", "trait": "country", "op": "in", "value": ["AT", "CH"]}
    assert list(Membership.objects.filter(segment=segment, exited_at__isnull=True)
                .values_list("profile_id", flat=True)) == [people["ben"].pk]


def test_every_condition_type_survives_a_round_trip_through_the_form(login_as, people):
    """The form holds the tree: what the edit page shows, submitted unchanged, saves the same tree."""
    [purpose, *_] = purposes_install()
    computed_traits_install()
    base = refreshed("Germans", germans())
    rules = {"type": "group", "op": "or", "children": [
        {"type": "trait", "trait": "age", "op": "between", "value": [18, 40]},
        {"type": "trait", "trait": "country", "op": "in", "value": ["DE", "AT"]},
        {"type": "trait", "trait": "first_name", "op": "exists"},
        {"type": "computed", "trait": "lifetime_value", "op": "gte", "value": 100},
        {"type": "identity", "identity_type": "email", "op": "not_exists"},
        {"type": "group", "op": "not", "children": [
            {"type": "event", "event": "Order Completed", "op": "at_most", "count": 3, "after": "2026-01-01",
             "before": "2026-06-30", "where": [{"property": "revenue", "op": "gt", "value": 50}]},
            {"type": "event", "event": "Product Added", "op": "performed", "within_days": 7, "where": []},
        ]},
        {"type": "sequence", "op": "not_followed_by", "within_hours": 24, "first_within_days": 7,
         "first": {"event": "Product Added", "where": [{"property": "sku", "op": "equals", "value": "B"}]},
         "then": {"event": "Order Completed", "where": []}},
        {"type": "consent", "purpose": purpose.key, "op": "granted"},
        {"type": "segment", "segment": base.slug, "op": "not_member"},
    ]}
    segment = refreshed("Everything", rules)
    client = login_as("Marketing")
    fields = form_fields(client.get(reverse("segments:edit", args=[segment.pk])).content.decode())
    response = client.post(reverse("segments:edit", args=[segment.pk]), {**fields, "action": "save"})
    assert response.status_code == 302, errors_at(response.content.decode(), "n-root")
    segment.refresh_from_db()
    assert segment.rules == rules


def test_a_segment_cannot_refer_to_itself(login_as, people):
    segment = refreshed("Germans", germans())
    client = login_as("Admin")
    data = builder_post(name="Germans", **{"children.0.type": "segment", "children.0.segment": segment.slug,
                                           "children.0.op": "member"}, action="save")
    html = client.post(reverse("segments:edit", args=[segment.pk]), data).content.decode()
    assert errors_at(html, "r-children-0-segment") == [
        "A segment cannot depend on itself (directly or through others)."]
    segment.refresh_from_db()
    assert segment.rules == germans()


# --- estimate, preview, suggestions -------------------------------------------------------------------------------


def test_the_estimate_counts_the_tree_as_it_stands(login_as, people):
    client = login_as("Marketing")
    data = builder_post(**{"children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
                           "children.0.value": "DE"})
    html = client.post(reverse("segments:estimate"), data, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-estimate="2"' in html
    assert "<html" not in html
    assert 'id="r-children-0-value-errors" hx-swap-oob="true"></ul>' in html  # the errors are cleared

    data["rules.children.1.type"] = "event"
    data.update({"rules.children.1.event": "Order Completed", "rules.children.1.op": "at_least",
                 "rules.children.1.count": "many"})
    html = client.post(reverse("segments:estimate"), data, HTTP_HX_REQUEST="true").content.decode()
    assert "data-estimate" not in html
    assert "Complete the conditions" in html
    oob = re.search(r'<ul class="field-errors" id="r-children-1-count-errors" hx-swap-oob="true">(.*?)</ul>', html)
    assert oob and "is not of type" in oob.group(1)


def test_the_preview_masks_personal_data_for_marketing(login_as, people):
    data = builder_post(**{"children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
                           "children.0.value": "DE"})
    html = login_as("Marketing").post(reverse("segments:preview"), data, HTTP_HX_REQUEST="true").content.decode()
    assert "All 2 matching profiles" in html
    assert "a•••@e•••.de" in html and "A•••" in html
    assert "anna@example.de" not in html and "Anna" not in html


def test_the_preview_shows_personal_data_to_sales(client, make_user, people):
    client.force_login(make_user("Sales"))
    data = builder_post(**{"children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
                           "children.0.value": "DE"})
    html = client.post(reverse("segments:preview"), data, HTTP_HX_REQUEST="true").content.decode()
    assert "anna@example.de" in html and "dora@example.de" in html and "ben@example.at" not in html


def test_preview_without_javascript_is_part_of_the_page(login_as, people):
    data = builder_post(**{"children.0.type": "trait", "children.0.trait": "country", "children.0.op": "equals",
                           "children.0.value": "AT"}, action="preview")
    html = login_as("Marketing").post(reverse("segments:create"), data).content.decode()
    assert "<html" in html and "All 1 matching profile" in html and 'data-estimate="1"' in html


def test_value_suggestions_fill_the_datalist(login_as, people):
    client = login_as("Marketing")
    url = reverse("segments:values")
    html = client.get(url, {"kind": "trait", "name": "country", "field": "rules.children.0.value",
                            "rules.children.0.value": ""}).content.decode()
    assert html.count("<option") == 2 and '<option value="DE"></option>' in html
    html = client.get(url, {"kind": "trait", "name": "country", "field": "rules.children.0.value",
                            "rules.children.0.value": "A"}).content.decode()
    assert html == '<option value="AT"></option>'
    html = client.get(url, {"kind": "event_property", "name": "Order Completed.revenue", "field": "x",
                            "x": "12"}).content.decode()
    assert html == '<option value="120.0"></option>'
    assert client.get(url, {"kind": "nonsense", "name": "x"}).status_code == 404


def test_a_sensitive_trait_offers_no_value_suggestions(login_as, people):
    from profiles.services import trait_classify

    shopper("eve@example.de", traits={"religion": "catholic"})
    trait_classify(trait="religion", classification="sensitive")
    shopper("fay@example.de", traits={"religion": "protestant"})  # stored encrypted
    html = login_as("Sales").get(reverse("segments:values"), {
        "kind": "trait", "name": "religion", "field": "x", "x": ""}).content.decode()
    assert "<option" not in html


# --- the segment page ---------------------------------------------------------------------------------------------


def test_segment_page_shows_definition_members_masked_and_the_size_chart(login_as, people):
    segment = refreshed("Germans", germans(), description="For the DACH campaign")
    html = login_as("Marketing").get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert "country is DE" in html and "All of" in html
    assert "For the DACH campaign" in html
    assert 'id="segment-size">2<' in html
    assert "a•••@e•••.de" in html and "anna@example.de" not in html
    assert html.count(f'href="{reverse("segments:explain", args=[segment.pk])}?profile=') == 2
    data = json.loads(re.search(r'<script id="segment-size-chart-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))
    assert data["series"][0]["values"][-1] == 2


def test_members_are_paged_with_htmx(login_as, people, monkeypatch):
    monkeypatch.setattr("segments.views.UI_PAGE_SIZE", 1)
    segment = refreshed("Germans", germans())
    client = login_as("Sales")
    html = client.get(reverse("segments:detail", args=[segment.pk]), {"page": 2},
                      HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and 'id="results"' in html
    assert "2–2 of 2 members" in html


def test_overlap_of_two_segments(login_as, people):
    germans_segment = refreshed("Germans", germans())
    buyers = refreshed("Buyers", {"type": "group", "op": "and", "children": [
        {"type": "event", "event": "Order Completed", "op": "performed"}]})
    client = login_as("Marketing")
    html = client.get(reverse("segments:overlap", args=[germans_segment.pk]), {"other": buyers.pk},
                      HTTP_HX_REQUEST="true").content.decode()
    numbers = dict(re.findall(r'data-overlap="(\w+)">.*?<div class="metric-value">(\d+)</div>', html, re.S))
    assert numbers == {"a_only": "0", "both": "2", "b_only": "0"}
    assert '<rect class="both" x="0.00%" y="0" width="100.00%"' in html
    # Without JavaScript the form asks the segment page, which shows the same.
    response = client.get(reverse("segments:overlap", args=[germans_segment.pk]), {"other": buyers.pk})
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert 'data-overlap="both"' in html


def test_why_is_a_profile_a_member(login_as, people):
    segment = refreshed("German buyers", {"type": "group", "op": "and", "children": [
        {"type": "trait", "trait": "country", "op": "equals", "value": "DE"},
        {"type": "event", "event": "Order Completed", "op": "performed", "within_days": 30}]})
    client = login_as("Marketing")
    url = reverse("segments:explain", args=[segment.pk])
    html = client.get(url, {"profile": people["dora"].pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "data-modal-title" in html
    assert "is not a member" in html
    matched = re.findall(r'data-matched="(yes|no)">.*?<span>(.*?)</span>', html, re.S)
    assert matched == [("no", "All of"), ("yes", "country is DE"),
                       ("no", "Order Completed performed in the last 30 days")]
    html = client.get(url, {"profile": people["anna"].pk}).content.decode()
    assert "is a member" in html and "<html" in html
    assert AuditEntry.objects.filter(profile_id=people["anna"].pk, action="view").exists()
    assert "There is no profile with this id." in client.get(url, {"profile": 999999}).content.decode()


def test_refresh_now_and_delete(login_as, people):
    segment = segment_create(name="Germans", rules=germans())  # its first refresh has not run
    client = login_as("Marketing")
    response = client.post(reverse("segments:refresh", args=[segment.pk]), follow=True)
    assert "Refreshed: 2 members (2 entered, 0 left)." in response.content.decode()
    segment.refresh_from_db()
    assert segment.size == 2 and segment.last_refreshed_at is not None

    response = client.post(reverse("segments:delete", args=[segment.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("segments:list")
    assert "Segment “Germans” deleted." in response.content.decode()
    assert not Segment.objects.exists()


def test_a_segment_other_segments_use_is_not_deleted(login_as, people):
    base = refreshed("Germans", germans())
    refreshed("German buyers", {"type": "group", "op": "and", "children": [
        {"type": "segment", "segment": base.slug, "op": "member"}]})
    response = login_as("Admin").post(reverse("segments:delete", args=[base.pk]))
    assert response.status_code == 409
    assert "Used by German buyers" in response.content.decode()
    assert Segment.objects.filter(pk=base.pk).exists()


# --- quick segment from the profile list --------------------------------------------------------------------------


def test_profile_list_offers_save_as_segment_to_editors_only(login_as, people):
    html = login_as("Marketing").get(reverse("profiles:list"), {"q": "example.de"}).content.decode()
    assert f'href="{reverse("segments:quick")}?q=example.de"' in html
    assert 'hx-include="form.filters"' in html
    html = login_as("Sales").get(reverse("profiles:list")).content.decode()
    assert 'data-list-action="save-as-segment"' not in html


def test_quick_segment_saves_the_filtered_profiles_as_a_static_segment(login_as, people):
    # What the profile list finds for these filters (substring matches, and fuzzy ones on PostgreSQL).
    listed = set(ProfileFilter({"q": "example.de"}, queryset=Profile.objects.filter(merged_into__isnull=True))
                 .qs.values_list("pk", flat=True))
    assert {people["anna"].pk, people["dora"].pk} <= listed
    client = login_as("Marketing")
    html = client.get(reverse("segments:quick"), {"q": "example.de", "page": "2"},
                      HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html
    assert f'data-count="{len(listed)}"' in html
    assert '<input type="hidden" name="q" value="example.de">' in html and 'name="page"' not in html
    response = client.post(reverse("segments:quick"), {"q": "example.de", "name": "DE domains"},
                           HTTP_HX_REQUEST="true")
    segment = Segment.objects.get(name="DE domains")
    assert response["HX-Redirect"] == reverse("segments:detail", args=[segment.pk])
    assert segment.kind == Segment.Kind.STATIC and segment.size == len(listed)
    assert set(segment.memberships.values_list("profile_id", flat=True)) == listed
    html = client.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert "it has no conditions" in html
    assert f'href="{reverse("segments:edit", args=[segment.pk])}"' not in html


def test_quick_segment_needs_a_name_and_add_permission(login_as, people):
    client = login_as("Marketing")
    html = client.post(reverse("segments:quick"), {"q": "example.de", "name": ""}).content.decode()
    assert "This field is required." in html and not Segment.objects.exists()
    assert login_as("Sales").get(reverse("segments:quick")).status_code == 403
