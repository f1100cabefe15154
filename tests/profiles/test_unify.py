"""Probabilistic unification against the database: incremental matching, the review queue, never-merge,
``manage.py unify``, the match-rule API and the review UI. State is built through the services."""

import copy
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from cdp.core.models import AuditEntry
from profiles.matching import DEFAULT_PEOPLE_RULES
from profiles.models import MatchCandidate, MatchKey, MatchRule, Merge, NeverMerge, Profile
from profiles.services import Observation, observations_apply
from profiles.services.matching import (
    CandidateDecisionError,
    candidate_decide,
    match_incremental,
    match_keys_refresh,
    match_rules_install,
    profile_record,
    split_street,
    unify_full,
)

pytestmark = pytest.mark.django_db
AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_profile(identity: tuple[str, str], traits: dict, *, source: str = "", at: datetime = AT) -> Profile:
    [pk] = observations_apply(observations=[Observation(identities=[identity], traits=traits, timestamp=at,
                                                        source=source)])
    return Profile.objects.get(pk=pk)


def live(pk: int) -> int:
    profile = Profile.objects.get(pk=pk)
    while profile.merged_into_id:
        profile = Profile.objects.get(pk=profile.merged_into_id)
    return profile.pk


CRM_MUELLER = {"first_name": "Johannes", "last_name": "Müller", "birth_date": "1980-03-14",
               "street": "Hauptstraße 12", "postcode": "80331", "city": "München", "phone": "+49 170 1234567"}
SHOP_MUELLER = {"first_name": "Hans", "last_name": "Mueller", "birth_date": "14.03.1980", "street": "Hauptstr. 12",
                "postcode": "80331", "city": "Muenchen", "email": "hans.mueller@example.org"}
ANNA_CRM = {"first_name": "Anna", "last_name": "Schmidt", "birth_date": "1975-06-02", "postcode": "10115",
            "city": "Berlin", "street": "Invalidenstraße 5"}
ANNA_SHOP = {"first_name": "Anna", "last_name": "Schmidt", "postcode": "10115", "city": "Berlin",
             "email": "anna.s@example.com"}


@pytest.fixture
def rule():
    return match_rules_install()



# --- records ---------------------------------------------------------------------------------------------------


def test_profile_record_maps_traits_and_splits_street_lines():
    assert split_street("Hauptstraße 12a") == ("Hauptstraße", "12a")
    assert split_street("12 Main St") == ("Main St", "12")
    assert split_street("Am Markt") == ("Am Markt", "")
    traits = {"firstName": "Eva", "surname": "Roth", "address": {"street": "Ring 4", "postalCode": "1010"},
              "birthday": "1990-01-02"}
    record = profile_record(traits, {"email": "eva@example.org"})
    assert (record["first_name"], record["last_name"], record["street"], record["house_number"]) == \
        ("Eva", "Roth", "Ring", "4")
    assert (record["postcode"], record["birth_date"], record["email"]) == ("1010", "1990-01-02", "eva@example.org")
    assert profile_record({"name": "Jan de Vries"})["last_name"] == "de Vries"
    assert profile_record(None)["first_name"] is None


# --- incremental -----------------------------------------------------------------------------------------------


def test_crm_and_shop_records_of_one_person_auto_merge_with_evidence_in_the_journal(rule):
    crm = make_profile(("record", "crm:100"), CRM_MUELLER, source="crm")
    shop = make_profile(("user_id", "u-100"), SHOP_MUELLER, source="online-shop")
    assert crm.pk != shop.pk  # no shared identifier: only probabilistic matching can join them
    match_keys_refresh(profile_ids=[crm.pk])

    result = match_incremental(profile_ids=[shop.pk])

    assert (result.auto_merged, result.sent_to_review) == (1, 0)
    assert live(shop.pk) == live(crm.pk) == crm.pk  # the older profile stays
    merge = Merge.objects.get(pk=result.merges[0])
    assert (merge.reason, merge.rule, merge.winner_id, merge.loser_id) == ("match", "people", crm.pk, shop.pk)
    assert merge.score >= rule.auto_merge_threshold
    fields = merge.evidence["fields"]
    assert fields["last_name"]["level"] == "exact"  # Müller / Mueller
    assert fields["first_name"]["level"] == "nickname"  # Johannes / Hans
    assert fields["street"]["level"] == "exact"  # Hauptstraße / Hauptstr.
    assert fields["email"]["level"] == "missing"
    # The loser's keys are gone; a second run finds nothing new to do (idempotent).
    assert not MatchKey.objects.filter(profile_id=shop.pk).exists()
    again = match_incremental(profile_ids=[shop.pk, crm.pk])
    assert again.auto_merged == 0 and Merge.objects.count() == 1


