"""The segment builder in a real Chromium against the live server: two conditions built by clicking, the size
estimate following each change, an error shown at its field while typing, saving, the members on the segment
page, and no CSP violation or script error on the way."""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.services import Observation, observations_apply
from segments.models import Segment
from tests.e2e import test_shell as shell
from tests.e2e.test_shell import CHROMIUM, log_in

# The browser fixtures of the shell's test (Chromium, a page that records console errors, the ORM beside
# Playwright's event loop).
browser = shell.browser
watched_page = shell.watched_page
sync_orm_beside_playwright = shell.sync_orm_beside_playwright

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


def customers() -> None:
    """Three customers in DE and one in AT; two of the Germans ordered in the last week."""
    now = timezone.now()
    people = [("de1", "DE", True), ("de2", "DE", True), ("de3", "DE", False), ("at1", "AT", True)]
    observations = []
    for key, country, ordered in people:
        email = f"{key}@example.org"
        observations.append(Observation(identities=[("email", email)], timestamp=now - timedelta(days=30),
                                        source="crm", channel="crm", event_type="identify",
                                        traits={"email": email, "first_name": key.upper(), "country": country},
                                        message_id=f"identify-{key}"))
        if ordered:
            observations.append(Observation(identities=[("email", email)], timestamp=now - timedelta(days=2),
                                            source="web", channel="web", event_type="track",
                                            event_name="Order Completed", properties={"revenue": 50},
                                            message_id=f"order-{key}"))
    observations_apply(observations=observations)


def estimate_is(page, count: int) -> None:
    page.wait_for_function(f"() => {{ const e = document.querySelector('#estimate [data-estimate]'); "
                           f"return e && e.dataset.estimate === '{count}'; }}", timeout=10_000)


def settled(page) -> None:
    """Wait until htmx has swapped and settled (it binds the new builder's triggers only when it settles: a person
    cannot choose within those milliseconds, a script can) and no request is in flight."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')",
                           timeout=10_000)


def test_build_a_segment_of_two_conditions_by_clicking(live_server, watched_page, make_user):
    page = watched_page
    customers()
    make_user("Marketing", username="mara")
    log_in(page, live_server.url, "mara")

    page.click("nav.nav >> text=Segments")
    page.click("text=New segment")
    page.wait_for_url(f"{live_server.url}/segments/new/")
    page.fill("#id_name", "German buyers")

    # First condition: the trait country, chosen from the data; the value input then suggests values.
    page.select_option("#r-children-0-trait", "country")
    page.wait_for_selector("#r-children-0-value[list]")
    page.fill("#r-children-0-value", "DE")
    estimate_is(page, 3)

    # Second condition: add one, make it an event condition, choose the event.
    page.click("text=+ Condition")
    page.wait_for_selector("#r-children-1-type")
    settled(page)
    page.select_option("#r-children-1-type", "event")
    page.wait_for_selector("#r-children-1-event")
    settled(page)
    page.select_option("#r-children-1-event", "Order Completed")
    page.wait_for_selector("#r-children-1-event option[value='Order Completed'][selected]", state="attached")
    estimate_is(page, 2)

    # A wrong value is named at its field while typing, and the estimate waits for it.
    page.select_option("#r-children-1-op", "at_least")
    page.wait_for_selector("#r-children-1-count")
    settled(page)
    page.fill("#r-children-1-count", "1.5")
    page.wait_for_function("() => document.querySelector('#r-children-1-count-errors').textContent.includes('is not')",
                           timeout=10_000)
    assert page.locator("#estimate [data-estimate]").count() == 0
    page.fill("#r-children-1-count", "1")
    estimate_is(page, 2)
    assert page.inner_text("#r-children-1-count-errors") == ""

    page.click("text=Save segment")
    segment_url = re.compile(rf"{re.escape(live_server.url)}/segments/\d+/$")
    page.wait_for_url(segment_url)
    assert "Segment “German buyers” saved." in page.inner_text("main")
    segment = Segment.objects.get(name="German buyers")
    assert [child["type"] for child in segment.rules["children"]] == ["trait", "event"]
    page.reload()  # the first refresh runs after the save
    assert page.inner_text("#segment-size") == "2"
    assert page.locator("#results tbody tr").count() == 2
    assert "D•••" in page.inner_text("#results")  # Marketing sees masked names

    assert page.problems == []
