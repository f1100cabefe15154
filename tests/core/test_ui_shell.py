"""The UI shell: login and logout, the dashboard and its live counts, the audit log, the area lists, masking,
navigation by role, error pages and the strict CSP (no inline script or style in any page)."""

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from cdp.core.services import audit_record
from profiles.models import Profile
from profiles.services import Observation, observations_apply

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"


def people(count: int, *, days_ago: int = 0, start: int = 0) -> list[int]:
    """``count`` people, each identified by email and with one event ``days_ago`` days back."""
    at = timezone.now() - timedelta(days=days_ago)
    return observations_apply(observations=[
        Observation(identities=[("email", f"person{i}@example.org")], timestamp=at, source="web", channel="web",
                    traits={"first_name": f"Firstname{i}", "last_name": f"Lastname{i}",
                            "email": f"person{i}@example.org", "plan": "pro"},
                    event_type="track", event_name="Order Completed", properties={"value": 10 + i},
                    message_id=f"m-{i}")
        for i in range(start, start + count)
    ])


@pytest.fixture
def login_as(client, make_user):
    def login(role: str | None):
        user = make_user(role)
        client.force_login(user)
        client.user = user
        return client

    return login


class PageAudit(HTMLParser):
    """Collects what the CSP forbids: scripts without src (other than JSON data), style attributes and
    elements, inline event handlers and javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self.script_srcs: list[str] = []
        self.json_scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.script_srcs.append(attrs["src"])
            elif attrs.get("type") == "application/json":
                self.json_scripts.append(attrs.get("id", ""))
            else:
                self.problems.append(f"inline <script> {attrs}")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs.items():
            if name == "style":
                self.problems.append(f"style= on <{tag}>")
            if name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}>")
            if name.startswith("hx-on"):
                self.problems.append(f"{name}= on <{tag}> (needs eval)")
            if name in ("href", "src", "action") and value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")


def audit_page(html: str) -> PageAudit:
    parser = PageAudit()
    parser.feed(html)
    return parser


# --- login and logout ------------------------------------------------------------------------------------------


def test_login_page_renders_a_form(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'class="nav"' not in html  # no navigation before login


def test_anonymous_user_is_sent_to_login_with_next(client):
    response = client.get(reverse("profiles:list"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('profiles:list')}"


def test_login_works_and_lands_on_the_dashboard(client, make_user):
    make_user("Sales", username="sam")
    response = client.post(reverse("login"), {"username": "sam", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    html = response.content.decode()
    assert "sam" in html and "Log out" in html


def test_login_with_a_wrong_password_says_so(client, make_user):
    make_user("Sales", username="sam")
    response = client.post(reverse("login"), {"username": "sam", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_follows_next(client, make_user):
    make_user("Sales", username="sam")
    response = client.post(reverse("login"), {"username": "sam", "password": PASSWORD,
                                              "next": reverse("profiles:list")})
    assert response["Location"] == reverse("profiles:list")


def test_logout_is_a_post_and_returns_to_login(login_as):
    client = login_as("Marketing")
    html = client.get(reverse("dashboard")).content.decode()
    assert f'<form method="post" action="{reverse("logout")}">' in html
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("dashboard")).status_code == 302


# --- dashboard -------------------------------------------------------------------------------------------------


def metrics(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="(\w+)">.*?class="metric-value">([^<]*)<', html, re.S))


def test_dashboard_shows_live_counts_and_the_chart_data(login_as):
    people(3)
    people(2, days_ago=3, start=3)
    client = login_as("Marketing")
    response = client.get(reverse("dashboard"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'id="counts"' in html
    assert f'hx-get="{reverse("dashboard-counts")}"' in html and 'hx-trigger="every 10s"' in html
    assert metrics(html) == {"profiles": "5", "events_today": "3", "segments": "0", "activations": "0",
                             "activation_failures": "0"}
    assert f'href="{reverse("profiles:list")}" data-metric="profiles"' in html
    # The chart's data travels as JSON (json_script) and its numbers are in a table too.
    data = json.loads(re.search(r'<script id="activity-data" type="application/json">(.*?)</script>', html,
                                re.S).group(1))
    assert len(data["labels"]) == 30
    assert data["series"][0]["values"][-1] == 3 and data["series"][0]["values"][-4] == 2
    assert sum(data["series"][0]["values"]) == 5
    assert 'data-chart="line"' in html and "<details" in html


def test_dashboard_counts_partial_for_htmx(login_as):
    people(4)
    client = login_as("Marketing")
    response = client.get(reverse("dashboard-counts"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="counts"')
    assert "<html" not in html and 'class="nav"' not in html and "activity-data" not in html
    assert metrics(html)["profiles"] == "4"
    assert "HX-Request" in response["Vary"]


def test_counts_url_without_htmx_is_the_whole_page(login_as):
    client = login_as("Marketing")
    html = client.get(reverse("dashboard-counts")).content.decode()
    assert "<html" in html and 'id="counts"' in html


def test_dashboard_empty_state_without_events(login_as):
    client = login_as("Marketing")
    html = client.get(reverse("dashboard")).content.decode()
    assert "No events in the last 30 days" in html
    assert "activity-data" not in html


def test_dashboard_of_a_user_without_role(login_as):
    client = login_as(None)
    response = client.get(reverse("dashboard"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "No figures for your account" in html
    assert "metric-value" not in html


# --- audit log -------------------------------------------------------------------------------------------------


def test_audit_log_is_for_privacy_and_admin_only(login_as, make_user):
    [profile_id] = people(1)
    viewer = make_user("Sales", username="viewer")
    audit_record(actor=viewer, action="view", object_type="profiles.profile", object_id=profile_id,
                 profile_id=profile_id, summary="Viewed the profile page", fields=["email", "first_name"])
    client = login_as("Privacy")
    response = client.get(reverse("audit-log"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "viewer" in html and "Viewed the profile page" in html
    assert f'href="{reverse("profiles:detail", args=[profile_id])}"' in html
    assert "<code>email</code>" in html

    client.logout()
    marketing = login_as("Marketing")
    forbidden = marketing.get(reverse("audit-log"))
    assert forbidden.status_code == 403
    assert "You do not have access to this page" in forbidden.content.decode()


def test_audit_log_filters_and_htmx_results(login_as, make_user):
    actor = make_user("Sales", username="seller")
    audit_record(actor=actor, action="view", object_type="profiles.profile", object_id=1, summary="looked")
    audit_record(actor=actor, action="export", object_type="profiles.profile", object_id=2, summary="exported")
    client = login_as("Admin")
    html = client.get(reverse("audit-log"), {"action": "export"}).content.decode()
    assert "exported" in html and "looked" not in html
    assert 'id="id_action"' in html  # the full page has the filter form

    partial = client.get(reverse("audit-log"), {"action": "view"}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="results"')
    assert "looked" in partial and "exported" not in partial
    assert "<html" not in partial and 'id="id_action"' not in partial


def test_audit_log_bad_filter_is_explained(login_as):
    client = login_as("Privacy")
    response = client.get(reverse("audit-log"), {"since": "yesterday-ish"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter a valid date/time." in html
    partial = client.get(reverse("audit-log"), {"since": "yesterday-ish"}, HTTP_HX_REQUEST="true")
    assert "From: Enter a valid date/time." in partial.content.decode()


# --- lists, masking, pages -------------------------------------------------------------------------------------


def test_profile_list_masks_names_for_marketing_but_not_for_sales(client, make_user):
    [profile_id] = people(1)
    client.force_login(make_user("Marketing"))
    masked = client.get(reverse("profiles:list")).content.decode()
    assert "Firstname0" not in masked and "person0@example.org" not in masked
    assert "F••• L•••" in masked and "p•••@e•••.org" in masked
    assert f'href="{reverse("profiles:detail", args=[profile_id])}"' in masked

    client.force_login(make_user("Sales"))
    plain = client.get(reverse("profiles:list")).content.decode()
    assert "Firstname0 Lastname0" in plain and "person0@example.org" in plain


def test_profile_detail_masks_traits_identities_and_event_properties(client, make_user):
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("email", "mia@example.org"), ("user_id", "u-77")], timestamp=timezone.now(), source="web",
        traits={"first_name": "Mia", "email": "mia@example.org", "plan": "team"}, event_type="track",
        event_name="Signed Up", properties={"email": "mia@example.org", "plan": "team"})])
    url = reverse("profiles:detail", args=[profile_id])
    client.force_login(make_user("Marketing"))
    html = client.get(url).content.decode()
    assert "mia@example.org" not in html and "Mia" not in html and "u-77" not in html
    assert "m•••@e•••.org" in html and "team" in html and "Signed Up" in html
    assert "Personal data masked" in html

    client.force_login(make_user("Service"))
    html = client.get(url).content.decode()
    assert "mia@example.org" in html and "u-77" in html and "Mia" in html


def test_profile_search_with_htmx_swaps_only_the_results(login_as):
    people(3)
    client = login_as("Sales")
    response = client.get(reverse("profiles:list"), {"q": "person1@example.org"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results"')
    assert "Firstname1" in html and "Firstname0" not in html and "Firstname2" not in html
    assert "1 profiles" in html


def test_profile_list_pages_keep_the_filters(login_as):
    people(55)
    client = login_as("Sales")
    html = client.get(reverse("profiles:list"), {"q": "", "seen_since": ""}).content.decode()
    assert "1–50 of 55 profiles" in html
    assert 'href="?q=&amp;seen_since=&amp;page=2"' in html
    page2 = client.get(reverse("profiles:list"), {"page": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert "51–55 of 55 profiles" in page2 and page2.count("<tr>") == 5 + 1  # five rows and the header


def test_filtered_list_without_matches_explains_itself(login_as):
    people(1)
    client = login_as("Sales")
    html = client.get(reverse("profiles:list"), {"q": "nobody-like-this"}).content.decode()
    assert "No profiles match these filters" in html


@pytest.mark.parametrize("url_name, empty_title", [
    ("profiles:list", "No profiles yet"),
    ("ingestion:source-list", "No sources yet"),
    ("segments:list", "No segments yet"),
    ("activation:list", "No activations yet"),
])
def test_empty_lists_say_what_will_appear(login_as, url_name, empty_title):
    client = login_as("Admin")
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert empty_title in response.content.decode()


def test_source_list_shows_message_counts(login_as):
    from ingestion.models import InboxMessage
    from ingestion.services.inbox import inbox_counts_rebuild
    from ingestion.services.sources import source_create

    source, _ = source_create(name="Web shop", kind="webhook", channel="shop")
    InboxMessage.objects.bulk_create([
        InboxMessage(source=source, message_id=f"m{i}", type="track", payload={}, status=status)
        for i, status in enumerate(["pending", "pending", "processed", "rejected", "rejected", "rejected"])
    ])
    inbox_counts_rebuild()  # the kept counts, for rows written past the services
    html = login_as("Marketing").get(reverse("ingestion:source-list")).content.decode()
    row = re.search(r"Web shop.*?</tr>", html, re.S).group(0)
    numbers = re.findall(r'<td class="num">(.*?)</td>', row)
    assert [re.sub(r"<[^>]+>", "", n) for n in numbers] == ["2", "1", "3"]
    assert "Webhook" in row and "shop" in row and "Enabled" in row


def test_privacy_dashboard_shows_granted_and_decided(login_as):
    from consent import services as consent_services

    purposes = consent_services.purposes_install()
    [a, b] = [Profile.objects.get(pk=pk) for pk in people(2)]
    purpose = purposes[0]
    consent_services.consent_record(profile=a, purpose=purpose, status="granted")
    consent_services.consent_record(profile=b, purpose=purpose, status="granted")
    consent_services.consent_record(profile=b, purpose=purpose, status="withdrawn")
    html = login_as("Privacy").get(reverse("consent:dashboard")).content.decode()
    row = re.search(re.escape(purpose.name) + r".*?</tr>", html, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["1", "2"]
    assert "50%" in row and "<meter" in row


# --- navigation by role ----------------------------------------------------------------------------------------


def nav_links(html: str) -> list[str]:
    nav = re.search(r'<nav class="nav"[^>]*>(.*?)</nav>', html, re.S).group(1)
    return re.findall(r">([^<]+)</a>", nav)


def test_navigation_shows_only_the_areas_a_role_may_open(login_as):
    marketing = nav_links(login_as("Marketing").get(reverse("dashboard")).content.decode())
    assert marketing == ["Dashboard", "Profiles", "Insights", "Sources", "Segments", "Activation", "Privacy"]


def test_navigation_for_privacy_includes_the_audit_log(login_as):
    privacy = nav_links(login_as("Privacy").get(reverse("dashboard")).content.decode())
    assert "Audit log" in privacy and "Admin" not in privacy


def test_navigation_for_a_user_without_role_is_the_dashboard_alone(login_as):
    assert nav_links(login_as(None).get(reverse("dashboard")).content.decode()) == ["Dashboard"]


def test_navigation_marks_the_current_area(login_as):
    html = login_as("Sales").get(reverse("segments:list")).content.decode()
    assert f'<a href="{reverse("segments:list")}" aria-current="page">Segments</a>' in html


# --- errors, CSP, static ---------------------------------------------------------------------------------------


def test_error_pages(login_as):
    client = login_as("Marketing")
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "This page does not exist" in response.content.decode()
    html = render_to_string("500.html")  # rendered without a request, as Django does
    assert "Something went wrong" in html and "app.css" in html


def test_every_page_has_the_csp_and_no_inline_script_or_style(client, make_user):
    profile_id = people(2)[0]
    admin = make_user("Admin", username="root")
    audit_record(actor=admin, action="view", object_type="profiles.profile", object_id=profile_id,
                 profile_id=profile_id)
    urls = [reverse("dashboard"), reverse("profiles:list"), reverse("profiles:detail", args=[profile_id]),
            reverse("audit-log"), reverse("ingestion:source-list"), reverse("segments:list"),
            reverse("activation:list"), reverse("consent:dashboard"), "/no-such-page/"]
    anonymous = client.get(reverse("login"))
    responses = [(reverse("login"), anonymous)]
    client.force_login(admin)
    responses += [(url, client.get(url)) for url in urls]
    for url, response in responses:
        policy = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, url
        audit = audit_page(response.content.decode())
        assert audit.problems == [], (url, audit.problems)
        assert all(src.startswith("/static/") for src in audit.script_srcs), url
    dashboard = dict(responses)[reverse("dashboard")]
    assert audit_page(dashboard.content.decode()).json_scripts == ["activity-data"]


def test_htmx_history_restore_gets_the_whole_page(login_as):
    client = login_as("Sales")
    html = client.get(reverse("profiles:list"), HTTP_HX_REQUEST="true",
                      HTTP_HX_HISTORY_RESTORE_REQUEST="true").content.decode()
    assert "<html" in html


def test_vendored_assets_are_served_from_our_static_files():
    htmx = finders.find("vendor/htmx.min.js")
    chart = finders.find("vendor/chart.umd.min.js")
    assert htmx and chart
    assert 'version:"2.' in Path(htmx).read_text(encoding="utf-8")
    assert "Chart.js v4." in Path(chart).read_text(encoding="utf-8")[:2000]
    assert finders.find("vendor/htmx.LICENSE") and finders.find("vendor/chart.js.LICENSE.md")
    ours = Path(finders.find("cdp/app.js")).read_text(encoding="utf-8")
    assert "eval(" not in ours and "innerHTML" not in ours
