"""Consent from imported files and connectors: a column mapped to "consent: <purpose>" (issue 7, item 1).

The decisions travel as the tracking API's context.consent and are recorded by the same consent service (changed
decisions only), with the source, the proof (import, file, row, the mapping's text version and form URL) and the
consent time. A bad value is a line in the error report while the row's other fields are kept; an unknown purpose
is refused where the mapping is set; an erased person's rows stay dropped.
"""

import csv
import json
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentRecord, SuppressionHit
from consent.selectors import consent_state
from consent.services import purposes_install, request_complete, request_create
from ingestion.mapping import MappingError, mapping_apply
from ingestion.models import Import
from ingestion.services import connectors, imports, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.models import Identity, Profile
from tests.ingestion.test_database_source import source_db  # noqa: F401 - the source database fixture

CONSENT_MAPPING = {"type": "identify", "event": None, "event_from": None,
                   "consent_proof": {"text_version": "nl-2025-01", "form_url": "https://shop.example/newsletter"},
                   "fields": [
                       {"from": "customer_id", "to": "externalId", "type": "string"},
                       {"from": "email", "to": "traits.email", "type": "string"},
                       {"from": "newsletter", "to": "consent.email_marketing"},
                       {"from": "tracking", "to": "consent.analytics"},
                       {"from": "consent_at", "to": "consentTimestamp", "type": "datetime"},
                   ]}
FILE = ("customer_id,email,newsletter,tracking,consent_at\n"
        "c-1,ann@example.com,yes,n,2025-03-01T10:00:00Z\n"
        "c-2,bob@example.com,Nein,,\n"
        "c-3,cy@example.com,,,\n")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def purposes(db):
    return {purpose.key: purpose for purpose in purposes_install()}


@pytest.fixture
def crm(purposes):
    source, _ = source_create(name="CRM export", kind="file", slug="crm")
    return source


def upload(source, content, name="customers.csv") -> Import:
    return imports.import_create(source=source, upload=SimpleUploadedFile(name, content.encode("utf-8")))


def run(imp, mapping=CONSENT_MAPPING) -> Import:
    imports.import_configure(imp=imp, mapping=mapping)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    done = imports.import_run(import_id=imp.pk)
    inbox_process_pending()
    return done


def profile(email: str) -> Profile:
    return Identity.objects.get(type="email", value=email).profile


def records(email: str) -> list[ConsentRecord]:
    return list(ConsentRecord.objects.filter(profile=profile(email)).select_related("purpose")
                .order_by("recorded_at", "id"))


