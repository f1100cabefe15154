"""Declarative transformations: the pure normalizers, validation of step lists, and the service through the
pipeline."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from ingestion.models import InboxMessage
from ingestion.services import inbox_store, source_create
from ingestion.services.transforms import (
    GERMAN_PLZ_REGIONS,
    Invalid,
    TransformError,
    age_band,
    band_label,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    transformation_save,
    transforms_apply,
    transforms_preview,
    transforms_validate,
)
from profiles.models import Identity


class FakeSource:
    """A source as the pure parts of transforms_compile see it (slug and settings)."""

    def __init__(self, region=None):
        self.slug = "web"
        self.settings = {"default_region": region} if region else {}


def run(steps, message, region="DE"):
    return transforms_preview(source=FakeSource(region), steps=steps, message=message)


# --- normalizers -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("  Jan.Berg@Example.COM ", "jan.berg@example.com"),
    ("A@B.DE", "a@b.de"),
])
def test_email_is_lowercased_and_validated(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["nope", "a@", "@b.de", "a b@c.de", "a@b", "a@@b.de", "   "])
def test_a_bad_email_is_invalid(raw):
    with pytest.raises(Invalid):
        normalize_email(raw)


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("0170 1234567", "DE", "+491701234567"),
    ("+49 (0)30 901820", None, "+4930901820"),
    ("0049 30 901820", None, "+4930901820"),
    ("(202) 456-1111", "US", "+12024561111"),
    ("+44 20 7946 0958", "DE", "+442079460958"),
])
def test_phone_to_e164(raw, region, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(("raw", "region", "why"), [
    ("0170 1234567", None, "no default region"),
    ("12", "DE", "not a valid phone number"),
    ("call me", "DE", "not a phone number"),
    ("+49 123", None, "not a valid"),
])
def test_a_bad_phone_is_invalid(raw, region, why):
    with pytest.raises(Invalid, match=why):
        normalize_phone(raw, region)


@pytest.mark.parametrize(("raw", "expected"), [
    ("  jan  ", "Jan"),
    ("JAN VAN DER BERG", "Jan van der Berg"),
    ("jan VAN DER berg", "Jan van der Berg"),
    ("van der berg", "van der Berg"),
    ("mcdonald", "McDonald"),
    ("McDonald", "McDonald"),
    ("DeSantis", "DeSantis"),
    ("anna-lena müller-lüdenscheidt", "Anna-Lena Müller-Lüdenscheidt"),
    ("o'brien", "O'Brien"),
    ("ludwig von   beethoven", "Ludwig von Beethoven"),
    ("van", "Van"),
])
def test_names(raw, expected):
    assert normalize_name(raw) == expected


def test_a_name_with_digits_is_invalid():
    with pytest.raises(Invalid):
        normalize_name("R2D2")


@pytest.mark.parametrize(("raw", "expected"), [
    ("Germany", "DE"), ("deutschland", "DE"), ("DEU", "DE"), ("de", "DE"), ("276", "DE"), ("Allemagne", "DE"),
    ("Österreich", "AT"), ("Austria", "AT"), ("United Kingdom", "GB"),
    ("UK", "GB"), ("USA", "US"), ("United States", "US"), ("the Netherlands", "NL"), ("Türkei", "TR"),
    ("Turkey", "TR"), ("Schweiz", "CH"), ("España", "ES"), ("espana", "ES"),
])
def test_countries_to_alpha_2(raw, expected):
    assert normalize_country(raw) == expected


@pytest.mark.parametrize("raw", ["Narnia", "XX", "", "999"])
def test_an_unknown_country_is_invalid(raw):
    with pytest.raises(Invalid):
        normalize_country(raw)


def test_age_bands():
    today = date(2024, 6, 15)
    bounds = [18, 25, 35, 45, 55, 65]
    assert age_band(date(2010, 1, 1), today, bounds) == "<18"
    assert age_band(date(2006, 6, 15), today, bounds) == "18-24"  # 18 today
    assert age_band(date(2006, 6, 16), today, bounds) == "<18"  # 18 tomorrow
    assert age_band(date(1980, 1, 1), today, bounds) == "35-44"
    assert age_band(date(1950, 1, 1), today, bounds) == "65+"
    with pytest.raises(Invalid, match="future"):
        age_band(date(2030, 1, 1), today, bounds)
    with pytest.raises(Invalid, match="130"):
        age_band(date(1850, 1, 1), today, bounds)


def test_band_labels():
    assert band_label(100, [20000, 40000], None, integer=True) == "<20000"
    assert band_label(20000, [20000, 40000], None, integer=True) == "20000-39999"
    assert band_label(40000, [20000, 40000], None, integer=True) == "40000+"
    assert band_label(1.5, [1, 2.5], ["low", "mid", "high"]) == "mid"


# --- steps on messages -----------------------------------------------------------------------------------------

STEPS = [
    {"op": "trim", "fields": ["traits.*"], "collapse": True},
    {"op": "email", "fields": ["traits.email"]},
    {"op": "phone", "fields": ["traits.phone"]},
    {"op": "name", "fields": ["traits.first_name", "traits.last_name"]},
    {"op": "country", "fields": ["traits.country"]},
    {"op": "age_band", "field": "traits.birthday", "to": "traits.age_band"},
    {"op": "postcode_region", "field": "traits.postcode", "to": "traits.region", "replace": True},
    {"op": "band", "field": "traits.income", "to": "traits.income_band", "bounds": [20000, 40000, 60000]},
    {"op": "derive", "to": "traits.full_name", "fn": "concat", "args": ["traits.first_name", "traits.last_name"]},
    {"op": "derive", "to": "traits.email_domain", "fn": "email_domain", "args": ["traits.email"]},
]


def test_a_full_identify_message():
    born = (timezone.now().date() - timedelta(days=365 * 40 + 30)).isoformat()
    message = {"type": "identify", "userId": "u1", "traits": {
        "email": "  Jan@Example.COM ", "phone": "0170 1234567", "first_name": " jan ", "last_name": "VAN DER  berg",
        "country": "Deutschland", "birthday": born, "postcode": "50667", "income": 45000, "plan": "  gold  "}}
    out = run(STEPS, message)
    assert out["traits"] == {
        "email": "jan@example.com", "phone": "+491701234567", "first_name": "Jan", "last_name": "van der Berg",
        "country": "DE", "birthday": born, "region": GERMAN_PLZ_REGIONS["5"], "income": 45000,
        "age_band": "35-44", "income_band": "40000-59999", "full_name": "Jan van der Berg",
        "email_domain": "example.com", "plan": "gold"}
    assert "cdp" not in out.get("context", {})
    assert message["traits"]["email"] == "  Jan@Example.COM "  # the given message is not changed


def test_failing_values_are_kept_raw_and_flagged_never_dropped():
    message = {"type": "track", "event": "Signed Up", "userId": "u1", "context": {"traits": {
        "email": "nope@", "phone": "12", "country": "Narnia", "birthday": "31.02.2000", "postcode": "ABC",
        "income": "lots", "first_name": "R2D2"}}}
    out = run(STEPS, message)
    traits = out["context"]["traits"]
    for key in ("email", "phone", "country", "birthday", "postcode", "income", "first_name"):
        assert traits[key] == message["context"]["traits"][key]
    assert set(out["context"]["cdp"]["invalid"]) == {
        "traits.email", "traits.phone", "traits.country", "traits.birthday", "traits.postcode", "traits.income",
        "traits.first_name"}
    reasons = out["context"]["cdp"]["invalid_reasons"]
    assert "31.02.2000" not in reasons["traits.birthday"]  # reasons never carry the value
    assert "lots" not in reasons["traits.income"]
    assert "age_band" not in traits and "region" not in traits and "income_band" not in traits


def test_the_default_region_comes_from_the_source_and_a_step_can_override_it():
    message = {"type": "identify", "userId": "u", "traits": {"phone": "(202) 456-1111"}}
    assert run([{"op": "phone", "fields": ["traits.phone"]}], message, region="US")["traits"]["phone"] == \
        "+12024561111"
    out = run([{"op": "phone", "fields": ["traits.phone"]}], message, region=None)
    assert out["context"]["cdp"]["invalid"] == ["traits.phone"]
    step = {"op": "phone", "fields": ["traits.phone"], "region": "us"}
    assert run([step], message, region="DE")["traits"]["phone"] == "+12024561111"


def test_map_moves_fields_with_coercion_and_flags_a_bad_value():
    steps = [{"op": "map", "move": True, "fields": [
        {"from": "properties.mail", "to": "traits.email"},
        {"from": "properties.qty", "to": "properties.quantity", "type": "integer"},
        {"from": "properties.crm_id", "to": "externalId"},
        {"from": "properties.when", "to": "properties.ordered_at", "type": "datetime"},
    ]}]
    message = {"type": "track", "event": "Order", "anonymousId": "a", "properties": {
        "mail": "x@example.com", "qty": "3", "crm_id": 77, "when": "soon"}}
    out = run(steps, message)
    assert out["context"]["traits"] == {"email": "x@example.com"}
    assert out["properties"] == {"quantity": 3, "when": "soon"}
    assert out["context"]["externalIds"] == [{"id": "77", "type": "web", "collection": "", "encoding": "none"}]
    assert out["context"]["cdp"]["invalid"] == ["properties.when"]


def test_steps_can_be_limited_to_types_and_events():
    steps = [{"op": "derive", "to": "properties.channel", "fn": "constant", "value": "shop", "events": ["Order"]}]
    assert run(steps, {"type": "track", "event": "Order", "userId": "u"})["properties"] == {"channel": "shop"}
    assert "properties" not in run(steps, {"type": "track", "event": "Viewed", "userId": "u"})
    steps = [{"op": "email", "fields": ["traits.email"], "types": ["identify"]}]
    assert run(steps, {"type": "track", "event": "x", "userId": "u",
                       "context": {"traits": {"email": "A@B.DE"}}})["context"]["traits"]["email"] == "A@B.DE"


def test_derive_vocabulary():
    message = {"type": "identify", "userId": "u", "traits": {"first": "Ada", "nick": "", "alt": "Countess",
                                                             "born": "1815-12-10", "full_name": "kept"}}
    steps = [
        {"op": "derive", "to": "traits.full_name", "fn": "concat", "args": ["traits.first", "traits.last"]},
        {"op": "derive", "to": "traits.display", "fn": "coalesce", "args": ["traits.nick", "traits.alt"]},
        {"op": "derive", "to": "traits.shout", "fn": "upper", "args": ["traits.first"]},
        {"op": "derive", "to": "traits.birth_year", "fn": "year", "args": ["traits.born"]},
        {"op": "derive", "to": "traits.copy", "fn": "copy", "args": ["traits.first"]},
        {"op": "derive", "to": "traits.label", "fn": "concat", "args": ["traits.first", "traits.alt"], "sep": ", ",
         "overwrite": True},
        {"op": "derive", "to": "traits.domain", "fn": "email_domain", "args": ["traits.missing"]},
    ]
    traits = run(steps, message)["traits"]
    assert traits["full_name"] == "kept"  # does not overwrite unless asked
    assert traits["display"] == "Countess"
    assert traits["shout"] == "ADA"
    assert traits["birth_year"] == 1815
    assert traits["copy"] == "Ada"
    assert traits["label"] == "Ada, Countess"
    assert "domain" not in traits


def test_a_custom_postcode_table_uses_the_longest_prefix():
    step = {"op": "postcode_region", "field": "traits.zip", "to": "traits.area",
            "table": {"1": "One", "10": "Ten"}}
    assert run([step], {"type": "identify", "userId": "u", "traits": {"zip": "1011"}})["traits"]["area"] == "Ten"
    assert run([step], {"type": "identify", "userId": "u", "traits": {"zip": "12"}})["traits"]["area"] == "One"
    out = run([step], {"type": "identify", "userId": "u", "traits": {"zip": "99"}})
    assert out["context"]["cdp"]["invalid"] == ["traits.zip"]


# --- validation ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("steps", "field", "words"), [
    ({"op": "trim"}, "steps", "list"),
    (["trim"], "steps.0", "object"),
    ([{"op": "explode"}], "steps.0.op", "unknown op"),
    ([{"op": "trim", "fields": []}], "steps.0.fields", "list of paths"),
    ([{"op": "email", "fields": ["profile.email"]}], "steps.0.fields.0", "unknown target"),
    ([{"op": "email", "fields": ["traits.email"], "region": "DE"}], "steps.0.region", "unknown key"),
    ([{"op": "phone", "fields": ["traits.phone"], "region": "Atlantis"}], "steps.0.region", "alpha-2"),
    ([{"op": "band", "field": "traits.income", "to": "traits.band"}], "steps.0.bounds", "numbers"),
    ([{"op": "band", "field": "traits.income", "to": "traits.band", "bounds": [3, 2]}], "steps.0.bounds",
     "increase"),
    ([{"op": "band", "field": "traits.income", "to": "traits.band", "bounds": [1], "labels": ["a"]}],
     "steps.0.labels", "2 labels"),
    ([{"op": "age_band", "field": "traits.birthday", "to": "userId"}], "steps.0.to", "traits, properties"),
    ([{"op": "postcode_region", "field": "traits.zip", "to": "traits.r", "table": {"1": 5}}], "steps.0.table",
     "prefix"),
    ([{"op": "derive", "to": "traits.x", "fn": "eval", "args": ["traits.a"]}], "steps.0.fn", "unknown function"),
    ([{"op": "derive", "to": "traits.x", "fn": "lower", "args": ["traits.a", "traits.b"]}], "steps.0.args",
     "takes 1"),
    ([{"op": "derive", "to": "traits.x", "fn": "constant"}], "steps.0.value", "value"),
    ([{"op": "map", "fields": [{"from": "properties.a", "to": "nowhere"}]}], "steps.0.fields.0.to",
     "unknown target"),
    ([{"op": "map", "fields": [{"from": "properties.a", "to": "traits.a", "type": "money"}]}],
     "steps.0.fields.0.type", "unknown type"),
    ([{"op": "trim", "fields": ["traits.a"], "types": ["purchase"]}], "steps.0.types", "message types"),
])
def test_a_wrong_step_list_names_the_place(steps, field, words):
    with pytest.raises(TransformError) as error:
        transforms_validate(steps)
    assert error.value.field == field
    assert words in error.value.message


# --- the service, through the pipeline --------------------------------------------------------------------------

@pytest.fixture
def web(db):
    source, _ = source_create(name="Web", kind="http", settings={"default_region": "DE"})
    return source


def test_without_transformations_messages_are_unchanged(web):
    messages = [{"type": "identify", "userId": "u", "traits": {"email": " X@Y.DE "}}]
    assert transforms_apply(source=web, messages=messages) is messages


def test_a_saved_transformation_applies_and_can_be_disabled(web):
    transformation_save(source=web, steps=[{"op": "email", "fields": ["traits.email"]}])
    message = {"type": "identify", "userId": "u", "traits": {"email": " X@Y.DE "}}
    assert transforms_apply(source=web, messages=[message])[0]["traits"]["email"] == "x@y.de"
    transformation_save(source=web, steps=[{"op": "email", "fields": ["traits.email"]}], enabled=False)
    assert transforms_apply(source=web, messages=[message])[0]["traits"]["email"] == " X@Y.DE "


def test_saving_a_wrong_step_list_keeps_the_old_one(web):
    transformation_save(source=web, steps=[{"op": "email", "fields": ["traits.email"]}])
    with pytest.raises(TransformError):
        transformation_save(source=web, steps=[{"op": "email"}])
    assert web.transformation.steps == [{"op": "email", "fields": ["traits.email"]}]


def test_the_pipeline_stores_normalized_identities_and_never_identifies_by_an_invalid_value(
        web, django_capture_on_commit_callbacks):
    transformation_save(source=web, steps=[{"op": "email", "fields": ["traits.email"]},
                                           {"op": "phone", "fields": ["traits.phone"]}])
    with django_capture_on_commit_callbacks(execute=True):
        inbox_store(source=web, messages=[
            {"type": "identify", "userId": "u1", "traits": {"email": " Ada@Example.COM", "phone": "0170 1234567"}},
            {"type": "identify", "userId": "u2", "traits": {"email": "broken@", "phone": "nope"}},
        ])
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}
    assert Identity.objects.filter(type="email", value="ada@example.com").exists()
    assert Identity.objects.filter(type="phone", value="+491701234567").exists()
    # Kept raw and flagged (issue 4), never used to resolve or merge.
    assert not Identity.objects.filter(value__icontains="broken", flagged=False).exists()
    broken = Identity.objects.get(type="email", value="broken@")
    assert broken.flagged and broken.profile == Identity.objects.get(type="user_id", value="u2").profile


# --- the plain-address shortcut agrees with email-validator ------------------------------------------------------

from email_validator import EmailNotValidError, validate_email  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ingestion.services.transforms import _plain_email  # noqa: E402

local_parts = st.text(alphabet="abz09._%+-!'\"é ", min_size=0, max_size=70)
domains = st.one_of(
    st.text(alphabet="abz09.-é_", min_size=0, max_size=30),
    st.sampled_from(["example.com", "a.b.co", "mail.test", "x.local", "localhost", "ab--cd.de", "1.2.3.4",
                     "a.123", "-a.de", "a-.de", "a..de", "xn--bcher-kva.de", "a." + "b" * 64 + ".de",
                     "sub.example.arpa", "example.onion", "b" * 250 + ".de"]))


@settings(max_examples=600, deadline=None)
@given(local=local_parts, domain=domains)
def test_the_plain_email_shortcut_accepts_only_what_email_validator_accepts_unchanged(local, domain):
    address = f"{local}@{domain}"
    if not _plain_email(address):
        return
    try:
        normalized = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise AssertionError(f"{address!r} passed the shortcut but email-validator says: {error}") from None
    assert normalized == address


@pytest.mark.parametrize("address", ["jan.berg@example.com", "a+tag@sub.example.co", "x_y%z@a-b.de"])
def test_common_addresses_take_the_shortcut(address):
    assert _plain_email(address)


# --- API and UI ------------------------------------------------------------------------------------------------

def test_api_transformations_crud_and_preview(web, api_as):
    admin = api_as("Admin")
    response = admin.post("/api/v1/transformations/", {"source": "web", "steps": [{"op": "explode"}]}, format="json")
    assert response.status_code == 400
    assert "steps.0.op" in response.json()["error"]["fields"]
    response = admin.post("/api/v1/transformations/", {"source": "web", "steps": [
        {"op": "email", "fields": ["traits.email"]}]}, format="json")
    assert response.status_code == 201, response.json()
    row_id = response.json()["id"]
    response = admin.patch(f"/api/v1/transformations/{row_id}/", {"enabled": False}, format="json")
    assert (response.json()["enabled"], response.json()["version"]) == (False, 2)

    marketing = api_as("Marketing")
    preview = marketing.post("/api/v1/transformations/preview/", {
        "source": "web", "message": {"type": "identify", "userId": "u", "traits": {"email": " A@B.DE"}}},
        format="json")
    assert preview.status_code == 200
    assert preview.json()["message"]["traits"]["email"] == "a@b.de"  # the saved steps
    preview = marketing.post("/api/v1/transformations/preview/", {
        "source": "web", "steps": [{"op": "phone", "fields": ["traits.phone"]}],
        "message": {"type": "identify", "userId": "u", "traits": {"phone": "0170 1234567"}}}, format="json")
    assert preview.json()["message"]["traits"]["phone"] == "+491701234567"
    assert marketing.patch(f"/api/v1/transformations/{row_id}/", {"enabled": True},
                           format="json").status_code == 403


def test_ui_transformation_editor_and_live_preview(web, client, make_user):
    client.force_login(make_user("Admin"))
    page = client.get("/sources/web/transformations/")
    assert page.status_code == 200
    assert b"An example message, not real data." in page.content

    response = client.post("/sources/web/transformations/", {"steps": '[{"op": "band", "field": "traits.income", '
                                                                      '"to": "traits.band", "bounds": [3, 1]}]',
                                                            "enabled": "on"}, HTTP_HX_REQUEST="true")
    assert b"Step 1, bounds: the bounds must increase" in response.content
    response = client.post("/sources/web/transformations/", {"steps": '[{"op": "name", "fields": '
                                                                      '["traits.last_name"]}]',
                                                            "enabled": "on"}, HTTP_HX_REQUEST="true")
    assert "toast" in response.headers["HX-Trigger"]
    assert web.transformation.steps == [{"op": "name", "fields": ["traits.last_name"]}]

    preview = client.post("/sources/web/transformations/preview/", {
        "steps": '[{"op": "email", "fields": ["traits.email"]}]',
        "message": '{"type": "identify", "userId": "u", "traits": {"email": "nope@"}}'}, HTTP_HX_REQUEST="true")
    assert b"Kept as they came, and flagged" in preview.content
    assert b"traits.email" in preview.content
    preview = client.post("/sources/web/transformations/preview/", {
        "steps": "[]", "message": "[1, 2]"}, HTTP_HX_REQUEST="true")
    assert b"A message is a JSON object" in preview.content
