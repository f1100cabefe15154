"""The next best action: rules first (segment, consent purpose, validity, restriction, churn-risk bounds), then a
score per offer from the person's insights by its goal, the rest by priority; the personalization API answers
with the choice and a reason without the person's numbers, and with recommendations when asked. Insight values are
written through profiles' one writer (``insight_values_write``), events through the pipeline's service; runs on
SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activation.models import Offer
from activation.selectors.nba import WIN_BACK_DAYS
from activation.selectors.personalization import offers_cache_clear, personalization_for_profile
from activation.services.offers import OfferInvalid, offer_create, offer_update
from consent.models import ConsentRecord, Purpose
from consent.services import consent_record, purposes_install
from profiles.models import Profile
from profiles.selectors import recommendations_for
from profiles.services import Observation, computed_values_refresh, observations_apply
from profiles.services.insights import insight_run, insight_values_write
from segments.catalog import catalog_clear
from segments.services import segment_create, segment_refresh

URL = "/api/v1/personalize"
ORDER = "Order Completed"


@pytest.fixture(autouse=True)
def _fresh_offers():
    offers_cache_clear()
    catalog_clear()
    yield
    offers_cache_clear()
    catalog_clear()


def person(name: str, *, orders: list[tuple[float, list[str]]] = (), **traits) -> Profile:
    """A gold member identified by ``anon-<name>`` (and ``<name>@example.org``) with ``orders``: (days ago, product
    ids bought), each an order event; the computed traits are refreshed as the pipeline would."""
    observations = [Observation(identities=[("anonymous_id", f"anon-{name}"), ("email", f"{name}@example.org")],
                                timestamp=timezone.now() - timedelta(days=400), source="web", channel="web",
                                traits={"first_name": name.title(), "membership": "gold", **traits},
                                event_type="identify", message_id=f"identify-{name}")]
    for i, (days, products) in enumerate(orders):
        observations.append(Observation(
            identities=[("anonymous_id", f"anon-{name}")], timestamp=timezone.now() - timedelta(days=days),
            source="web", channel="web", event_type="track", event_name=ORDER, message_id=f"order-{name}-{i}",
            properties={"revenue": 50.0, "products": [{"product_id": pid, "name": f"Product {pid}", "price": 25.0,
                                                       "quantity": 1} for pid in products]}))
    ids = observations_apply(observations=observations)
    computed_values_refresh(profile_ids=[ids[0]])
    return Profile.objects.get(pk=ids[0])


def insights(profile: Profile, **values) -> None:
    insight_values_write(values={key: {profile.pk: value} for key, value in values.items()}, full=False)


def grant(profile: Profile, key: str = "personalization") -> None:
    consent_record(profile=profile, purpose=Purpose.objects.get(key=key), status=ConsentRecord.Status.GRANTED,
                   source="test")


def offer(name: str, seg, *, purpose: str = "personalization", priority: int = 100, **fields) -> Offer:
    return offer_create(name=name, segment=seg, purpose=Purpose.objects.get(key=purpose), priority=priority,
                        content={"headline": f"{name}!", "cta_url": "/offers"}, **fields)


@pytest.fixture
def gold(db):
    purposes_install()
    return {"rules": {"type": "trait", "trait": "membership", "op": "equals", "value": "gold"}}


def gold_segment(gold):
    made = segment_create(name="Gold members", rules=gold["rules"])
    segment_refresh(segment=made)
    return made


def answer(client, name: str, **params) -> dict:
    response = client.get(URL, {"anonymous_id": f"anon-{name}", **params})
    assert response.status_code == 200, response.content
    return response.json()


# --- scores decide among goals; priority where nothing scores ----------------------------------------------------


def test_offers_without_a_goal_keep_the_priority_order_whatever_the_insights(gold, api_as):
    anna = person("anna")
    grant(anna)
    insights(anna, churn_risk=0.9, predicted_clv_12m=500.0)
    seg = gold_segment(gold)
    offer("Later", seg, priority=50)
    offer("First", seg, priority=10)
    offer("Same number, newer", seg, priority=10)
    body = answer(api_as("Admin"), "anna")
    assert body["offer"]["name"] == "First"
    assert (body["offer"]["goal"], body["offer"]["reason"]) == ("none", "priority 10")


@pytest.fixture
def shop(gold):
    """Anna bought A; others bought A with B (three times) and A with C (once): the recommendations run finds B
    and then C for her."""
    anna = person("anna", orders=[(20, ["A"])])
    for i in range(3):
        person(f"b{i}", orders=[(30 + i, ["A", "B"])])
    person("c0", orders=[(40, ["A", "C"])])
    insight_run(kind="recommendations")
    assert [rec["product_id"] for rec in recommendations_for(profile_id=anna.pk)][:2] == ["B", "C"]
    grant(anna)
    return {"anna": anna, "segment": gold_segment(gold)}


def test_the_retention_offer_wins_for_a_high_churn_risk_customer_over_a_better_priority_number(
        shop, api_as, make_user, django_assert_max_num_queries):
    anna, seg = shop["anna"], shop["segment"]
    insights(anna, churn_risk=0.82, predicted_clv_12m=310.0)
    offer("Gold perks", seg, priority=1, goal="none")
    offer("Product B", seg, priority=5, goal="cross_sell", expected_value=40.0, product_ids=["B"])
    offer("Stay with us", seg, priority=50, goal="retention")
    client = api_as("Admin")
    answer(client, "anna")  # offers and trait definitions cached
    # At most 0.18 × 40 EUR, below 254 EUR at risk: the API does not compute her recommendations (5 queries, as
    # without NBA).
    with django_assert_max_num_queries(5):
        body = answer(client, "anna")
    assert body["offer"]["name"] == "Stay with us"
    assert body["offer"]["goal"] == "retention"
    assert body["offer"]["reason"] == "retention: the value at risk (churn risk × predicted 12-month value)"
    assert "0.82" not in str(body) and "310" not in str(body)  # the person's insights stay in the CDP
    assert body["computed_traits"] == {"order_count": 1, "days_since_last_order": 20}  # the allow-list only
    previewer = make_user("Admin", username="previewer")
    ranked = personalization_for_profile(profile_id=anna.pk, user=previewer).nba.ranked
    assert [r.offer.name for r in ranked] == ["Stay with us", "Gold perks", "Product B"]
    assert ranked[2].detail == "priority 5 (not scored: at most 7.20 EUR, below the best offer's 254 EUR)"
    ranked = personalization_for_profile(profile_id=anna.pk, user=previewer, complete=True).nba.ranked
    assert [r.offer.name for r in ranked] == ["Stay with us", "Product B", "Gold perks"]
    assert ranked[1].detail == ("recommended: Product B (#1, relevance 1.00) × stays 0.18 × the offer 40.00 EUR = "
                                "7.20 EUR")


def test_the_cross_sell_offer_wins_for_a_low_risk_customer_whose_recommendations_include_its_product(shop, api_as,
                                                                                                      make_user):
    anna, seg = shop["anna"], shop["segment"]
    insights(anna, churn_risk=0.1, predicted_clv_12m=300.0)
    offer("Stay with us", seg, priority=1, goal="retention")
    offer("Product C", seg, priority=5, goal="cross_sell", expected_value=100.0, product_ids=["C"])
    offer("Product B", seg, priority=10, goal="cross_sell", product_ids=["Z", "B"])  # priced by the catalog
    offer("Product Z", seg, priority=2, goal="cross_sell", expected_value=500.0, product_ids=["Z"])
    body = answer(api_as("Admin"), "anna", recommendations=2)
    assert body["offer"]["name"] == "Product C"
    assert (body["offer"]["goal"], body["offer"]["reason"]) == ("cross_sell", "recommended: Product C")
    assert body["recommendations"] == [{"product_id": "B", "name": "Product B", "category": ""},
                                       {"product_id": "C", "name": "Product C", "category": ""}]
    nba = personalization_for_profile(profile_id=anna.pk, user=make_user("Admin", username="previewer"),
                                      complete=True).nba
    b, c = recommendations_for(profile_id=anna.pk)[:2]
    assert nba.ranked[0].score == pytest.approx(c["score"] / b["score"] * 0.9 * 100.0)  # C relative to the top, B
    assert [(r.offer.name, r.scored) for r in nba.ranked] == [
        ("Product C", True), ("Stay with us", True), ("Product B", True), ("Product Z", False)]
    assert nba.ranked[1].score == pytest.approx(30.0)
    assert nba.ranked[2].score == pytest.approx(0.9 * 25.0)  # B's price in the catalog, relevance 1
    assert nba.ranked[3].detail == "priority 2 (none of its products is among the person's 2 recommendations)"


def test_the_preview_ranks_every_offer_with_its_score_and_the_persons_numbers(gold, make_user):
    anna = person("anna")
    grant(anna)
    insights(anna, churn_risk=0.82, predicted_clv_12m=310.0)
    seg = gold_segment(gold)
    offer("Gold perks", seg, priority=1)
    offer("Stay with us", seg, priority=50, goal="retention")
    offer("Risky only", seg, priority=2, goal="retention", min_churn_risk=0.9)
    offer("Mail only", seg, priority=3, purpose="email_marketing")
    nba = personalization_for_profile(profile_id=anna.pk, user=make_user("Admin")).nba
    assert [(r.offer.name, r.score) for r in nba.ranked] == [("Stay with us", pytest.approx(0.82 * 310)),
                                                            ("Gold perks", None)]
    assert nba.ranked[0].detail == "churn risk 0.82 × predicted 12-month value 310 EUR = 254 EUR at risk"
    assert {r.offer.name: r.excluded for r in nba.excluded} == {
        "Risky only": "churn risk 0.82 below its minimum 0.90",
        "Mail only": "consent purpose email_marketing not granted"}


def test_without_a_predicted_value_retention_uses_the_offers_value_and_without_a_churn_risk_priority(gold, make_user):
    anna, ben = person("anna"), person("ben")
    for profile in (anna, ben):
        grant(profile)
    insights(anna, churn_risk=0.5)
    seg = gold_segment(gold)
    offer("Gold perks", seg, priority=1)
    offer("Stay with us", seg, priority=50, goal="retention", expected_value=30.0)
    admin = make_user("Admin")
    ranked = personalization_for_profile(profile_id=anna.pk, user=admin).nba.ranked
    assert [(r.offer.name, r.score) for r in ranked] == [("Stay with us", pytest.approx(15.0)), ("Gold perks", None)]
    ranked = personalization_for_profile(profile_id=ben.pk, user=admin).nba.ranked
    assert [r.offer.name for r in ranked] == ["Gold perks", "Stay with us"]
    assert ranked[1].detail == "priority 50 (no churn risk for the person yet)"


def test_win_back_scores_the_lapse_since_the_last_order_and_acquisition_only_prospects(gold, make_user):
    lapsed = person("lapsed", orders=[(WIN_BACK_DAYS // 2, ["A"])])
    prospect = person("prospect")
    for profile in (lapsed, prospect):
        grant(profile)
    seg = gold_segment(gold)
    offer("Come back", seg, priority=20, goal="win_back", expected_value=20.0)
    offer("First order", seg, priority=10, goal="acquisition", expected_value=8.0)
    admin = make_user("Admin")
    ranked = personalization_for_profile(profile_id=lapsed.pk, user=admin).nba.ranked
    assert [r.offer.name for r in ranked] == ["Come back", "First order"]
    assert ranked[0].score == pytest.approx(20.0 * (WIN_BACK_DAYS // 2) / WIN_BACK_DAYS)
    assert ranked[1].detail == "priority 10 (already a customer: 1 orders)"
    ranked = personalization_for_profile(profile_id=prospect.pk, user=admin).nba.ranked
    assert [(r.offer.name, r.score) for r in ranked] == [("First order", 8.0), ("Come back", None)]


# --- the rules still come first ------------------------------------------------------------------------------------


def test_without_personalization_no_insight_is_read_and_priority_decides(gold, api_as, make_user):
    anna = person("anna")
    grant(anna, "email_marketing")  # the offers' purpose, not personalization
    insights(anna, churn_risk=0.9, predicted_clv_12m=500.0)
    seg = gold_segment(gold)
    offer("Newsletter perks", seg, purpose="email_marketing", priority=10)
    offer("Stay with us", seg, purpose="email_marketing", priority=50, goal="retention")
    offer("Risky only", seg, purpose="email_marketing", priority=1, min_churn_risk=0.5)
    body = answer(api_as("Admin"), "anna")
    assert body["offer"]["name"] == "Newsletter perks"
    assert body["traits"] == {} and body["computed_traits"] == {}
    nba = personalization_for_profile(profile_id=anna.pk, user=make_user("Admin", username="previewer")).nba
    assert not nba.insights_read
    assert [r.score for r in nba.ranked] == [None, None]
    assert nba.excluded[0].excluded == "has churn-risk bounds; insights are read only with personalization granted"


def test_an_offer_whose_purpose_is_not_granted_is_excluded_however_well_it_scores(gold, api_as):
    anna = person("anna")
    grant(anna)
    insights(anna, churn_risk=0.9, predicted_clv_12m=500.0)
    seg = gold_segment(gold)
    offer("Mail retention", seg, purpose="email_marketing", priority=1, goal="retention")
    offer("Gold perks", seg, priority=90)
    assert answer(api_as("Admin"), "anna")["offer"]["name"] == "Gold perks"


def test_a_restricted_person_gets_nothing_however_high_the_scores(gold, api_as):
    from consent.services import request_complete, request_create

    anna = person("anna")
    grant(anna)
    insights(anna, churn_risk=0.9, predicted_clv_12m=500.0)
    offer("Stay with us", gold_segment(gold), goal="retention")
    client = api_as("Admin")
    assert answer(client, "anna")["offer"]["name"] == "Stay with us"
    restriction = request_create(kind="restriction", identifier_type="email", identifier="anna@example.org",
                                 verification_note="Asked in writing")
    request_complete(request=restriction)
    assert answer(client, "anna", recommendations=5) == {
        "traits": {}, "computed_traits": {}, "segments": [], "offer": None, "recommendations": []}


def test_churn_risk_bounds_choose_who_an_offer_is_for(gold, api_as):
    calm, worried = person("calm"), person("worried")
    for profile, risk in ((calm, 0.1), (worried, 0.7)):
        grant(profile)
        insights(profile, churn_risk=risk, predicted_clv_12m=100.0)
    seg = gold_segment(gold)
    offer("For the worried", seg, priority=10, min_churn_risk=0.5)
    offer("For the calm", seg, priority=20, max_churn_risk=0.3)
    client = api_as("Admin")
    assert answer(client, "calm")["offer"]["name"] == "For the calm"
    assert answer(client, "worried")["offer"]["name"] == "For the worried"


# --- the offer's new fields ------------------------------------------------------------------------------------------


def test_the_services_check_the_next_best_action_fields(gold):
    person("anna")
    seg = gold_segment(gold)
    with pytest.raises(OfferInvalid) as caught:
        offer("No products", seg, goal="cross_sell")
    assert set(caught.value.errors) == {"product_ids"}
    with pytest.raises(OfferInvalid) as caught:
        offer("Bad", seg, goal="upsell", expected_value=-1, min_churn_risk=1.5, product_ids=[["A"]])
    assert set(caught.value.errors) == {"goal", "expected_value", "min_churn_risk", "product_ids"}
    with pytest.raises(OfferInvalid) as caught:
        offer("Backwards", seg, min_churn_risk=0.6, max_churn_risk=0.4)
    assert set(caught.value.errors) == {"max_churn_risk"}
    with pytest.raises(OfferInvalid) as caught:
        offer("Free", seg, goal="acquisition")
    assert set(caught.value.errors) == {"expected_value"}
    made = offer("Cross", seg, goal="cross_sell", product_ids=[" A ", "B", "A", 7])
    assert made.product_ids == ["A", "B", "7"]
    with pytest.raises(OfferInvalid) as caught:
        offer_update(offer=made, product_ids=[])
    assert set(caught.value.errors) == {"product_ids"}
    assert Offer.objects.get().product_ids == ["A", "B", "7"]


def test_the_offers_api_takes_and_names_the_new_fields(gold, api_as):
    person("anna")
    seg = gold_segment(gold)
    client = api_as("Marketing")
    response = client.post("/api/v1/offers/", {
        "name": "Accessories", "segment": seg.slug, "purpose": "personalization", "goal": "cross_sell",
        "expected_value": 12.5, "product_ids": ["A", "B"], "max_churn_risk": 0.4,
        "content": {"headline": "Complete your set", "cta_url": "/set"}}, format="json")
    assert response.status_code == 201, response.content
    assert {key: response.json()[key] for key in ("goal", "expected_value", "product_ids", "min_churn_risk",
                                                  "max_churn_risk")} == {
        "goal": "cross_sell", "expected_value": 12.5, "product_ids": ["A", "B"], "min_churn_risk": None,
        "max_churn_risk": 0.4}
    response = client.post("/api/v1/offers/", {
        "name": "Nothing", "segment": seg.slug, "purpose": "personalization", "goal": "cross_sell",
        "content": {"headline": "x", "cta_url": "/x"}}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"product_ids"}


def test_the_ui_form_saves_the_goal_and_the_preview_shows_the_ranking(gold, client, make_user):
    anna = person("anna")
    grant(anna)
    insights(anna, churn_risk=0.82, predicted_clv_12m=310.0)
    seg = gold_segment(gold)
    offer("Gold perks", seg, priority=1)
    client.force_login(make_user("Admin"))
    form = {"name": "Stay with us", "segment": seg.pk, "purpose": Purpose.objects.get(key="personalization").pk,
            "priority": 50, "goal": "retention", "expected_value": "", "product_ids": "",
            "min_churn_risk": "0.5", "max_churn_risk": "", "headline": "Stay", "cta_url": "/stay", "enabled": "on"}
    assert client.post("/activation/offers/new/", form).status_code == 302
    made = Offer.objects.get(name="Stay with us")
    assert (made.goal, made.min_churn_risk, made.product_ids) == ("retention", 0.5, [])
    response = client.post("/activation/offers/new/", {**form, "name": "Cross", "goal": "cross_sell"})
    assert response.status_code == 400
    assert "A cross-sell offer names the products it promotes." in response.content.decode()
    page = client.get(f"/activation/offers/{made.pk}/").content.decode()
    assert 'value="retention" selected' in page
    page = client.get("/activation/offers/preview/", {"identifier_type": "profile", "value": anna.pk},
                      headers={"HX-Request": "true"}).content.decode()
    assert "churn risk 0.82 × predicted 12-month value 310 EUR = 254 EUR at risk" in page
    assert "Chosen" in page and "254.20 EUR" in page


# --- the API ------------------------------------------------------------------------------------------------------


def test_recommendations_are_added_only_when_asked_and_bad_counts_are_a_400(gold, api_as):
    anna = person("anna")
    client = api_as("Admin")
    assert "recommendations" not in answer(client, "anna")
    assert answer(client, "anna", recommendations=3)["recommendations"] == []  # personalization not granted
    assert answer(client, "nobody", recommendations=3) == {
        "traits": {}, "computed_traits": {}, "segments": [], "offer": None, "recommendations": []}
    response = client.get(URL, {"anonymous_id": "anon-anna", "recommendations": 99})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"recommendations"}
    assert anna.pk


def test_an_answer_with_scored_offers_takes_no_more_queries(gold, api_as, django_assert_max_num_queries):
    anna = person("anna")
    grant(anna)
    insights(anna, churn_risk=0.3, predicted_clv_12m=200.0)
    seg = gold_segment(gold)
    for i in range(10):
        offer(f"Offer {i}", seg, priority=i + 1, goal=("retention", "win_back", "none")[i % 3],
              expected_value=10.0 * i)
    client = api_as("Admin")
    answer(client, "anna")  # offers and trait definitions cached
    # token and user (1), the user's permissions (2), the profile with its flags and memberships (1), the shared
    # computed traits and the insights together (1)
    with django_assert_max_num_queries(5):
        assert answer(client, "anna")["offer"]["name"] == "Offer 0"


def test_the_api_skips_recommendations_only_when_no_cross_sell_offer_could_win():
    """Without the complete ranking (the API), the choice is the one of the complete ranking for every mix of
    churn risk, predicted value and offer values; the recommendations are computed only when a cross-sell offer
    could win."""
    from dataclasses import dataclass

    from activation.selectors.nba import nba_rank

    @dataclass(frozen=True)
    class Plain:  # an offer as the cache holds it
        id: int
        name: str
        priority: int
        goal: str
        expected_value: float | None = None
        product_ids: tuple = ()
        segment_id: int = 1
        purpose_key: str = "personalization"
        min_churn_risk: float | None = None
        max_churn_risk: float | None = None

        def valid_at(self, when) -> bool:
            return True

    recs = [{"product_id": "B", "name": "B", "price": 25.0, "score": 0.4},
            {"product_id": "C", "name": "C", "price": 30.0, "score": 0.2}]
    calls = []

    def recommended():
        calls.append(1)
        return recs

    now = timezone.now()
    for risk in (None, 0.05, 0.3, 0.6, 0.95):
        for clv in (None, 20.0, 300.0):
            for value_c in (None, 10.0, 80.0):
                offers = [Plain(1, "Perks", 1, "none"), Plain(2, "Stay", 50, "retention", expected_value=15.0),
                          Plain(3, "Cross C", 5, "cross_sell", expected_value=value_c, product_ids=("C",)),
                          Plain(4, "Back", 20, "win_back", expected_value=30.0)]
                values = {"churn_risk": risk, "predicted_clv_12m": clv, "days_since_last_order": 200}
                values = {key: value for key, value in values.items() if value is not None}
                full = nba_rank(offers=offers, member_of={1}, granted={"personalization"}, now=now, insights=values,
                                recommendations=recommended)
                calls.clear()
                quick = nba_rank(offers=offers, member_of={1}, granted={"personalization"}, now=now,
                                 insights=values, recommendations=recommended, complete=False)
                assert quick.choice.offer.name == full.choice.offer.name, (risk, clv, value_c)
                could_win = value_c is None or (1 - (risk or 0)) * value_c >= max(
                    r.score for r in full.ranked if r.scored and r.offer.goal != "cross_sell")
                assert bool(calls) == could_win, (risk, clv, value_c)