def report(imp) -> list[dict]:
    with open(imp.error_report.path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the values --------------------------------------------------------------------------------------------------

SPEC = {"type": "identify", "fields": [{"from": "id", "to": "userId"}, {"from": "v", "to": "consent.analytics"}]}


@pytest.mark.parametrize("value", ["granted", "GRANTED", "yes", "Yes", "true", "1", "y", "ja", "Opt-In", " opt-in ",
                                   True, 1])
def test_words_that_grant(value):
    message = mapping_apply(SPEC, {"id": "u", "v": value}, source_slug="crm")
    assert message["context"]["consent"] == {"categoryPreferences": {"analytics": True}}


@pytest.mark.parametrize("value", ["denied", "Withdrawn", "no", "FALSE", "0", "n", "nein", "opt-out", False, 0])
def test_words_that_refuse(value):
    message = mapping_apply(SPEC, {"id": "u", "v": value}, source_slug="crm")
    assert message["context"]["consent"] == {"categoryPreferences": {"analytics": False}}


@pytest.mark.parametrize("value", ["", "  ", None])
def test_an_empty_value_is_no_decision(value):
    assert "context" not in mapping_apply(SPEC, {"id": "u", "v": value}, source_slug="crm")


@pytest.mark.parametrize("value", ["maybe", "2", 2, "granted!", {"a": 1}])
def test_an_unreadable_value_is_a_problem_and_the_message_stays(value):
    problems: list[MappingError] = []
    message = mapping_apply(SPEC, {"id": "u", "v": value}, source_slug="crm", problems=problems)
    assert message == {"type": "identify", "userId": "u"}
    [problem] = problems
    assert problem.field == "v" and "not a consent decision" in problem.message
    with pytest.raises(MappingError):  # a caller that collects nothing is told at once
        mapping_apply(SPEC, {"id": "u", "v": value}, source_slug="crm")


# --- a CSV import --------------------------------------------------------------------------------------------------

def test_a_csv_consent_column_records_decisions_with_source_proof_and_time(crm):
    before = timezone.now()
    imp = upload(crm, FILE)
    done = run(imp)
    assert (done.status, done.rows_stored, done.rows_failed, done.rows_partial) == ("done", 3, 0, 0)
    assert not done.error_report

    ann_marketing, ann_analytics = sorted(records("ann@example.com"), key=lambda r: r.purpose.key, reverse=True)
    assert (ann_marketing.purpose.key, ann_marketing.status) == ("email_marketing", "granted")
    assert (ann_analytics.purpose.key, ann_analytics.status) == ("analytics", "denied")
    assert ann_marketing.source == "crm"
    assert ann_marketing.recorded_at == datetime(2025, 3, 1, 10, tzinfo=UTC)  # the consent-time column
    assert ann_marketing.proof == {
        "import": imp.pk, "file": "customers.csv", "row": 2, "text_version": "nl-2025-01",
        "form_url": "https://shop.example/newsletter", "messageId": f"import-{imp.pk}-2",
        "categoryPreferences": {"email_marketing": True, "analytics": False}}

    [bob] = records("bob@example.com")
    assert (bob.purpose.key, bob.status, bob.proof["row"]) == ("email_marketing", "denied", 3)
    assert before <= bob.recorded_at <= timezone.now()  # no consent time: the import's time
    assert records("cy@example.com") == []  # empty cells: no decision

    # The current state is derived from the records.
    assert consent_state(profile=profile("ann@example.com")) == {"email_marketing": "granted", "analytics": "denied"}
    assert consent_state(profile=profile("bob@example.com")) == {"email_marketing": "denied"}
    # The other fields came in as always.
    assert profile("ann@example.com").traits["email"] == "ann@example.com"


def test_a_re_import_records_only_changed_decisions(crm):
    run(upload(crm, FILE))
    assert ConsentRecord.objects.count() == 3

    run(upload(crm, FILE, name="again.csv"))  # the same decisions again: nothing new
    assert ConsentRecord.objects.count() == 3

    changed = ("customer_id,email,newsletter,tracking,consent_at\n"
               "c-1,ann@example.com,opt-out,no,\n"  # withdraws the grant; the denial stays a denial
               "c-2,bob@example.com,Opt-In,,\n"
               "c-3,cy@example.com,withdrawn,,\n")  # no grant to withdraw: a denial
    imp = upload(crm, changed, name="changed.csv")
    run(imp)
    assert [(r.purpose.key, r.status) for r in records("ann@example.com")][-1] == ("email_marketing", "withdrawn")
    assert consent_state(profile=profile("ann@example.com")) == {"email_marketing": "withdrawn",
                                                                 "analytics": "denied"}
    assert consent_state(profile=profile("bob@example.com")) == {"email_marketing": "granted"}
    assert consent_state(profile=profile("cy@example.com")) == {"email_marketing": "denied"}
    assert ConsentRecord.objects.count() == 6
    assert {r.proof["file"] for r in ConsentRecord.objects.filter(proof__import=imp.pk)} == {"changed.csv"}


def test_a_bad_consent_value_is_reported_and_the_rows_other_fields_are_kept(crm):
    content = ("customer_id,email,newsletter,tracking,consent_at\n"
               "c-1,ann@example.com,maybe,yes,\n"
               "c-2,bob@example.com,yes,,31.02.2025\n"
               ",cy@example.com,yes,,\n")  # no identity at all: the row fails as before
    imp = upload(crm, content)
    done = run(imp)
    assert (done.rows_read, done.rows_stored, done.rows_failed, done.rows_partial) == (3, 2, 1, 2)
    lines = report(done)
    assert [(line["row"], line["column"]) for line in lines] == [
        ("2", "newsletter"), ("3", "consent_at"), ("4", "customer_id")]
    assert "not a consent decision: 'maybe'" in lines[0]["message"]
    assert "the row's other fields were kept" in lines[0]["message"]
    assert "ann@example.com" in lines[0]["raw"]
    assert "the decisions take the row's time" in lines[1]["message"]

    # Ann: her other decision and her traits were imported; the unreadable one was not guessed at.
    assert consent_state(profile=profile("ann@example.com")) == {"analytics": "granted"}
    # Bob: the decision is kept, at the import's time instead of the unreadable consent time.
    [bob] = records("bob@example.com")
    assert bob.status == "granted" and bob.recorded_at.date() == timezone.now().date()


def test_a_consent_time_in_the_future_is_not_taken(crm):
    content = "customer_id,email,newsletter,tracking,consent_at\nc-1,ann@example.com,yes,,2999-01-01T00:00:00Z\n"
    done = run(upload(crm, content))
    assert done.rows_partial == 1 and "in the future" in report(done)[0]["message"]
    assert records("ann@example.com")[0].recorded_at <= timezone.now()


def test_an_erased_persons_rows_stay_dropped(crm):
    run(upload(crm, FILE))
    request_complete(request=request_create(kind="erasure", identifier_type="email", identifier="ann@example.com",
                                            verification_note="ID card seen"))
    records_before = ConsentRecord.objects.count()

    run(upload(crm, FILE, name="again.csv"))

    assert not Identity.objects.filter(value="ann@example.com").exists()
    assert not Identity.objects.filter(value="crm:c-1").exists()
    assert ConsentRecord.objects.count() == records_before  # nothing for Ann, nothing new for the others
    assert SuppressionHit.objects.get(source="crm").count == 1


# --- refusing an unknown purpose ------------------------------------------------------------------------------------

def unknown_purpose_mapping():
    mapping = json.loads(json.dumps(CONSENT_MAPPING))
    mapping["fields"][2]["to"] = "consent.newsletter"
    return mapping


def test_an_unknown_purpose_is_refused_by_the_service_and_the_import_is_unchanged(crm):
    imp = upload(crm, FILE)
    with pytest.raises(imports.ImportProblem) as refused:
        imports.import_configure(imp=imp, mapping=unknown_purpose_mapping())
    [message] = refused.value.fields["mapping.fields.2.to"]
    assert "unknown consent purpose 'newsletter'" in message and "email_marketing" in message
    imp.refresh_from_db()
    assert imp.status == "uploaded"


def test_an_unknown_purpose_is_a_400_naming_the_field_in_the_api(api_as, crm):
    api = api_as("Admin")
    imp = upload(crm, FILE)
    response = api.put(f"/api/v1/imports/{imp.pk}/mapping/", {"mapping": unknown_purpose_mapping()}, format="json")
    assert response.status_code == 400
    assert "unknown consent purpose 'newsletter'" in response.json()["error"]["fields"]["mapping.fields.2.to"][0]

    bad_proof = dict(CONSENT_MAPPING, consent_proof={"form_url": "javascript:alert(1)"})
    response = api.put(f"/api/v1/imports/{imp.pk}/mapping/", {"mapping": bad_proof}, format="json")
    assert response.status_code == 400 and "mapping.consent_proof.form_url" in response.json()["error"]["fields"]

    response = api.put(f"/api/v1/imports/{imp.pk}/mapping/", {"mapping": CONSENT_MAPPING}, format="json")
    assert response.status_code == 200 and response.json()["mapping"] == CONSENT_MAPPING
    preview = api.get(f"/api/v1/imports/{imp.pk}/preview/").json()
    assert preview["rows"][0]["message"]["context"]["consent"]["categoryPreferences"] == {
        "email_marketing": True, "analytics": False}


def test_mapping_checks_of_consent_targets(crm):
    imp = upload(crm, FILE)
    base = json.loads(json.dumps(CONSENT_MAPPING))

    def refused(change) -> dict:
        mapping = json.loads(json.dumps(base))
        change(mapping)
        with pytest.raises(imports.ImportProblem) as error:
            imports.import_configure(imp=imp, mapping=mapping)
        return error.value.fields

    assert "mapping.fields.2.type" in refused(lambda m: m["fields"][2].update(type="integer"))
    assert "mapping.fields.2.to" in refused(lambda m: m["fields"][2].update(to="consent."))
    assert "mapping.fields.4.type" in refused(lambda m: m["fields"][4].update(type="string"))

    def no_decisions(m):
        del m["fields"][2:4]
    assert "mapping.fields.2.to" in refused(no_decisions)  # a consent time without decisions
    assert "mapping.consent_proof.signed" in refused(lambda m: m["consent_proof"].update(signed="x"))


# --- JSON Lines -------------------------------------------------------------------------------------------------

def test_a_jsonl_import_reads_decisions_from_nested_fields(crm):
    lines = [{"id": "j-1", "email": "jo@example.com", "consent": {"marketing": True, "analytics": "no"},
              "consented": "2025-04-01T08:00:00+02:00"},
             {"id": "j-2", "email": "kim@example.com", "consent": {"marketing": "sometimes"}}]
    imp = upload(crm, "\n".join(json.dumps(line) for line in lines) + "\n", name="people.jsonl")
    mapping = {"type": "identify", "event": None, "event_from": None, "fields": [
        {"from": "id", "to": "externalId", "type": "string"},
        {"from": "email", "to": "traits.email", "type": "string"},
        {"from": "consent.marketing", "to": "consent.email_marketing"},
        {"from": "consent.analytics", "to": "consent.analytics"},
        {"from": "consented", "to": "consentTimestamp"},
    ]}
    done = run(imp, mapping)
    assert (done.rows_stored, done.rows_failed, done.rows_partial) == (2, 0, 1)
    assert consent_state(profile=profile("jo@example.com")) == {"email_marketing": "granted",
                                                                "analytics": "denied"}
    jo = records("jo@example.com")[0]
    assert jo.recorded_at == datetime(2025, 4, 1, 6, tzinfo=UTC)
    assert (jo.proof["file"], jo.proof["row"], jo.source) == ("people.jsonl", 1, "crm")
    assert "text_version" not in jo.proof
    [line] = report(done)
    assert (line["row"], line["column"]) == ("2", "consent.marketing") and "'sometimes'" in line["message"]
    assert records("kim@example.com") == []
    assert profile("kim@example.com").traits["email"] == "kim@example.com"


# --- the suggestion and the UI ------------------------------------------------------------------------------------

def test_a_column_named_like_a_purpose_is_suggested_as_consent(crm):
    imp = upload(crm, "email,email_marketing_consent,analytics,consent_date\n"
                      "ann@example.com,yes,lots,2025-01-01\n")
    fields = {item["from"]: item for item in imp.mapping["fields"]}
    assert fields["email_marketing_consent"] == {"from": "email_marketing_consent", "to": "consent.email_marketing"}
    assert fields["analytics"]["to"] == "traits.analytics"  # "lots" is not a decision: a trait, as before
    assert fields["consent_date"]["to"] == "consentTimestamp"


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("Admin"))
    return client


