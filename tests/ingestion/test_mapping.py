"""ingestion.mapping: pure functions, so no database."""

import pytest

from ingestion.mapping import MappingError, coerce, get_path, mapping_apply, mapping_validate

CRM = {
    "type": "identify",
    "fields": [
        {"from": "id", "to": "externalId"},
        {"from": "mail", "to": "traits.email", "type": "string"},
        {"from": "age", "to": "traits.age", "type": "integer"},
        {"from": "vip", "to": "traits.vip", "type": "boolean"},
        {"from": "born", "to": "traits.birthday", "type": "date", "format": "%d.%m.%Y"},
        {"from": "changed", "to": "timestamp", "type": "datetime"},
        {"from": "address.city", "to": "traits.address.city"},
    ],
}


def test_a_crm_row_becomes_an_identify_message_with_a_record_key():
    row = {"id": 42, "mail": "a@example.com", "age": "41", "vip": "yes", "born": "01.02.1983",
           "changed": "2024-05-31T10:00:00Z", "address": {"city": "Köln"}}
    mapping_validate(CRM)
    message = mapping_apply(CRM, row, source_slug="crm", collection="contacts")
    assert message == {
        "type": "identify",
        "traits": {"email": "a@example.com", "age": 41, "vip": True, "birthday": "1983-02-01",
                   "address": {"city": "Köln"}},
        "timestamp": "2024-05-31T10:00:00Z",
        "context": {"externalIds": [{"id": "42", "type": "crm", "collection": "contacts", "encoding": "none"}]},
    }


def test_a_track_mapping_puts_traits_in_context_and_takes_the_event_from_a_field():
    spec = {"type": "track", "event_from": "kind", "fields": [
        {"from": "customer", "to": "userId"},
        {"from": "total", "to": "properties.total", "type": "float"},
        {"from": "email", "to": "traits.email"},
    ]}
    mapping_validate(spec)
    message = mapping_apply(spec, {"customer": 7, "kind": "Order Completed", "total": "19.90",
                                   "email": "x@example.com"}, source_slug="shop")
    assert message["event"] == "Order Completed"
    assert message["userId"] == "7"
    assert message["properties"] == {"total": 19.9}
    assert message["context"]["traits"] == {"email": "x@example.com"}
    assert "traits" not in message


def test_a_csv_header_with_dots_is_read_literally_before_as_a_path():
    assert get_path({"address.city": "Bonn", "address": {"city": "Köln"}}, "address.city") == "Bonn"
    assert get_path({"address": {"city": "Köln"}}, "address.city") == "Köln"
    assert get_path({"items": [{"sku": "A"}]}, "items.0.sku") == "A"


def test_empty_values_are_left_out_not_coerced():
    spec = {"type": "identify", "fields": [{"from": "id", "to": "userId"}, {"from": "age", "to": "traits.age",
                                                                            "type": "integer"}]}
    assert mapping_apply(spec, {"id": "u1", "age": ""}, source_slug="s") == {"type": "identify", "userId": "u1"}
    assert mapping_apply(spec, {"id": "u1", "age": None}, source_slug="s") == {"type": "identify", "userId": "u1"}


def test_page_mappings_set_the_name():
    spec = {"type": "page", "event": "Home", "fields": [{"from": "a", "to": "anonymousId"}]}
    mapping_validate(spec)
    assert mapping_apply(spec, {"a": "anon-1"}, source_slug="s") == {"type": "page", "anonymousId": "anon-1",
                                                                     "name": "Home"}


@pytest.mark.parametrize(("value", "type_name", "expected"), [
    ("12", "integer", 12), ("12.0", "integer", 12), (12.0, "integer", 12), (" -3 ", "integer", -3),
    ("1e3", "float", 1000.0), (".5", "float", 0.5), (3, "float", 3.0),
    ("Y", "boolean", True), ("nein", "boolean", False), (0, "boolean", False),
    (1717149600, "datetime", "2024-05-31T10:00:00Z"), (1717149600000, "datetime", "2024-05-31T10:00:00Z"),
    ("2024-05-31 12:00:00+02:00", "datetime", "2024-05-31T12:00:00+02:00"),
    ("2024-05-31T10:00:00", "datetime", "2024-05-31T10:00:00Z"),
    ("2024-05-31T23:00:00Z", "date", "2024-05-31"), (True, "string", "true"), (5.0, "string", "5"),
])
def test_coercion(value, type_name, expected):
    assert coerce(value, type_name) == expected


