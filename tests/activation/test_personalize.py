"""GET /api/v1/personalize: identity resolution, consent gating (traits and segments by the personalization
purpose, the offer by its own), restriction, validity, priority, merged profiles, masking, 400s, permissions and
the audit rule. State is built through the services; runs on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activation.selectors.personalization import offers_cache_clear
from activation.services.offers import offer_create, offer_update
from cdp.core.models import AuditEntry
from consent.models import ConsentRecord, Purpose
from consent.services import consent_record, purposes_install
from profiles.models import Profile
from profiles.services import Observation, observations_apply
from segments.catalog import catalog_clear
from segments.services import segment_create, segment_refresh

URL = "/api/v1/personalize"
EMPTY = {"traits": {}, "computed_traits": {}, "segments": [], "offer": None}


@pytest.fixture(autouse=True)
def _fresh_offers():
    offers_cache_clear()
    catalog_clear()
    yield
    offers_cache_clear()
    catalog_clear()


def person(*, anonymous_id: str, email: str | None = None, traits: dict | None = None) -> Profile:
    identities = [("anonymous_id", anonymous_id)] + ([("email", email)] if email else [])
    [profile_id] = observations_apply(observations=[Observation(
        identities=identities, timestamp=timezone.now() - timedelta(hours=1), source="web", channel="web",
        traits={**({"email": email} if email else {}), **(traits or {})}, event_type="identify",
        message_id=f"identify-{anonymous_id}")])
    return Profile.objects.get(pk=profile_id)


def grant(profile: Profile, key: str, status: str = ConsentRecord.Status.GRANTED, at=None) -> None:
    consent_record(profile=profile, purpose=Purpose.objects.get(key=key), status=status, source="test", at=at)


def segment(name: str, rules: dict):
    made = segment_create(name=name, rules=rules)
    segment_refresh(segment=made)
    return made


def offer(name: str, seg, *, purpose: str = "personalization", priority: int = 100, **fields):
    return offer_create(name=name, segment=seg, purpose=Purpose.objects.get(key=purpose), priority=priority,
                        content={"headline": f"{name}!", "cta_url": "/offers"}, **fields)


@pytest.fixture
def world(db):
    """Anna (gold member, intends to cancel) and the segments and offers of a retention campaign."""
    purposes_install()
    anna = person(anonymous_id="anon-anna", email="anna@example.org",
                  traits={"first_name": "Anna", "membership": "gold", "city": "Köln", "phone": "+4917612345678",
                          "customer_no": "C-991", "intends_to_cancel": True})
    gold = segment("Gold members", {"type": "trait", "trait": "membership", "op": "equals", "value": "gold"})
    cancel = segment("Intends to cancel", {"type": "trait", "trait": "intends_to_cancel", "op": "is_true"})
    return {"anna": anna, "gold": gold, "cancel": cancel}


def get(client, **params):
    return client.get(URL, params)


# --- bad input and permissions -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_identifier_is_a_400_naming_the_identifiers(api_as):
    response = get(api_as("Marketing"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"anonymous_id", "user_id", "email"}


@pytest.mark.django_db
def test_two_identifiers_are_a_400_naming_both(api_as):
    response = get(api_as("Marketing"), anonymous_id="a", email="b@example.org")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"anonymous_id", "email"}


@pytest.mark.django_db
def test_a_blank_identifier_is_a_400_naming_it(api_as):
    response = get(api_as("Marketing"), email="")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email"}


@pytest.mark.django_db
def test_credentials_and_the_personalize_permission_are_needed(api_client, api_as):
    assert get(api_client, anonymous_id="x").status_code == 401
    assert get(api_as(None), anonymous_id="x").status_code == 403
    assert get(api_as("Sales"), anonymous_id="x").status_code == 403  # reads activation, is no integration
    for role in ("Marketing", "Service", "Admin"):  # Service: the call center asks for the caller's offer
        assert get(api_as(role), anonymous_id="x").status_code == 200


# --- who is asked about ------------------------------------------------------------------------------------------


def test_someone_unknown_gets_the_same_empty_answer_as_someone_who_shares_nothing(world, api_as):
    client = api_as("Admin")
    unknown = get(client, anonymous_id="never-seen")
    assert unknown.status_code == 200
    assert unknown.json() == EMPTY
    assert get(client, email="anna@example.org").json() == EMPTY  # Anna granted nothing yet


def test_shared_traits_are_the_allow_list_only_and_segments_need_the_personalization_purpose(world, api_as):
    grant(world["anna"], "personalization")
    body = get(api_as("Admin"), anonymous_id="anon-anna").json()
    assert body["traits"] == {"first_name": "Anna", "membership": "gold", "city": "Köln"}
    assert {s["slug"] for s in body["segments"]} == {world["gold"].slug, world["cancel"].slug}
    assert body["offer"] is None  # no offers defined


def test_email_and_user_id_find_the_same_person_normalized(world, api_as):
    grant(world["anna"], "personalization")
    client = api_as("Admin")
    assert get(client, email="  Anna@Example.ORG ").json()["traits"]["membership"] == "gold"
    assert get(client, user_id="anna-1").json() == EMPTY  # no such user id


def test_personal_traits_are_masked_for_roles_without_view_pii(world, api_as):
    grant(world["anna"], "personalization")
    body = get(api_as("Marketing"), anonymous_id="anon-anna").json()
    assert body["traits"]["first_name"] == "A•••"
    assert body["traits"]["membership"] == "gold"


def test_withdrawn_personalization_stops_sharing_traits_and_segments(world, api_as):
    now = timezone.now()
    grant(world["anna"], "personalization", at=now - timedelta(days=2))
    grant(world["anna"], "personalization", ConsentRecord.Status.WITHDRAWN, at=now - timedelta(days=1))
    assert get(api_as("Admin"), anonymous_id="anon-anna").json() == EMPTY


def test_a_merged_profile_answers_as_the_profile_it_became(world, api_as):
    grant(world["anna"], "personalization")
    phone_browser = person(anonymous_id="anon-phone")
    # The phone's browser logs in with Anna's email: the two profiles merge.
    observations_apply(observations=[Observation(
        identities=[("anonymous_id", "anon-phone"), ("email", "anna@example.org")], timestamp=timezone.now(),
        source="web", channel="web", event_type="identify", message_id="login-phone")])
    phone_browser.refresh_from_db()
    anna = Profile.objects.get(pk=world["anna"].pk)
    assert (phone_browser.merged_into_id, anna.merged_into_id).count(None) == 1
    body = get(api_as("Admin"), anonymous_id="anon-phone").json()
    assert body["traits"]["membership"] == "gold"


def test_a_tombstone_id_in_the_preview_leads_to_the_live_profile(world, make_user):
    from activation.selectors.personalization import personalization_for_profile

    grant(world["anna"], "personalization")
    other = person(anonymous_id="anon-other")
    observations_apply(observations=[Observation(
        identities=[("anonymous_id", "anon-other"), ("email", "anna@example.org")], timestamp=timezone.now(),
        source="web", channel="web", event_type="identify", message_id="login-other")])
    loser = other if Profile.objects.get(pk=other.pk).merged_into_id else world["anna"]
    answer = personalization_for_profile(profile_id=loser.pk, user=make_user("Admin"))
    assert answer.profile_id == Profile.objects.get(pk=loser.pk).merged_into_id
    assert answer.traits["membership"] == "gold"


# --- the offer ---------------------------------------------------------------------------------------------------


def test_the_offer_needs_its_own_purpose_granted(world, api_as):
    offer("Stay with us", world["cancel"], purpose="email_marketing")
    client = api_as("Admin")
    grant(world["anna"], "personalization")
    assert get(client, anonymous_id="anon-anna").json()["offer"] is None
    grant(world["anna"], "email_marketing")
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Stay with us"


def test_the_offer_is_shown_without_sharing_traits_when_only_its_purpose_is_granted(world, api_as):
    offer("Stay with us", world["cancel"], purpose="email_marketing")
    grant(world["anna"], "email_marketing")
    body = get(api_as("Admin"), anonymous_id="anon-anna").json()
    assert body["traits"] == {} and body["segments"] == []
    assert body["offer"]["content"] == {"headline": "Stay with us!", "cta_url": "/offers"}
    assert body["offer"]["segment"] == world["cancel"].slug


def test_the_lowest_priority_number_wins_among_qualifying_offers(world, api_as):
    grant(world["anna"], "personalization")
    offer("Gold perks", world["gold"], priority=50)
    offer("Retention", world["cancel"], priority=10)
    offer("Nobody's", segment("Silver", {"type": "trait", "trait": "membership", "op": "equals", "value": "silver"}),
          priority=1)
    client = api_as("Admin")
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Retention"
    retention = world["cancel"].offers.get()
    offer_update(offer=retention, enabled=False)
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Gold perks"


def test_only_offers_valid_now_are_shown(world, api_as):
    grant(world["anna"], "personalization")
    now = timezone.now()
    offer("Starts tomorrow", world["gold"], priority=1, valid_from=now + timedelta(days=1))
    offer("Ended", world["gold"], priority=2, valid_from=now - timedelta(days=9), valid_until=now - timedelta(hours=1))
    client = api_as("Admin")
    assert get(client, anonymous_id="anon-anna").json()["offer"] is None
    offer("This week", world["gold"], priority=3, valid_from=now - timedelta(days=1),
          valid_until=now + timedelta(days=6))
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "This week"


def test_an_offer_change_is_seen_at_once_in_the_process_that_made_it(world, api_as):
    grant(world["anna"], "personalization")
    client = api_as("Admin")
    assert get(client, anonymous_id="anon-anna").json()["offer"] is None  # caches the (empty) offers
    offer("Gold perks", world["gold"])
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Gold perks"


# --- audit and cost ----------------------------------------------------------------------------------------------


def test_an_integration_reading_by_token_is_not_audited_but_a_person_in_the_browser_is(world, api_as, make_user,
                                                                                          client):
    grant(world["anna"], "personalization")
    before = AuditEntry.objects.filter(object_type="profiles.profile").count()
    get(api_as("Admin"), anonymous_id="anon-anna")
    assert AuditEntry.objects.filter(object_type="profiles.profile").count() == before
    client.force_login(make_user("Admin", username="admin-person"))
    assert client.get(URL, {"anonymous_id": "anon-anna"}).status_code == 200
    entry = AuditEntry.objects.filter(object_type="profiles.profile").latest("id")
    assert (entry.actor.username, entry.action, entry.profile_id) == ("admin-person", "view", world["anna"].pk)
    assert entry.fields == ["city", "first_name", "membership"]


def test_an_answer_takes_a_few_queries_whatever_the_number_of_offers(world, api_as, django_assert_max_num_queries):
    grant(world["anna"], "personalization")
    grant(world["anna"], "email_marketing")
    for i in range(20):
        offer(f"Offer {i}", world["gold" if i % 2 else "cancel"], purpose="email_marketing" if i % 3 else
              "personalization", priority=i + 5)
    client = api_as("Admin")
    get(client, anonymous_id="anon-anna")  # offers, the token's user and permissions cached
    # the profile with its consent flags and open memberships (1), shared computed traits (1)
    with django_assert_max_num_queries(2):
        assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Offer 0"
    # a token not yet cached: its user (1) and the user's permissions (2) on top
    from cdp.core.api.authentication import tokens_forget

    tokens_forget()
    with django_assert_max_num_queries(5):
        assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Offer 0"


def test_a_restricted_person_gets_nothing_until_the_restriction_is_lifted(world, api_as):
    from consent.services import request_complete, request_create, request_lift

    grant(world["anna"], "personalization")
    offer("Retention", world["cancel"])
    client = api_as("Admin")
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Retention"
    restriction = request_create(kind="restriction", identifier_type="email", identifier="anna@example.org",
                                 verification_note="Called from the number on file")
    request_complete(request=restriction)
    assert get(client, anonymous_id="anon-anna").json() == EMPTY
    request_lift(request=restriction, reason="Dispute settled")
    assert get(client, anonymous_id="anon-anna").json()["offer"]["name"] == "Retention"


def test_a_sensitive_trait_is_never_shared_even_when_allow_listed(world, api_as, settings):
    from profiles.services import trait_classify

    settings.PERSONALIZATION_SHARED_TRAITS = ["first_name", "membership", "health_condition"]
    trait_classify(trait="health_condition", classification="sensitive")
    person(anonymous_id="anon-ben", traits={"first_name": "Ben", "membership": "gold", "health_condition": "asthma"})
    grant(Profile.objects.get(identities__value="anon-ben"), "personalization")
    for role in ("Admin", "Marketing"):  # with core.view_pii too: a sensitive value is decrypted for nobody here
        traits = get(api_as(role), anonymous_id="anon-ben").json()["traits"]
        assert "health_condition" not in traits, role
        assert traits["membership"] == "gold"