def editor_form(mapping, **extra) -> dict:
    form = {"rows": str(len(mapping["fields"])), "message_type": mapping["type"], "event": "", "event_from": ""}
    for index, item in enumerate(mapping["fields"]):
        head, _, rest = item["to"].partition(".")
        plain = head in ("traits", "properties", "context")
        form.update({f"from_{index}": item["from"], f"to_{index}": head if plain else item["to"],
                     f"name_{index}": rest if plain else "", f"type_{index}": item.get("type", "")})
    return {**form, **extra}


def test_the_mapping_step_offers_the_purposes_and_saves_the_proof(admin_client, crm,
                                                                  django_capture_on_commit_callbacks):
    imp = upload(crm, FILE)
    url = reverse("ingestion:import-mapping", args=["crm", imp.pk])
    page = admin_client.get(reverse("ingestion:import-detail", args=["crm", imp.pk])).content.decode()
    assert '<option value="consent.email_marketing">consent: Email marketing</option>' in page
    assert '<option value="consentTimestamp">consent time</option>' in page

    form = editor_form(CONSENT_MAPPING, consent_text_version="nl-2025-01",
                       consent_form_url="https://shop.example/newsletter")
    partial = admin_client.post(url, form, HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert partial.status_code == 200 and "Proof of the consent decisions" in html
    assert 'value="consent.email_marketing" selected' in html
    assert "&quot;categoryPreferences&quot;" in html and "nl-2025-01" in html

    # A column switched from a trait to consent drops the trait's name and type (decisions are read as words).
    switched = admin_client.post(url, dict(form, name_2="newsletter", type_2="string"), HTTP_HX_REQUEST="true")
    html = switched.content.decode()
    assert "leave the type empty" not in html and "&quot;email_marketing&quot;: true" in html

    unknown = dict(form, to_2="consent.newsletter")
    response = admin_client.post(url, dict(unknown, action="save"))
    html = response.content.decode()
    assert response.status_code == 400
    assert "consent: newsletter (no such purpose)" in html
    assert "unknown consent purpose &#x27;newsletter&#x27;" in html
    imp.refresh_from_db()
    assert imp.status == "uploaded"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, dict(form, action="start"))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.mapping["consent_proof"] == {"text_version": "nl-2025-01",
                                            "form_url": "https://shop.example/newsletter"}
    assert imp.status == "done"
    inbox_process_pending()
    assert consent_state(profile=profile("ann@example.com"))["email_marketing"] == "granted"


