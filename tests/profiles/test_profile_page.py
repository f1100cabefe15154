"""The 360° profile page: golden record with lineage, identities, timeline (paged, filtered, htmx), panels from
consent and segments, merges with undo, notes; roles and masking; one audit entry per page view."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.core.models import AuditEntry
from consent.models import ConsentRecord, Purpose
from profiles.models import Merge, Profile
from profiles.services import golden_record_recompute, profiles_merge
from profiles.services.golden import trait_values_record
from segments.models import Membership, Segment
from tests.profiles.people import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def login_as(client, make_user):
    def login(role):
        user = make_user(role)
        client.force_login(user)
        client.user = user
        return client

    return login


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


def page_views(profile):
    return AuditEntry.objects.filter(profile_id=profile.pk, action="view", summary="Viewed the profile page")


def test_page_shows_golden_record_identities_and_timeline_for_service(login_as):
    anna = person("anna.mueller@example.de", first_name="Anna", last_name="Müller", phone="+4930123456", events=3)
    client = login_as("Service")
    response = client.get(reverse("profiles:detail", args=[anna.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Golden record" in html and "Anna Müller" in html
    assert "anna.mueller@example.de" in html and "+4930123456" in html
    assert "crm" in html  # the winning value's source
    assert "Product Viewed" in html and "Timeline" in html
    assert 'name="channel"' in html and ">web<" in html
    audit = InlineAudit()
    audit.feed(html)
    assert audit.problems == []


def test_marketing_sees_masked_values_and_no_note_form(login_as):
    anna = person("anna.mueller@example.de", first_name="Anna", last_name="Müller", phone="+4930123456")
    client = login_as("Marketing")
    html = client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert "anna.mueller@example.de" not in html and "+4930123456" not in html and "Müller" not in html
    assert "Personal data masked" in html
    assert "Add note" not in html


def test_lineage_shows_why_a_value_won_and_other_values_seen(login_as):
    lea = person("lea@example.de", first_name="Lea")
    now = timezone.now()
    trait_values_record([(lea.pk, "city", "Bonn", "shop", now - timezone.timedelta(days=3)),
                         (lea.pk, "city", "Köln", "crm", now)])
    golden_record_recompute(profile=lea, names=["city"])
    lea.refresh_from_db()
    assert lea.traits["city"] == "Köln"  # the stock policy: most recent
    html = login_as("Sales").get(reverse("profiles:detail", args=[lea.pk])).content.decode()
    assert "Other values seen" in html
    assert "Bonn" in html and "Köln" in html
    why = lea.trait_sources["city"]
    assert why["source"] == "crm" and "From <b>crm</b>" in html
    masked = login_as("Marketing")
    body = masked.get(reverse("profiles:section", args=[lea.pk, "golden"]), HTTP_HX_REQUEST="true")
    assert "Köln" in body.content.decode()  # a city is not personal data by itself
    assert "Lea" not in body.content.decode()  # a first name is


def test_one_audit_entry_per_page_view_not_per_partial(login_as):
    anna = person("anna@example.de", first_name="Anna", events=60)
    client = login_as("Service")
    client.get(reverse("profiles:detail", args=[anna.pk]))
    assert page_views(anna).count() == 1
    htmx = {"HTTP_HX_REQUEST": "true"}
    client.get(reverse("profiles:timeline", args=[anna.pk]), {"channel": "web"}, **htmx)
    client.get(reverse("profiles:section", args=[anna.pk, "golden"]), **htmx)
    client.get(reverse("profiles:section", args=[anna.pk, "identities"]), **htmx)
    assert page_views(anna).count() == 1
    client.get(reverse("profiles:detail", args=[anna.pk]))
    assert page_views(anna).count() == 2
    entry = page_views(anna).first()
    assert entry.actor == client.user and "email" in entry.fields


def test_timeline_pages_with_a_cursor_and_load_more(login_as):
    anna = person("anna@example.de", events=75)  # 75 events + the identify = 76
    client = login_as("Service")
    html = client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert html.count('class="event-name"') == 50
    assert "Load more" in html
    marker = 'id="timeline-more">\n          <a class="btn btn-sm" href="'
    start = html.index(marker) + len(marker)
    url = html[start:html.index('"', start)].replace("&amp;", "&")
    page2 = client.get(url, HTTP_HX_REQUEST="true")
    assert page2.status_code == 200
    body = page2.content.decode()
    assert body.count('class="event-name"') == 26
    assert "Load more" not in body and "<html" not in body


def test_timeline_filters_by_channel_and_type_as_an_htmx_partial(login_as):
    anna = person("anna@example.de", events=6, event_channel="app")
    client = login_as("Service")
    url = reverse("profiles:timeline", args=[anna.pk])
    body = client.get(url, {"type": "page"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith("<section")
    assert "<html" not in body
    assert body.count('class="event-name"') == 2  # events 0 and 3 are pages
    body = client.get(url, {"channel": "crm"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.count('class="event-name"') == 1  # the identify
    body = client.get(url, {"channel": "shop"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No events match" in body
    # Without htmx the timeline URL is the page itself (with the filter).
    response = client.get(url, {"channel": "app"})
    assert response.status_code == 302 and response["Location"].endswith(f"/profiles/{anna.pk}/?channel=app")


def test_consent_and_segment_panels_come_from_their_apps(login_as):
    anna = person("anna@example.de")
    purpose = Purpose.objects.get_or_create(key="email_marketing", defaults={"name": "Email marketing"})[0]
    Purpose.objects.get_or_create(key="profiling", defaults={"name": "Profiling"})
    ConsentRecord.objects.create(profile=anna, purpose=purpose, status="granted", recorded_at=timezone.now())
    segment = Segment.objects.create(name="Loyal customers", slug="loyal")
    Membership.objects.create(segment=segment, profile=anna, entered_at=timezone.now())
    html = login_as("Service").get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert "Email marketing" in html and "Granted" in html and "No decision" in html
    assert "Loyal customers" in html


def test_panels_need_their_permissions(login_as, make_user):
    anna = person("anna@example.de")
    Purpose.objects.get_or_create(key="email_marketing", defaults={"name": "Email marketing"})
    from django.contrib.auth.models import Permission
    user = make_user(None, username="viewer")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_profile", "view_event"]))
    from django.test import Client
    client = Client()
    client.force_login(user)
    html = client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert "Email marketing" not in html and "Consent" not in html


def test_merge_journal_and_undo(login_as):
    anna = person("anna@example.de", first_name="Anna")
    other = person("anna.work@example.de", first_name="Anna")
    merge = profiles_merge(winner=anna, loser=other, reason=Merge.Reason.MANUAL, rule="test")
    client = login_as("Admin")
    html = client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert f"#{other.pk}" in html and "Undo" in html
    # The loser's page leads to the winner.
    response = client.get(reverse("profiles:detail", args=[other.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("profiles:detail", args=[anna.pk])
    response = client.post(reverse("profiles:merge-undo", args=[merge.pk]), {"profile": anna.pk},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert "Merge undone" in response["HX-Trigger"] and "profileChanged" in response["HX-Trigger"]
    merge.refresh_from_db()
    assert merge.undone_at is not None
    assert Profile.objects.get(pk=other.pk).merged_into_id is None
    again = client.post(reverse("profiles:merge-undo", args=[merge.pk]), HTTP_HX_REQUEST="true")
    assert "undone already" in again["HX-Trigger"]


def test_undo_needs_the_change_merge_permission(login_as):
    anna = person("anna@example.de")
    other = person("anna2@example.de")
    merge = profiles_merge(winner=anna, loser=other, reason=Merge.Reason.MANUAL)
    client = login_as("Service")
    assert "Undo" not in client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert client.post(reverse("profiles:merge-undo", args=[merge.pk])).status_code == 403
    merge.refresh_from_db()
    assert merge.undone_at is None


def test_unknown_profile_and_section_are_404(login_as):
    client = login_as("Service")
    assert client.get(reverse("profiles:detail", args=[999999])).status_code == 404
    anna = person("anna@example.de")
    assert client.get(reverse("profiles:section", args=[anna.pk, "nope"]), HTTP_HX_REQUEST="true").status_code == 404


def test_list_search_finds_by_name_and_hides_merged_profiles(login_as):
    anna = person("anna@example.de", first_name="Anna", last_name="Schmidt")
    person("bert@example.de", first_name="Bert", last_name="Meier")
    client = login_as("Sales")
    html = client.get(reverse("profiles:list"), {"q": "schmidt"}).content.decode()
    assert "Anna Schmidt" in html and "Bert" not in html
    body = client.get(reverse("profiles:list"), {"q": "MEIER"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Bert Meier" in body and "<html" not in body
    merged = person("anna.s@example.de", first_name="Anna", last_name="Schmidt")
    profiles_merge(winner=anna, loser=merged, reason=Merge.Reason.MANUAL)
    html = client.get(reverse("profiles:list"), {"q": "schmidt"}).content.decode()
    assert f"#{merged.pk}<" not in html and f"#{anna.pk}<" in html