@pytest.mark.parametrize(("value", "type_name"), [
    ("12.5", "integer"), ("twelve", "integer"), (True, "integer"), ("1,5", "float"), ("nan", "float"),
    (float("inf"), "float"), ("maybe", "boolean"), (2, "boolean"), ("31.02.2024", "date"), ("yesterday", "datetime"),
    ({"a": 1}, "string"), ([1], "string"), (10**20, "datetime"),
])
def test_coercion_refuses_wrong_types(value, type_name):
    with pytest.raises(ValueError, match="expected"):
        coerce(value, type_name)


def test_a_bad_value_names_the_record_field():
    with pytest.raises(MappingError) as error:
        mapping_apply(CRM, {"id": 1, "age": "forty"}, source_slug="crm")
    assert error.value.field == "age"
    assert "integer" in error.value.message


def test_an_unparsable_date_in_its_format_names_the_field():
    with pytest.raises(MappingError) as error:
        mapping_apply(CRM, {"id": 1, "born": "1983-02-01"}, source_slug="crm")
    assert error.value.field == "born"
    assert "%d.%m.%Y" in error.value.message


def test_a_record_without_any_identity_is_refused():
    with pytest.raises(MappingError) as error:
        mapping_apply(CRM, {"mail": "a@example.com"}, source_slug="crm")
    assert error.value.field == "id"
    assert "userId, anonymousId or externalId" in error.value.message


def test_a_track_record_without_its_event_name_is_refused():
    spec = {"type": "track", "event_from": "kind", "fields": [{"from": "id", "to": "userId"}]}
    with pytest.raises(MappingError) as error:
        mapping_apply(spec, {"id": 1}, source_slug="s")
    assert error.value.field == "kind"


@pytest.mark.parametrize(("spec", "path", "words"), [
    ([], "", "JSON object"),
    ({"type": "purchase", "fields": []}, "type", "identify"),
    ({"type": "identify"}, "fields", "at least one"),
    ({"type": "identify", "fields": [{"from": "id", "to": "userid"}]}, "fields.0.to", "unknown target 'userid'"),
    ({"type": "identify", "fields": [{"from": "id", "to": "profile.email"}]}, "fields.0.to", "unknown target"),
    ({"type": "identify", "fields": [{"from": "id", "to": "traits."}]}, "fields.0.to", "needs a name"),
    ({"type": "identify", "fields": [{"from": "id", "to": "traits.a b"}]}, "fields.0.to", "needs a name"),
    ({"type": "identify", "fields": [{"from": "", "to": "userId"}]}, "fields.0.from", "record field"),
    ({"type": "identify", "fields": [{"from": "id", "to": "userId", "type": "money"}]}, "fields.0.type", "money"),
    ({"type": "identify", "fields": [{"from": "id", "to": "userId", "fmt": "x"}]}, "fields.0.fmt", "unknown key"),
    ({"type": "identify", "fields": [{"from": "id", "to": "userId"}, {"from": "b", "to": "userId"}]},
     "fields.1.to", "twice"),
    ({"type": "identify", "fields": [{"from": "id", "to": "userId", "format": "%Y"}]}, "fields.0.format",
     "datetime and date"),
    ({"type": "identify", "fields": [{"from": "m", "to": "traits.email"}]}, "fields", "userId, anonymousId"),
    ({"type": "track", "fields": [{"from": "id", "to": "userId"}]}, "event", "event name"),
    ({"type": "identify", "fields": [{"from": "id", "to": "userId"}, {"from": "t", "to": "timestamp",
                                                                     "type": "integer"}]}, "fields.1.type",
     "datetime"),
    ({"type": "identify", "extra": 1, "fields": [{"from": "id", "to": "userId"}]}, "extra", "unknown key"),
    ({"type": "identify", "fields": [{"from": "id", "to": "context.externalIds"}]}, "fields.0.to", "externalId"),
    ({"type": "identify", "fields": ["id"]}, "fields.0", "object"),
])
def test_a_wrong_spec_names_the_wrong_path(spec, path, words):
    with pytest.raises(MappingError) as error:
        mapping_validate(spec)
    assert error.value.field == path
    assert words in error.value.message


def test_several_external_ids_are_allowed():
    spec = {"type": "identify", "fields": [{"from": "id", "to": "externalId"}, {"from": "legacy", "to": "externalId"}]}
    mapping_validate(spec)
    message = mapping_apply(spec, {"id": 1, "legacy": "L-9"}, source_slug="crm", collection="t")
    assert [item["id"] for item in message["context"]["externalIds"]] == ["1", "L-9"]
