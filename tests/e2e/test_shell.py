"""The UI shell in a real Chromium against the live server: log in, live counts, the chart drawn, navigation
with htmx, pages without JavaScript, no CSP violation, log out."""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.services import Observation, observations_apply

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-for-tests-only"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]



@pytest.fixture(autouse=True)
def sync_orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread, which Django would take for an async context
    and refuse the ORM calls the test makes between browser steps."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def people(count: int, *, start: int = 0, days_ago: int = 0) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    observations_apply(observations=[
        Observation(identities=[("email", f"person{i}@example.org")], timestamp=at, source="web", channel="web",
                    traits={"first_name": f"Firstname{i}", "last_name": f"Lastname{i}",
                            "email": f"person{i}@example.org"},
                    event_type="track", event_name="Order Completed", message_id=f"e2e-{i}")
        for i in range(start, start + count)
    ])


@pytest.fixture
def browser():
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        # While Playwright's loop runs, Django keeps this test's connection apart (asgiref treats the thread as
        # async); close it here, or PostgreSQL refuses to drop the test database at the end.
        connections.close_all()
        browser.close()


@pytest.fixture
def watched_page(browser):
    """A page that records console errors (CSP violations among them) and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


def log_in(page, base_url: str, username: str) -> None:
    response = page.goto(f"{base_url}/login/")
    assert response.status == 200, (response.status, page.content()[:3000])
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def metric(page, key: str) -> str:
    return page.inner_text(f'[data-metric="{key}"] .metric-value')


def test_log_in_see_live_counts_and_chart_navigate_and_log_out(live_server, watched_page, make_user):
    page = watched_page
    people(3)
    people(2, start=3, days_ago=2)
    make_user("Marketing", username="mara")

    log_in(page, live_server.url, "mara")
    assert metric(page, "profiles") == "5"
    assert metric(page, "events_today") == "3"

    # The chart is drawn by Chart.js (loaded on demand from our static files); its table folds away.
    page.wait_for_selector("canvas[data-chart-drawn=true]", timeout=10_000)
    painted = page.evaluate("""() => {
        const canvas = document.querySelector('canvas[data-chart]');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) painted++; }
        return painted;
    }""")
    assert painted > 1000
    assert page.evaluate("() => document.querySelector('details.chart-fallback').open") is False

    # The counts are live: htmx polls them every 10 seconds.
    people(2, start=10)
    # (Functions, not expression strings: Playwright evals expressions, which the CSP forbids.)
    page.wait_for_function("() => document.querySelector('[data-metric=profiles] .metric-value').textContent === '7'",
                           timeout=15_000)

    # Navigation; the search swaps only the results (the page is not reloaded) and pushes the URL.
    page.click("nav.nav >> text=Profiles")
    page.wait_for_url(f"{live_server.url}/profiles/")
    assert page.locator("#results tbody tr").count() == 7
    assert "F••• L•••" in page.inner_text("#results")  # Marketing sees masked names
    page.evaluate("() => { window.__notReloaded = true; }")
    page.fill("#id_q", "person1@example.org")
    page.wait_for_function("() => document.querySelectorAll('#results tbody tr').length === 1", timeout=10_000)
    assert page.evaluate("() => window.__notReloaded") is True
    assert re.search(r"[?&]q=person1%40example\.org", page.url)
    assert "1 profiles" in page.inner_text("#results")

    # A hard reload of the pushed URL renders the whole page with the same result.
    page.reload()
    assert page.locator("nav.nav").count() == 1
    assert page.locator("#results tbody tr").count() == 1

    assert page.problems == []  # no CSP violation, no script error, no failed request so far

    # An area the role may not open is not in the navigation, and answers 403.
    assert page.locator("nav.nav >> text=Audit log").count() == 0
    response = page.goto(f"{live_server.url}/audit/")
    assert response.status == 403
    assert "You do not have access" in page.inner_text("main")
    page.problems.clear()  # the browser logs the 403 as a failed load

    page.goto(f"{live_server.url}/")
    page.click("text=Log out")
    page.wait_for_url(re.compile(r".*/login/$"))
    page.goto(f"{live_server.url}/profiles/")
    assert "/login/?next=/profiles/" in page.url

    assert page.problems == []


def test_pages_read_without_javascript(live_server, browser, make_user):
    people(2)
    make_user("Sales", username="sol")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server.url, "sol")

    # The chart's numbers are open in a table; the canvas is hidden.
    assert page.locator("details.chart-fallback[open] tbody tr").count() == 30
    assert not page.locator("canvas[data-chart]").is_visible()
    assert metric(page, "profiles") == "2"

    # The filter form works as a plain GET.
    page.goto(f"{live_server.url}/profiles/")
    page.fill("#id_q", "person0@example.org")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*q=person0%40example\.org.*"))
    assert page.locator("#results tbody tr").count() == 1
    assert "Firstname0 Lastname0" in page.inner_text("#results")
    context.close()
