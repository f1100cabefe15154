"""The tracking API's fast JSON path (orjson) against the standard library's: the same values, the same errors, and
what orjson would read differently (integers beyond 64 bits, UTF-16 bodies, lone surrogates) still as before."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.api.tracking import RequestRejected, _dumps, _iso, _parse_json
from ingestion.models import InboxMessage
from ingestion.services import source_create


def _stdlib_parse(body: bytes):
    return json.loads(body, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_the_parsed_value_is_the_standard_librarys(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    parsed = _parse_json(body)
    assert parsed == _stdlib_parse(body)
    assert json.dumps(parsed) == json.dumps(_stdlib_parse(body))  # same types too (an int stays an int)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_a_written_message_reads_back_the_same(value):
    written = _dumps(value)
    assert isinstance(written, bytes)
    assert json.loads(written) == value
    assert list(json.loads(written)) == list(value)  # key order kept


@pytest.mark.parametrize("body", [
    b'{"a": 123456789012345678901234567890}', b'{"a": -9223372036854775809}', b'{"a": [18446744073709551616]}'])
def test_integers_beyond_64_bits_are_kept_whole(body):
    parsed = _parse_json(body)
    assert json.dumps(parsed) == json.dumps(json.loads(body))  # an integer, digit for digit (a float would differ)
    assert json.loads(_dumps(parsed)) == json.loads(body)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_utf16_utf32_and_bom_bodies_are_read_as_before(encoding):
    body = '{"userId": "Zoë", "n": 1}'.encode(encoding)
    assert _parse_json(body) == {"userId": "Zoë", "n": 1}


@pytest.mark.parametrize(("body", "words"), [
    (b'{"a": NaN}', "NaN"), (b'{"a": -Infinity}', "Infinity"), (b'{"a": 1e400}', "out of range"),
    (b'{"a": "x', "Unterminated"), (b"", "Expecting value"), (b'{"a": "\xff"}', "UTF-8"),
])
def test_errors_are_the_standard_decoders(body, words):
    with pytest.raises(RequestRejected) as caught:
        _parse_json(body)
    assert caught.value.status == 400 and caught.value.code == "invalid_json"
    assert words in caught.value.message


def test_lone_surrogates_parse_as_before_and_are_written_for_the_check():
    parsed = _parse_json(b'{"a": "x\\ud800y"}')
    assert parsed == {"a": "x\ud800y"}
    assert _dumps(parsed).decode("utf-8", "surrogatepass") == '{"a":"x\ud800y"}'


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
       hours=st.integers(min_value=-12, max_value=14))
def test_times_are_written_as_isoformat_to_the_millisecond_in_utc(moment, hours):
    for value in (moment.replace(tzinfo=UTC), moment.replace(tzinfo=timezone(timedelta(hours=hours)))):
        expected = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert _iso(value) == expected


@pytest.mark.django_db
def test_a_batch_with_a_huge_integer_stores_it_exactly_and_the_rest_too():
    source, key = source_create(name="Web", kind="http", channel="web")
    body = ('{"batch": [{"type": "track", "userId": "u", "event": "Big", "messageId": "m-1",'
            ' "properties": {"n": 123456789012345678901234567890, "f": 0.1}},'
            ' {"type": "identify", "userId": "u", "messageId": "m-2", "traits": {"name": "Zoë"}}]}')
    response = Client().post("/v1/batch", body.encode(), content_type="application/json",
                             HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode())
    assert response.status_code == 200, response.content
    first, second = InboxMessage.objects.filter(source=source).order_by("message_id")
    assert first.payload["properties"] == {"n": 123456789012345678901234567890, "f": 0.1}
    assert second.payload["traits"] == {"name": "Zoë"}