def test_the_result_page_names_rows_stored_without_their_consent_value(admin_client, crm):
    done = run(upload(crm, "customer_id,email,newsletter,tracking,consent_at\nc-1,ann@example.com,maybe,,\n"))
    page = admin_client.get(reverse("ingestion:import-detail", args=["crm", done.pk])).content.decode()
    assert "1 row was stored without a value that could not be read" in page
    assert "not a consent decision: &#x27;maybe&#x27;" in page


# --- connectors that share the mapping ----------------------------------------------------------------------------

WEBHOOK_MAPPING = {"type": "identify", "event": None, "event_from": None,
                   "consent_proof": {"text_version": "app-3"},
                   "fields": [{"from": "customer.email", "to": "userId", "type": "string"},
                              {"from": "customer.newsletter", "to": "consent.email_marketing"}]}


@pytest.fixture
def hook(purposes):
    source, key = source_create(name="Shop webhooks", kind="webhook", slug="shop-hooks")
    connectors.webhook_settings_save(source=source, mapping=WEBHOOK_MAPPING)
    return source, key


def test_a_webhook_field_mapped_to_consent(client, hook):
    source, key = hook
    url = f"/v1/webhook/shop-hooks?key={key}"
    body = [{"customer": {"email": "ann@example.com", "newsletter": "ja"}},
            {"customer": {"email": "bob@example.com", "newsletter": "vielleicht"}}]
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    answer = response.json()
    assert answer["stored"] == 2
    assert "not a consent decision: 'vielleicht'" in answer["warnings"]["1.customer.newsletter"][0]
    inbox_process_pending()

    [record] = ConsentRecord.objects.all()
    assert (record.status, record.source, record.profile.identities.get(type="user_id").value) == (
        "granted", "shop-hooks", "ann@example.com")
    assert record.proof["text_version"] == "app-3" and record.proof["messageId"].startswith("wh-")
    assert Identity.objects.filter(type="user_id", value="bob@example.com").exists()  # stored all the same


