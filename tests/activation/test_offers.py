"""Offers: the services' checks, the API (CRUD by slug and key, 400s naming the field), and the UI (list, create,
edit, delete, the preview of the personalization answer) with its permissions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activation.models import Offer
from activation.selectors.personalization import offers_cache_clear, offers_enabled
from activation.services.offers import OfferInvalid, offer_content_clean, offer_create, offer_delete, offer_update
from cdp.core.models import AuditEntry
from consent.models import Purpose
from consent.services import consent_record, purposes_install
from profiles.services import Observation, observations_apply
from segments.catalog import catalog_clear
from segments.services import segment_create, segment_refresh

CONTENT = {"headline": "Stay with us", "body": "Three months at half price.", "cta_url": "https://shop.example/stay"}


@pytest.fixture(autouse=True)
def _fresh_offers():
    offers_cache_clear()
    catalog_clear()
    yield
    offers_cache_clear()
    catalog_clear()


@pytest.fixture
def gold(db):
    """The segment of gold members (Gerd is one)."""
    purposes_install()
    observations_apply(observations=[Observation(
        identities=[("email", "gerd@example.org")], timestamp=timezone.now(), source="crm",
        traits={"membership": "gold"}, event_type="identify", message_id="gerd")])
    made = segment_create(name="Gold members", rules={"type": "trait", "trait": "membership", "op": "equals",
                                                      "value": "gold"})
    segment_refresh(segment=made)
    return made


def personalization() -> Purpose:
    return Purpose.objects.get(key="personalization")


# --- services ------------------------------------------------------------------------------------------------------


def test_content_needs_a_headline_and_a_call_to_action_and_nothing_unknown():
    with pytest.raises(OfferInvalid) as caught:
        offer_content_clean({"body": "x", "cta_url": "javascript:alert(1)", "colour": "red"})
    assert set(caught.value.errors) == {"content.headline", "content.cta_url", "content.colour"}
    assert offer_content_clean({"headline": " Hi ", "cta_url": "/stay", "image_url": ""}) == {
        "headline": "Hi", "cta_url": "/stay"}
    with pytest.raises(OfferInvalid) as caught:
        offer_content_clean(["headline"])
    assert set(caught.value.errors) == {"content"}
    with pytest.raises(OfferInvalid) as caught:
        offer_content_clean({"headline": "x", "cta_url": "//evil.example/x"})
    assert set(caught.value.errors) == {"content.cta_url"}


def test_an_offer_ends_after_it_starts(gold):
    now = timezone.now()
    with pytest.raises(OfferInvalid) as caught:
        offer_create(name="Backwards", segment=gold, purpose=personalization(), content=CONTENT,
                     valid_from=now, valid_until=now - timedelta(days=1))
    assert set(caught.value.errors) == {"valid_until"}
    assert not Offer.objects.exists()


def test_changes_reach_the_cached_offers_at_once(gold):
    made = offer_create(name="Gold perks", segment=gold, purpose=personalization(), content=CONTENT, priority=5)
    assert [o.name for o in offers_enabled()] == ["Gold perks"]
    offer_update(offer=made, name="Gold perks 2", priority=7)
    assert [(o.name, o.priority) for o in offers_enabled()] == [("Gold perks 2", 7)]
    with pytest.raises(OfferInvalid) as caught:
        offer_update(offer=made, colour="red")
    assert set(caught.value.errors) == {"colour"}
    offer_delete(offer=made)
    assert offers_enabled() == []


# --- API -----------------------------------------------------------------------------------------------------------


def test_marketing_creates_an_offer_by_segment_slug_and_purpose_key(gold, api_as):
    client = api_as("Marketing")
    response = client.post("/api/v1/offers/", {"name": "Gold perks", "segment": gold.slug,
                                               "purpose": "personalization", "priority": 10, "content": CONTENT},
                           format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["segment"], body["purpose"], body["content"]) == (gold.slug, "personalization", CONTENT)
    offer = Offer.objects.get()
    assert offer.created_by == client.user
    response = client.patch(f"/api/v1/offers/{offer.pk}/", {"enabled": False}, format="json")
    assert response.status_code == 200
    assert client.get("/api/v1/offers/").json()["results"][0]["enabled"] is False
    assert client.delete(f"/api/v1/offers/{offer.pk}/").status_code == 204


def test_a_wrong_offer_is_a_400_naming_each_field(gold, api_as):
    response = api_as("Marketing").post("/api/v1/offers/", {
        "name": "Broken", "segment": "no-such-segment", "purpose": "personalization",
        "content": {"body": "no headline", "cta_url": "ftp://x"}}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"segment"}
    response = api_as("Admin").post("/api/v1/offers/", {
        "name": "Broken", "segment": gold.slug, "purpose": "personalization",
        "content": {"body": "no headline", "cta_url": "ftp://x"}}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"content.headline", "content.cta_url"}
    assert not Offer.objects.exists()


def test_sales_reads_offers_but_does_not_change_them(gold, api_as):
    client = api_as("Sales")
    assert client.get("/api/v1/offers/").status_code == 200
    response = client.post("/api/v1/offers/", {"name": "x", "segment": gold.slug, "purpose": "personalization",
                                               "content": CONTENT}, format="json")
    assert response.status_code == 403


# --- UI ------------------------------------------------------------------------------------------------------------


def test_the_ui_creates_edits_and_deletes_an_offer(gold, client, make_user):
    client.force_login(make_user("Marketing"))
    page = client.get("/activation/offers/new/")
    assert page.status_code == 200
    form = {"name": "Gold perks", "segment": gold.pk, "purpose": personalization().pk, "priority": 10,
            "headline": "Hello gold", "body": "", "cta_url": "/gold", "image_url": "", "valid_from": "",
            "valid_until": "2030-01-01T10:00", "enabled": "on"}
    response = client.post("/activation/offers/new/", form)
    assert response.status_code == 302
    offer = Offer.objects.get()
    assert offer.content == {"headline": "Hello gold", "cta_url": "/gold"}
    assert offer.valid_until.year == 2030
    listing = client.get("/activation/offers/").content.decode()
    assert "Gold perks" in listing and "Hello gold" in listing
    response = client.post(f"/activation/offers/{offer.pk}/", {**form, "cta_url": "mailto:x@example.org"})
    assert response.status_code == 400
    assert "An http(s) URL or a path on the site" in response.content.decode()
    assert client.post(f"/activation/offers/{offer.pk}/", {**form, "priority": 3}).status_code == 302
    assert Offer.objects.get().priority == 3
    assert client.post(f"/activation/offers/{offer.pk}/delete/").status_code == 302
    assert not Offer.objects.exists()


def test_the_ui_form_and_delete_need_their_permissions(gold, client, make_user):
    offer = offer_create(name="Gold perks", segment=gold, purpose=personalization(), content=CONTENT)
    client.force_login(make_user("Sales"))
    assert client.get("/activation/offers/").status_code == 200
    assert client.get("/activation/offers/new/").status_code == 403
    assert client.post(f"/activation/offers/{offer.pk}/", {}).status_code == 403
    assert client.post(f"/activation/offers/{offer.pk}/delete/").status_code == 403
    assert client.get("/activation/offers/preview/").status_code == 403  # Sales has no personalize permission


def test_the_preview_shows_the_api_answer_masked_for_the_role_and_is_audited(gold, client, make_user):
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("anonymous_id", "anon-gold")], timestamp=timezone.now(), source="web",
        traits={"first_name": "Greta", "membership": "gold"}, event_type="identify", message_id="m1")])
    segment_refresh(segment=gold)
    from profiles.models import Profile

    consent_record(profile=Profile.objects.get(pk=profile_id), purpose=personalization(), status="granted")
    offer_create(name="Gold perks", segment=gold, purpose=personalization(), content=CONTENT)
    client.force_login(make_user("Marketing"))
    page = client.get("/activation/offers/preview/", {"identifier_type": "anonymous_id", "value": "anon-gold"},
                      headers={"HX-Request": "true"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "<html" not in html and 'id="preview-answer"' in html
    assert "Stay with us" in html and "G•••" in html and "Greta" not in html
    entry = AuditEntry.objects.latest("id")
    assert (entry.action, entry.profile_id, entry.fields) == ("view", profile_id, ["first_name", "membership"])
    by_id = client.get("/activation/offers/preview/", {"identifier_type": "profile", "value": str(profile_id)})
    assert "Gold perks" in by_id.content.decode()
    unknown = client.get("/activation/offers/preview/", {"identifier_type": "email", "value": "x@example.org"})
    assert "Unknown" in unknown.content.decode()


def test_offer_pages_have_no_inline_script_or_style(gold, client, make_user):
    offer = offer_create(name="Gold perks", segment=gold, purpose=personalization(), content=CONTENT)
    client.force_login(make_user("Admin"))
    for url in ("/activation/offers/", "/activation/offers/new/", f"/activation/offers/{offer.pk}/",
                "/activation/offers/preview/?identifier_type=email&value=a@example.org"):
        html = client.get(url).content.decode()
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, url
