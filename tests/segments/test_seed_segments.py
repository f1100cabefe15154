"""The demo's example segments: created through the services when their data exists, skipped with the reason
when it does not, never twice."""

from io import StringIO

import pytest
from django.core.management import call_command

from segments.models import Segment
from tests.segments.conftest import shopper

pytestmark = pytest.mark.django_db


def test_segments_whose_data_is_missing_are_skipped_with_the_reason():
    out = StringIO()
    call_command("seed_segments", stdout=out)
    # Only the segment that needs no events (an identity and a stock consent purpose) exists.
    assert list(Segment.objects.values_list("name", flat=True)) == ["Newsletter audience"]
    assert "Skipped segment 'Cart abandoners'" in out.getvalue() and "Product Added" in out.getvalue()


def test_example_segments_are_created_once(django_capture_on_commit_callbacks):
    shopper("anna@example.de", events=[("Product Added", 30, {}), ("Order Completed", 24 * 200, {"revenue": 9}),
                                       ("Call Center Note", 24, {"subject": "Kündigung"})])
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_segments", stdout=StringIO())
    assert set(Segment.objects.values_list("name", flat=True)) >= {"Cart abandoners", "Intends to cancel",
                                                                   "Valuable customers"}
    assert Segment.objects.get(name="Intends to cancel").size == 1
    assert Segment.objects.get(name="Cart abandoners").size == 1
    call_command("seed_segments", stdout=StringIO())
    assert Segment.objects.filter(name="Cart abandoners").count() == 1