def test_a_borderline_pair_lands_in_review_and_a_never_merge_decision_holds(rule, make_user):
    crm = make_profile(("record", "crm:200"), ANNA_CRM, source="crm")
    shop = make_profile(("user_id", "u-200"), ANNA_SHOP, source="online-shop")
    match_keys_refresh(profile_ids=[crm.pk])

    result = match_incremental(profile_ids=[shop.pk])

    assert (result.auto_merged, result.sent_to_review) == (0, 1)
    candidate = MatchCandidate.objects.get()
    assert (candidate.profile_a_id, candidate.profile_b_id, candidate.status) == (crm.pk, shop.pk, "pending")
    assert rule.review_threshold <= candidate.score < rule.auto_merge_threshold
    assert candidate.evidence["fields"]["birth_date"]["level"] == "missing"

    admin = make_user("Admin")
    candidate_decide(candidate=candidate, decision="never_merge", actor=admin)
    candidate.refresh_from_db()
    assert candidate.status == "never_merge" and candidate.decided_by == admin
    assert NeverMerge.objects.filter(profile_a=crm, profile_b=shop).exists()
    assert AuditEntry.objects.filter(object_type="profiles.matchcandidate", object_id=str(candidate.pk)).exists()
    with pytest.raises(CandidateDecisionError):
        candidate_decide(candidate=candidate, decision="merge", actor=admin)

    # Later the shop profile gets the same birth date: now an auto-merge score, but never merge holds.
    observations_apply(observations=[Observation(identities=[("user_id", "u-200")], timestamp=AT + timedelta(days=1),
                                                 traits={"birth_date": "1975-06-02"})])
    later = match_incremental(profile_ids=[shop.pk])
    assert later.auto_merged == 0 and later.sent_to_review == 0 and later.skipped_decided == 1
    assert live(shop.pk) == shop.pk and MatchCandidate.objects.count() == 1
    # ... and in a full run too.
    assert unify_full().auto_merged == 0
    assert live(shop.pk) == shop.pk


def test_merge_and_dismiss_decisions(rule, make_user):
    admin = make_user("Admin")
    a = make_profile(("record", "crm:300"), ANNA_CRM)
    b = make_profile(("user_id", "u-300"), ANNA_SHOP)
    match_keys_refresh(profile_ids=[a.pk])
    match_incremental(profile_ids=[b.pk])
    candidate = MatchCandidate.objects.get()
    with pytest.raises(CandidateDecisionError):
        candidate_decide(candidate=candidate, decision="maybe", actor=admin)
    candidate_decide(candidate=candidate, decision="merge", actor=admin)
    assert live(b.pk) == a.pk
    merge = Merge.objects.get(loser_id=b.pk)
    assert merge.actor == admin and merge.score == pytest.approx(candidate.score)
    assert merge.evidence["fields"]["first_name"]["level"] == "exact"

    c = make_profile(("record", "crm:301"), {**ANNA_CRM, "first_name": "Berta", "birth_date": "1952-01-01",
                                               "email": "b@example.com"})
    d = make_profile(("user_id", "u-301"), {**ANNA_SHOP, "first_name": "Berta", "email": "berta@example.net"})
    match_incremental(profile_ids=[c.pk, d.pk])
    pending = MatchCandidate.objects.filter(status="pending")
    for item in pending:
        candidate_decide(candidate=item, decision="dismiss", actor=admin)
    assert not MatchCandidate.objects.filter(status="pending").exists()
    match_incremental(profile_ids=[c.pk, d.pk])  # dismissed pairs are not queued again
    assert not MatchCandidate.objects.filter(status="pending").exists()