def test_the_webhook_settings_refuse_an_unknown_purpose(hook):
    source, _ = hook
    mapping = json.loads(json.dumps(WEBHOOK_MAPPING))
    mapping["fields"][1]["to"] = "consent.nope"
    with pytest.raises(connectors.ConnectorError) as refused:
        connectors.webhook_settings_save(source=source, mapping=mapping)
    assert "unknown consent purpose 'nope'" in refused.value.fields["mapping.fields.1.to"][0]


def test_a_database_pull_maps_a_consent_column(request, purposes):
    url, connection = request.getfixturevalue("source_db")  # a real second PostgreSQL database
    connection.execute("ALTER TABLE customers ADD COLUMN newsletter text")
    connection.execute("INSERT INTO customers (email, name, visits, newsletter) VALUES "
                       "('ann@example.com', 'Ann', '1', 'opt-in'), ('bob@example.com', 'Bob', '2', 'perhaps')")
    source, _ = source_create(name="CRM database", kind="database", slug="crm-db")
    mapping = {"type": "identify", "event": None, "event_from": None, "fields": [
        {"from": "id", "to": "externalId", "type": "string"},
        {"from": "email", "to": "traits.email", "type": "string"},
        {"from": "newsletter", "to": "consent.email_marketing"}]}
    connectors.database_settings_save(source=source, url=url, table="customers", cursor_column="updated_at",
                                      mapping=mapping)
    run_ = connectors.database_pull(source_id=source.pk)
    inbox_process_pending()
    assert (run_.rows_stored, run_.rows_failed, run_.rows_partial) == (2, 0, 1)
    [record] = ConsentRecord.objects.all()
    assert (record.status, record.source) == ("granted", "crm-db")
    assert record.proof["import"] == run_.pk and record.proof["table"] == "customers"
    assert profile("bob@example.com").traits["email"] == "bob@example.com"