def test_tombstones_are_skipped_and_their_ids_follow_to_the_winner(rule):
    crm = make_profile(("record", "crm:400"), CRM_MUELLER)
    shop = make_profile(("user_id", "u-400"), SHOP_MUELLER)
    match_incremental(profile_ids=[crm.pk, shop.pk])
    assert live(shop.pk) == crm.pk
    # A third record of the same person, matched by the id of the merged-away profile and its own.
    call = make_profile(("record", "call-center:9"), {"first_name": "Johannes", "last_name": "Muller",
                                                      "birth_date": "1980-03-14", "phone": "+49 170 1234567"})
    result = match_incremental(profile_ids=[shop.pk, call.pk])
    assert result.auto_merged == 1 and live(call.pk) == crm.pk
    assert Profile.objects.filter(merged_into__isnull=True, pk__in=[crm.pk, shop.pk, call.pk]).count() == 1


def test_nothing_happens_without_an_enabled_rule():
    a = make_profile(("record", "crm:500"), CRM_MUELLER)
    b = make_profile(("user_id", "u-500"), SHOP_MUELLER)
    assert match_incremental(profile_ids=[a.pk, b.pk]).compared == 0
    assert live(b.pk) == b.pk


def test_the_profile_changed_receiver_enqueues_matching(rule, eager_tasks, django_capture_on_commit_callbacks):
    # Eager Celery in tests: the task runs inline once each batch commits.
    with django_capture_on_commit_callbacks(execute=True):
        crm = make_profile(("record", "crm:600"), CRM_MUELLER)
    assert MatchKey.objects.filter(profile=crm).exists()  # the first batch's task stored its keys
    with django_capture_on_commit_callbacks(execute=True):
        observations_apply(observations=[
            Observation(identities=[("user_id", "u-600")], traits=SHOP_MUELLER, timestamp=AT),
            Observation(identities=[("user_id", "u-601")], traits={"first_name": "Ida", "last_name": "Kern"},
                        timestamp=AT)])
    assert Merge.objects.filter(winner=crm, reason="match").count() == 1


def test_the_receiver_enqueues_nothing_without_an_enabled_rule_or_inside_a_matching_pass(
        rule, django_capture_on_commit_callbacks):
    from profiles import tasks
    from profiles.services import matching

    sent = []
    original = tasks.match_profiles.delay
    tasks.match_profiles.delay = lambda ids: sent.append(ids)
    try:
        tasks.profile_changed_enqueue_matching(Profile, profile_ids=[3, 1, 3])
        with matching._matching():
            tasks.profile_changed_enqueue_matching(Profile, profile_ids=[4])
        MatchRule.objects.update(enabled=False)
        tasks.profile_changed_enqueue_matching(Profile, profile_ids=[5])
    finally:
        tasks.match_profiles.delay = original
    assert sent == [[1, 3]]


# --- manage.py unify -------------------------------------------------------------------------------------------


def _synthetic_people(count: int) -> tuple[list[Observation], list[tuple[str, str]], list[tuple[str, str]]]:
    """People from the demo generator: a shop profile per person and, for those in the CRM, the CRM row as a
    second profile (no shared identifier, the CRM's own typos and nicknames); plus household members (same
    surname, address and landline, another first name and birth date). Returns the observations and the pairs of
    identities that are one person, and those that are not."""
    from ingestion.demo.generator import demo_people

    observations, same, different = [], [], []
    people = list(demo_people(profiles=count, seed=11, now=AT))
    for person in people:
        truth = person.truth
        shop_key = ("user_id", f"shop-{person.index}")
        observations.append(Observation(identities=[shop_key], timestamp=AT, source="online-shop", traits={
            key: truth[key] for key in ("first_name", "last_name", "email", "street", "postcode", "city",
                                        "birth_date")}))
        for row in person.crm:
            crm_key = ("record", f"crm:{row['customer_no']}")
            traits = {key: row[key] for key in ("first_name", "last_name", "street", "postcode", "city",
                                                "birth_date", "phone") if row[key]}
            observations.append(Observation(identities=[crm_key], timestamp=AT, source="crm", traits=traits))
            same.append((shop_key, crm_key))
        if person.index % 5 == 0:  # a household member at the same address
            other = people[(person.index * 7 + 3) % len(people)].truth
            member = ("record", f"crm:household-{person.index}")
            observations.append(Observation(identities=[member], timestamp=AT, source="crm", traits={
                "first_name": other["first_name"] if other["first_name"] != truth["first_name"] else "Maximilian",
                "last_name": truth["last_name"], "street": truth["street"], "postcode": truth["postcode"],
                "city": truth["city"], "birth_date": "2003-07-21"}))
            different.append((shop_key, member))
    return observations, same, different


def test_unify_full_merges_the_duplicates_and_not_the_households(rule, make_user):
    observations, same, different = _synthetic_people(300)
    for start in range(0, len(observations), 50):  # pipeline-sized batches
        observations_apply(observations=observations[start:start + 50])
    from profiles.models import Identity

    def profile_of(key):
        return live(Identity.objects.get(type=key[0], value=key[1]).profile_id)

    assert len(same) > 80 and len(different) == 60
    before = Profile.objects.count()
    assert before == len(observations)

    out, err = io.StringIO(), io.StringIO()
    call_command("unify", "--full", stdout=out, stderr=err)

    assert "unify: read:" in err.getvalue() and "unify: score:" in err.getvalue()
    summary = out.getvalue()
    assert "pairs compared" in summary and "auto-merged" in summary and "sent to review" in summary
    merged_same = sum(profile_of(a) == profile_of(b) for a, b in same)
    queued = MatchCandidate.objects.filter(status="pending").count()
    assert merged_same + queued >= 0.95 * len(same), (merged_same, queued, len(same))
    assert merged_same >= 0.85 * len(same)
    # No household member was merged with the person at the same address.
    assert all(profile_of(a) != profile_of(b) for a, b in different)
    # Every automatic merge joined two records of one person: each live profile holds at most one shop user.
    shop_users = Identity.objects.filter(type="user_id").values_list("value", flat=True)
    winners = {}
    for value in shop_users:
        pk = profile_of(("user_id", value))
        assert pk not in winners, f"{value} and {winners.get(pk)} were merged"
        winners[pk] = value
    merges = Merge.objects.filter(reason="match")
    assert merges.count() == before - Profile.objects.filter(merged_into__isnull=True).count()
    assert all(m.rule == "people" and m.score >= 0.99 and m.evidence["fields"] for m in merges)

    # Without --full: only profiles changed since the last run; nothing changed, nothing merged.
    out = io.StringIO()
    call_command("unify", stdout=out, stderr=io.StringIO())
    assert "Incremental unification" in out.getvalue() and " 0 auto-merged" in out.getvalue()


def test_unify_full_dry_run_counts_and_changes_nothing(rule):
    make_profile(("record", "crm:900"), CRM_MUELLER)
    make_profile(("user_id", "u-900"), SHOP_MUELLER)
    make_profile(("record", "crm:901"), ANNA_CRM)
    make_profile(("user_id", "u-901"), ANNA_SHOP)
    out = io.StringIO()
    call_command("unify", "--full", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "1 would be auto-merged, 1 would go to review" in out.getvalue()
    assert not Merge.objects.exists() and not MatchCandidate.objects.exists() and not MatchKey.objects.exists()
    assert Profile.objects.filter(merged_into__isnull=True).count() == 4


def test_unify_installs_the_default_rule_when_there_is_none():
    assert not MatchRule.objects.exists()
    err = io.StringIO()
    call_command("unify", "--full", stdout=io.StringIO(), stderr=err)
    assert MatchRule.objects.get().name == "people"
    assert "installed the default match rule" in err.getvalue()


# --- API ------------------------------------------------------------------------------------------------------


def test_api_creates_lists_and_validates_match_rules(api_as, rule):
    admin = api_as("Admin")
    rules = copy.deepcopy(DEFAULT_PEOPLE_RULES)
    rules["fields"][1]["m"][2] = 1.5
    response = admin.post("/api/v1/match-rules/", {"name": "strict", "rules": rules, "auto_merge_threshold": 0.995,
                                                    "review_threshold": 0.9}, format="json")
    assert response.status_code == 400
    assert "rules.fields.1.m.2" in response.json()["error"]["fields"]

    response = admin.post("/api/v1/match-rules/", {"name": "strict", "auto_merge_threshold": 0.5,
                                                    "review_threshold": 0.9}, format="json")
    assert response.status_code == 400 and "review_threshold" in response.json()["error"]["fields"]

    bad_key = copy.deepcopy(DEFAULT_PEOPLE_RULES)
    bad_key["blocking"]["keys"][0]["on"] = ["shoe_size"]
    response = admin.post("/api/v1/match-rules/", {"name": "x", "rules": bad_key}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["rules.blocking.keys.0.on.0"]

    response = admin.post("/api/v1/match-rules/", {"name": "strict", "rules": DEFAULT_PEOPLE_RULES,
                                                    "auto_merge_threshold": 0.995, "review_threshold": 0.9,
                                                    "enabled": False}, format="json")
    assert response.status_code == 201, response.json()
    created = MatchRule.objects.get(name="strict")
    assert created.auto_merge_threshold == 0.995 and not created.enabled
    response = admin.patch(f"/api/v1/match-rules/{created.pk}/", {"review_threshold": 0.95}, format="json")
    assert response.status_code == 200 and MatchRule.objects.get(pk=created.pk).review_threshold == 0.95
    listed = admin.get("/api/v1/match-rules/").json()
    assert {item["name"] for item in listed["results"]} == {"people", "strict"}
    assert admin.delete(f"/api/v1/match-rules/{created.pk}/").status_code == 204

    marketing = api_as("Marketing")
    assert marketing.get("/api/v1/match-rules/").status_code == 200
    assert marketing.post("/api/v1/match-rules/", {"name": "m"}, format="json").status_code == 403


def test_api_review_queue_lists_masks_and_decides(api_as, rule):
    a = make_profile(("record", "crm:700"), ANNA_CRM)
    b = make_profile(("user_id", "u-700"), ANNA_SHOP)
    match_incremental(profile_ids=[a.pk, b.pk])
    candidate = MatchCandidate.objects.get()

    marketing = api_as("Marketing")
    listed = marketing.get("/api/v1/match-candidates/").json()
    assert [item["id"] for item in listed["results"]] == [candidate.pk]
    assert listed["results"][0]["profile_a"]["traits"]["first_name"] != "Anna"  # masked for Marketing
    assert listed["results"][0]["evidence"]["fields"]["last_name"]["level"] == "exact"
    assert marketing.post(f"/api/v1/match-candidates/{candidate.pk}/decide/", {"decision": "merge"},
                          format="json").status_code == 403

    admin = api_as("Admin")
    response = admin.post(f"/api/v1/match-candidates/{candidate.pk}/decide/", {"decision": "perhaps"}, format="json")
    assert response.status_code == 400 and "decision" in response.json()["error"]["fields"]
    response = admin.post(f"/api/v1/match-candidates/{candidate.pk}/decide/", {"decision": "dismiss"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "dismissed"
    response = admin.post(f"/api/v1/match-candidates/{candidate.pk}/decide/", {"decision": "merge"}, format="json")
    assert response.status_code == 409
    assert admin.get("/api/v1/match-candidates/").json()["results"] == []
    assert len(admin.get("/api/v1/match-candidates/?status=dismissed").json()["results"]) == 1


# --- UI -------------------------------------------------------------------------------------------------------


def test_review_page_shows_the_pair_masked_per_role_and_decides_with_htmx(client, make_user, rule):
    a = make_profile(("record", "crm:800"), ANNA_CRM)
    b = make_profile(("user_id", "u-800"), ANNA_SHOP)
    match_incremental(profile_ids=[a.pk, b.pk])
    candidate = MatchCandidate.objects.get()

    client.force_login(make_user("Marketing", username="m"))
    page = client.get(reverse("profiles:review")).content.decode()
    assert f"candidate-{candidate.pk}" in page and "Schmidt" not in page and "exact" in page
    assert "Never merge" not in page  # no permission to decide
    assert client.post(reverse("profiles:review-decide", args=[candidate.pk]), {"decision": "merge"}).status_code == 403

    client.force_login(make_user("Admin", username="a"))
    assert reverse("profiles:review") in client.get(reverse("profiles:list")).content.decode()
    page = client.get(reverse("profiles:review")).content.decode()
    assert "Schmidt" in page and "Never merge" in page and "<script>" not in page and "style=" not in page
    partial = client.get(reverse("profiles:review"), headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and f"candidate-{candidate.pk}" in partial

    response = client.post(reverse("profiles:review-decide", args=[candidate.pk]), {"decision": "never_merge"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.content == b""
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["reviewDecided"]["decision"] == "never_merge" and trigger["toast"]["level"] == "success"
    assert NeverMerge.objects.filter(profile_a=a, profile_b=b).exists()
    response = client.post(reverse("profiles:review-decide", args=[candidate.pk]), {"decision": "merge"},
                           headers={"HX-Request": "true"})
    assert response["HX-Reswap"] == "none" and json.loads(response["HX-Trigger"])["toast"]["level"] == "error"
    assert "Nothing to review" in client.get(reverse("profiles:review")).content.decode()
