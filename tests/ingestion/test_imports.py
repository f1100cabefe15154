"""File imports: reading (encodings, delimiters, bad rows), mapping, running in batches through the inbox, the
error report, the UI (upload, preview, mapping, progress), the API, the shell command, memory, personal data."""

import csv
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from ingestion.models import Import, InboxMessage
from ingestion.services import imports, source_create
from profiles.services import identities_resolve

MAPPING = {"type": "identify", "event": None, "event_from": None, "fields": [
    {"from": "customer_id", "to": "externalId", "type": "string"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "first_name", "to": "traits.first_name"},
    {"from": "visits", "to": "traits.visits", "type": "integer"},
    {"from": "signed_up", "to": "traits.signed_up", "type": "date"},
]}
GOOD = ("customer_id,email,first_name,visits,signed_up\n"
        "c-1,ann@example.com,Ann,3,2024-01-31\n"
        "c-2,bob@example.com,Bob,,2024-02-01\n")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT



@pytest.fixture
def file_source(db):
    source, _ = source_create(name="CRM export", kind="file", slug="crm")
    return source


def upload(source, content, name="customers.csv", **kwargs) -> Import:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return imports.import_create(source=source, upload=SimpleUploadedFile(name, data), **kwargs)


def run(imp, mapping=MAPPING) -> Import:
    imports.import_configure(imp=imp, mapping=mapping)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    return imports.import_run(import_id=imp.pk)


def stored(source):
    return [m.payload for m in InboxMessage.objects.filter(source=source, status="pending").order_by("message_id")]


def report(imp):
    with open(imp.error_report.path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- reading and the happy path ------------------------------------------------------------------------------------

def test_a_csv_import_stores_one_message_per_row_with_the_record_key(file_source, media):
    imp = upload(file_source, GOOD)
    assert (imp.format, imp.encoding, imp.delimiter) == ("csv", "utf-8", ",")
    assert imp.columns == ["customer_id", "email", "first_name", "visits", "signed_up"]
    assert imp.problems == []
    assert Path(imp.file.path).is_relative_to(media / "imports" / "crm")

    done = run(imp)

    assert (done.status, done.rows_read, done.rows_stored, done.rows_failed) == ("done", 2, 2, 0)
    assert done.percent == 100 and not done.error_report
    ann, bob = stored(file_source)
    assert ann["messageId"] == f"import-{imp.pk}-2"
    assert ann["traits"] == {"email": "ann@example.com", "first_name": "Ann", "visits": 3, "signed_up": "2024-01-31"}
    assert ann["context"]["externalIds"] == [
        {"id": "c-1", "type": "crm", "collection": "customers.csv", "encoding": "none"}]
    assert "visits" not in bob["traits"]  # empty values are left out


def test_running_an_import_again_stores_nothing_twice(file_source):
    imp = run(upload(file_source, GOOD))
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    again = imports.import_run(import_id=imp.pk)
    assert (again.rows_read, again.rows_stored, again.rows_duplicate) == (2, 0, 2)
    assert InboxMessage.objects.filter(source=file_source).count() == 2


def test_delimiter_bom_and_quoted_newlines_are_read(file_source):
    content = "\ufeffcustomer_id;email;first_name\r\nc-1;ann@example.com;\"Ann\nMarie\"\r\nc-2;bob@example.com;Bob\r\n"
    imp = upload(file_source, content)
    assert (imp.encoding, imp.delimiter, imp.columns) == ("utf-8-sig", ";", ["customer_id", "email", "first_name"])
    done = run(imp, {"type": "identify", "fields": [{"from": "customer_id", "to": "externalId"},
                                                     {"from": "first_name", "to": "traits.first_name"}]})
    assert done.rows_stored == 2
    assert stored(file_source)[0]["traits"]["first_name"] == "Ann\nMarie"


def test_json_lines_with_nested_fields_and_a_track_mapping(file_source):
    lines = [{"order": {"id": "o-1", "total": "19.90"}, "customer": {"email": "ann@example.com"}, "kind": "Order"},
             {"order": {"id": "o-2", "total": "5"}, "customer": {"email": "bob@example.com"}, "kind": "Refund"}]
    content = "\n".join(json.dumps(line) for line in lines) + "\n[1, 2]\n{broken\n"
    imp = upload(file_source, content, name="orders.jsonl")
    assert imp.format == "jsonl"
    assert imp.columns == ["order.id", "order.total", "customer.email", "kind"]
    done = run(imp, {"type": "track", "event_from": "kind", "fields": [
        {"from": "customer.email", "to": "userId"}, {"from": "order.id", "to": "properties.order_id"},
        {"from": "order.total", "to": "properties.total", "type": "float"}]})
    assert (done.rows_read, done.rows_stored, done.rows_failed) == (4, 2, 2)
    events = sorted((m["event"], m["properties"]["total"]) for m in stored(file_source))
    assert events == [("Order", 19.9), ("Refund", 5.0)]
    errors = report(done)
    assert [e["row"] for e in errors] == ["3", "4"]
    assert "JSON object, not a JSON list" in errors[0]["message"] and "not valid JSON" in errors[1]["message"]


# --- bad rows ------------------------------------------------------------------------------------------------------

def test_bad_rows_go_to_the_error_report_and_the_valid_ones_are_kept(file_source):
    content = GOOD + ("c-3,cy@example.com,Cy,many,2024-03-01\n"      # 4: not an integer
                      "c-4,dee@example.com,Dee\n"                     # 5: too few columns
                      ",,Nobody,1,2024-01-01\n"                       # 6: no identity
                      "c-6,eve@example.com,Eve,2,31.12.2024\n"        # 7: not an ISO date
                      f"c-7,{'x' * 40_000}@example.com,Long,1,2024-01-01\n"  # 8: oversize
                      "c-8,fay@example.com,Fay,7,2024-04-01,extra\n"  # 9: too many columns
                      "c-9,gus@example.com,Gus,8,2024-05-01\n")
    done = run(upload(file_source, content))

    assert (done.status, done.rows_read, done.rows_stored, done.rows_failed) == ("done", 9, 3, 6)
    assert sorted(m["context"]["externalIds"][0]["id"] for m in stored(file_source)) == ["c-1", "c-2", "c-9"]
    rows = {int(e["row"]): e for e in report(done)}
    assert set(rows) == {4, 5, 6, 7, 8, 9}
    assert rows[4]["column"] == "visits" and "expected an integer" in rows[4]["message"]
    assert rows[4]["raw"] == "c-3,cy@example.com,Cy,many,2024-03-01"
    assert rows[5]["message"] == "expected 5 columns, found 3" and rows[5]["raw"] == "c-4,dee@example.com,Dee"
    assert rows[6]["column"] == "customer_id" and "no value for userId, anonymousId or externalId" in rows[6]["message"]
    assert rows[7]["column"] == "signed_up" and "expected a date" in rows[7]["message"]
    assert "characters long; the limit is 32,768" in rows[8]["message"]
    assert len(rows[8]["raw"]) < 2100  # the raw text of an oversize row is cut
    assert rows[9]["message"] == "expected 5 columns, found 6"


def test_a_row_longer_than_the_limit_without_line_breaks_is_never_held_whole(file_source):
    content = "customer_id,email\n" + "c-1," + "y" * 3_000_000 + "\nc-2,bob@example.com\n"
    imp = upload(file_source, content)
    tracemalloc.start()
    done = run(imp, {"type": "identify", "fields": [{"from": "customer_id", "to": "externalId"},
                                                     {"from": "email", "to": "traits.email"}]})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (done.rows_stored, done.rows_failed) == (1, 1)
    assert "3,000,004 characters long" in report(done)[0]["message"]
    assert peak < 1_000_000  # the 3 MB line was read in bounded pieces


# --- files that cannot be read as they are -------------------------------------------------------------------------

LATIN1 = "customer_id;name;city\nc-1;José;Zürich\nc-2;Ann;Köln\n".encode("latin-1")


def test_a_non_utf8_file_gets_a_clear_error_and_an_encoding_choice(file_source):
    imp = upload(file_source, LATIN1)
    [problem] = imp.problems
    assert problem["code"] == "encoding" and problem["blocking"]
    assert "not UTF-8: the byte 0xE9 at line 2" in problem["message"]
    assert "Latin-1 or Windows-1252" in problem["message"]
    assert imp.columns == [] and imp.encoding == ""
    with pytest.raises(imports.ImportProblem, match="not UTF-8"):
        imports.import_configure(imp=imp, mapping=MAPPING)
    with pytest.raises(imports.ImportProblem):
        imports.import_start(imp=imp)

    imports.import_reinspect(imp=imp, encoding="cp1252")
    assert (imp.encoding, imp.delimiter, imp.problems) == ("cp1252", ";", [])
    preview = imports.import_preview(imp)
    assert preview.rows[0].values == ["c-1", "José", "Zürich"]
    done = run(imp, {"type": "identify", "fields": [{"from": "customer_id", "to": "externalId"},
                                                     {"from": "name", "to": "traits.name"},
                                                     {"from": "city", "to": "traits.city"}]})
    assert done.rows_stored == 2
    assert stored(file_source)[0]["traits"] == {"name": "José", "city": "Zürich"}


def test_a_bad_byte_after_the_sample_fails_that_row_only(file_source):
    head = "customer_id,email\n" + "".join(f"c-{i},user{i}@example.com\n" for i in range(60_000))
    assert len(head) > 1024 * 1024  # beyond the sample that detection reads
    content = head.encode() + b"c-x,caf\xe9@example.com\nc-y,last@example.com\n"
    imp = upload(file_source, content)
    assert imp.encoding == "utf-8" and imp.problems == []
    done = run(imp, {"type": "identify", "fields": [{"from": "customer_id", "to": "externalId"},
                                                     {"from": "email", "to": "traits.email"}]})
    assert (done.rows_stored, done.rows_failed) == (60_001, 1)
    [error] = report(done)
    assert error["column"] == "email" and "0xE9 is not valid UTF-8" in error["message"]
    assert error["raw"] == "c-x,caf\\xe9@example.com"


@pytest.mark.parametrize(("content", "code", "message"), [
    ("", "empty", "The file is empty"),
    ("\n\n  \n", "empty", "The file is empty"),
    ("ann@example.com,Ann,3\nbob@example.com,Bob,4\n", "no_header", "looks like data, not column names"),
    ("email,name,Email\na@x.org,A,b@x.org\n", "duplicate_column", "names the column 'Email' twice (columns 1 and 3)"),
    ("email,,name\na@x.org,1,A\n", "blank_column", "Column 2 has no name"),
    ("\ufeff\xff\xfe", "encoding", None),
])
def test_files_that_cannot_be_imported_say_why(file_source, content, code, message):
    data = content.encode("utf-8") if code != "encoding" else b"\xff\xfee\x00m\x00"
    imp = upload(file_source, data)
    blocking = imp.blocking_problems
    assert [p["code"] for p in blocking] == [code]
    if message:
        assert message in blocking[0]["message"]
    with pytest.raises(imports.ImportProblem):
        imports.import_configure(imp=imp, mapping=MAPPING)


def test_a_header_without_rows_is_a_note_and_imports_nothing(file_source):
    imp = upload(file_source, "customer_id,email\n")
    assert [(p["code"], p["blocking"]) for p in imp.problems] == [("no_rows", False)]
    done = run(imp, {"type": "identify", "fields": [{"from": "customer_id", "to": "externalId"}]})
    assert (done.status, done.rows_read) == ("done", 0)


def test_a_mapping_naming_a_missing_column_is_refused(file_source):
    imp = upload(file_source, GOOD)
    with pytest.raises(imports.ImportProblem) as error:
        imports.import_configure(imp=imp, mapping={"type": "identify", "fields": [{"from": "mail", "to": "userId"}]})
    assert error.value.fields == {"mapping.fields.0.from": ["no column 'mail' in the file"]}
    with pytest.raises(imports.ImportProblem) as error:
        imports.import_configure(imp=imp, mapping={"type": "identify", "fields": [{"from": "email", "to": "x"}]})
    assert "mapping.fields.0.to" in error.value.fields


def test_inferred_mapping_from_column_names():
    spec = imports.mapping_suggest(
        ["Customer ID", "E-Mail", "first_name", "Phone", "zip", "age", "vip", "event", "timestamp"],
        [{"Customer ID": "007", "E-Mail": "a@x.org", "zip": "01067", "age": "41", "vip": "yes", "event": "Buy",
          "timestamp": "2024-01-01T10:00:00Z"}])
    targets = {item["from"]: (item["to"], item.get("type")) for item in spec["fields"]}
    assert targets["Customer ID"] == ("userId", "string")
    assert targets["E-Mail"] == ("traits.email", "string")
    assert targets["first_name"] == ("traits.first_name", "string")
    assert targets["Phone"] == ("traits.phone", "string")
    assert targets["zip"] == ("traits.zip", "string")  # leading zero: stays text
    assert targets["age"] == ("traits.age", "integer")
    assert targets["vip"] == ("traits.vip", "boolean")
    assert targets["timestamp"] == ("timestamp", "datetime")
    assert spec["type"] == "track" and targets["event"][0] == "event"


# --- memory and scale ----------------------------------------------------------------------------------------------

def test_100k_rows_import_with_flat_memory(file_source, tmp_path):
    """100,000 rows (an 18 MB customer export with a notes column that is not imported): the peak of traced memory
    is a batch's worth, far below the file's size, and no higher at the end than after the first fifth."""
    path = tmp_path / "big.csv"
    notes = "Called about the spring catalogue; prefers e-mail; VIP since 2019. " * 2
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "first_name", "last_name", "city", "visits", "notes"])
        for i in range(100_000):
            writer.writerow([f"c-{i}", f"user{i}@example.com", "Ann", "Example", "Berlin",
                             "many" if i % 10_000 == 5_000 else i % 50, notes])
    size = path.stat().st_size
    with path.open("rb") as handle:
        imp = imports.import_create(source=file_source, upload=handle, filename="big.csv")
    imports.import_configure(imp=imp, mapping={"type": "identify", "fields": [
        {"from": "customer_id", "to": "externalId"}, {"from": "email", "to": "traits.email"},
        {"from": "visits", "to": "traits.visits", "type": "integer"}]})
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    seen, early = [], {}

    def progress(current, counters):
        seen.append((counters.read, counters.bytes_read))
        if counters.read >= 20_000 and not early:
            early["peak"] = tracemalloc.get_traced_memory()[1]

    tracemalloc.start()
    done = imports.import_run(import_id=imp.pk, progress=progress)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert (done.status, done.rows_read, done.rows_stored, done.rows_failed) == ("done", 100_000, 99_990, 10)
    assert InboxMessage.objects.filter(source=file_source).count() == 99_990
    assert len(seen) >= 100 and seen[-1][1] > 0.95 * size  # progress after every batch, by bytes
    assert size > 15_000_000
    # A batch of 1,000 messages with its INSERT is ~2-3 MB of Python objects at its height.
    assert peak < size / 5, f"peak {peak:,} bytes for a {size:,}-byte file"
    assert peak < early["peak"] * 1.2 + 256 * 1024, f"peak {peak:,} after 100,000 rows, {early['peak']:,} after 20,000"


def test_cancelling_stops_after_the_current_batch(file_source):
    content = "customer_id\n" + "".join(f"c-{i}\n" for i in range(5_000))
    imp = upload(file_source, content)
    imports.import_configure(imp=imp, mapping={"type": "identify", "fields": [{"from": "customer_id",
                                                                               "to": "externalId"}]})
    imports.import_start(imp=imp)  # queued; the on-commit enqueue does not run inside the test transaction

    def cancel_after_first_batch(current, counters):
        if counters.read >= 1000 and current.status == "running":
            imports.import_cancel(imp=current)

    done = imports.import_run(import_id=imp.pk, progress=cancel_after_first_batch)
    assert done.status == "cancelled"
    assert done.rows_stored == 1000 == InboxMessage.objects.filter(source=file_source).count()


# --- deletion and personal data ------------------------------------------------------------------------------------

def test_deleting_an_import_deletes_its_file_and_error_report(file_source, django_capture_on_commit_callbacks):
    done = run(upload(file_source, GOOD + "c-3,x@example.com,X,many,2024-01-01\n"))
    paths = [Path(done.file.path), Path(done.error_report.path)]
    assert all(path.exists() for path in paths)
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_delete(imp=done)
    assert not any(path.exists() for path in paths)
    assert not Import.objects.filter(pk=done.pk).exists()


def test_erasing_a_person_deletes_the_files_that_hold_them(file_source):
    from cdp.core import registry

    hit = run(upload(file_source, GOOD + "c-3,cy@example.com,Cy,many,2024-01-01\n"))
    other = run(upload(file_source, "customer_id,email\nc-9,zed@example.com\n", name="other.csv"),
                {"type": "identify", "fields": [{"from": "customer_id", "to": "externalId"},
                                                {"from": "email", "to": "traits.email"}]})
    in_report_only = run(upload(file_source, "customer_id,email,visits\nc-3,CY@example.com,lots\n",
                                name="failed.csv"), {"type": "identify", "fields": [
        {"from": "customer_id", "to": "externalId"}, {"from": "email", "to": "traits.email"},
        {"from": "visits", "to": "traits.visits", "type": "integer"}]})
    profile = identities_resolve(identities=[("email", "cy@example.com"), ("record", "crm:c-3")])

    exported = registry.export_all(profile)["ingestion.imports"]["import_rows"]
    assert {(row["name"], row["in"], str(row["row"])) for row in exported} >= {
        ("customers.csv", "file", "4"), ("customers.csv", "error_report", "4"), ("failed.csv", "file", "2")}
    assert all(row["name"] != "other.csv" for row in exported)

    files = [Path(hit.file.path), Path(hit.error_report.path), Path(in_report_only.file.path)]
    erased = registry.erase_all(profile)["ingestion.imports"]

    assert erased == 4  # two files and two error reports
    assert not any(path.exists() for path in files)
    hit.refresh_from_db()
    assert hit.file_erased_at and not hit.file and not hit.error_report and hit.rows_stored == 2
    other.refresh_from_db()
    assert other.file and Path(other.file.path).exists() and other.file_erased_at is None


# --- the UI --------------------------------------------------------------------------------------------------------

@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("Admin"))
    return client


def test_ui_upload_preview_map_start_progress_and_error_report(admin_client, file_source, eager_tasks,
                                                                django_capture_on_commit_callbacks):
    response = admin_client.get(reverse("ingestion:import-upload", args=["crm"]))
    assert response.status_code == 200 and 'enctype="multipart/form-data"' in response.content.decode()

    content = GOOD + "c-3,cy@example.com,Cy,many,2024-01-01\n"
    response = admin_client.post(reverse("ingestion:import-upload", args=["crm"]),
                                 {"file": SimpleUploadedFile("customers.csv", content.encode())})
    imp = Import.objects.get()
    assert response.status_code == 302 and response.url == reverse("ingestion:import-detail", args=["crm", imp.pk])

    page = admin_client.get(response.url).content.decode()
    assert "ann@example.com" in page and "customers.csv" in page  # the preview
    assert 'name="to_0"' in page and 'id="workbench"' in page  # the mapping editor
    assert 'hx-post="' + reverse("ingestion:import-mapping", args=["crm", imp.pk]) in page

    # htmx on a change: the editor again with the messages the first rows become; nothing saved.
    form = {"rows": "5", "message_type": "identify", "event": "", "event_from": ""}
    for index, item in enumerate(MAPPING["fields"]):
        form.update({f"from_{index}": item["from"], f"to_{index}": item["to"].split(".")[0],
                     f"name_{index}": item["to"].partition(".")[2], f"type_{index}": item.get("type", "")})
    partial = admin_client.post(reverse("ingestion:import-mapping", args=["crm", imp.pk]), form,
                                HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in html
    assert "&quot;first_name&quot;: &quot;Ann&quot;" in html and "expected an integer" in html
    imp.refresh_from_db()
    assert imp.status == "uploaded"

    bad = dict(form, to_0="ignore")  # no identity any more
    partial = admin_client.post(reverse("ingestion:import-mapping", args=["crm", imp.pk]), bad,
                                HTTP_HX_REQUEST="true")
    assert "map at least one of userId, anonymousId or externalId" in partial.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("ingestion:import-mapping", args=["crm", imp.pk]),
                                     dict(form, action="start"))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert (imp.status, imp.rows_stored, imp.rows_failed) == ("done", 2, 1)

    progress = admin_client.get(reverse("ingestion:import-progress", args=["crm", imp.pk]), HTTP_HX_REQUEST="true")
    html = progress.content.decode()
    assert 'id="import-progress"' in html and "hx-trigger" not in html  # finished: polling stops
    assert "Download the error report" in html
    last_poll = admin_client.get(reverse("ingestion:import-progress", args=["crm", imp.pk]) + "?running=1",
                                 HTTP_HX_REQUEST="true")
    assert last_poll["HX-Refresh"] == "true"  # the poll that sees the end reloads the page with the result
    page = admin_client.get(reverse("ingestion:import-detail", args=["crm", imp.pk])).content.decode()
    assert "expected an integer" in page and "c-3,cy@example.com,Cy,many,2024-01-01" in page

    download = admin_client.get(reverse("ingestion:import-errors", args=["crm", imp.pk]))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert "attachment" in download["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [(r["row"], r["column"]) for r in rows] == [("4", "visits")]

    listing = admin_client.get(reverse("ingestion:source-imports", args=["crm"]), HTTP_HX_REQUEST="true")
    assert "customers.csv" in listing.content.decode() and "Error report (CSV)" in listing.content.decode()


def test_ui_progress_polls_while_running(admin_client, file_source):
    imp = upload(file_source, GOOD)
    imports.import_configure(imp=imp, mapping=MAPPING)
    Import.objects.filter(pk=imp.pk).update(status="running", rows_read=1, bytes_read=imp.size_bytes // 2,
                                            started_at=imp.created_at)
    html = admin_client.get(reverse("ingestion:import-progress", args=["crm", imp.pk]),
                            HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in html and "<progress" in html and "% " not in html
    listing = admin_client.get(reverse("ingestion:source-imports", args=["crm"]), HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 2s"' in listing.content.decode()


def test_ui_non_utf8_upload_offers_the_encoding_choice(admin_client, file_source):
    response = admin_client.post(reverse("ingestion:import-upload", args=["crm"]),
                                 {"file": SimpleUploadedFile("latin.csv", LATIN1)}, follow=True)
    html = response.content.decode()
    assert "is not valid UTF-8" in html and 'name="encoding"' in html and "Windows-1252" in html
    imp = Import.objects.get()
    response = admin_client.post(reverse("ingestion:import-read", args=["crm", imp.pk]),
                                 {"encoding": "latin-1", "delimiter": ";"}, follow=True)
    assert "José" in response.content.decode()


def test_ui_permissions_and_masking(client, make_user, file_source):
    imp = run(upload(file_source, GOOD + "c-3,cy@example.com,Cy,many,2024-01-01\n"))
    client.force_login(make_user("Marketing"))
    assert client.get(reverse("ingestion:import-upload", args=["crm"])).status_code == 403
    assert client.get(reverse("ingestion:source-imports", args=["crm"])).status_code == 200
    page = client.get(reverse("ingestion:import-detail", args=["crm", imp.pk]))
    assert page.status_code == 200 and "cy@example.com" not in page.content.decode()  # no view_pii: no raw rows
    assert client.get(reverse("ingestion:import-errors", args=["crm", imp.pk])).status_code == 403
    assert client.post(reverse("ingestion:import-delete", args=["crm", imp.pk])).status_code == 403


def test_the_source_page_shows_the_imports_slot(admin_client, file_source):
    html = admin_client.get(reverse("ingestion:source-detail", args=["crm"])).content.decode()
    assert reverse("ingestion:source-imports", args=["crm"]) in html and "Import a file" in html


# --- the API -------------------------------------------------------------------------------------------------------

def test_api_upload_preview_mapping_start_status_errors_delete(api_as, file_source, eager_tasks,
                                                                django_capture_on_commit_callbacks):
    api = api_as("Admin")
    content = GOOD + "c-3,cy@example.com,Cy,many,2024-01-01\n"
    response = api.post("/api/v1/imports/", {"source": "crm", "file": SimpleUploadedFile("c.csv", content.encode())},
                        format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "uploaded" and body["columns"][:2] == ["customer_id", "email"]
    assert body["mapping"]["fields"]  # a suggestion
    pk = body["id"]

    preview = api.get(f"/api/v1/imports/{pk}/preview/?rows=2").json()
    assert preview["rows"][0]["values"][:2] == ["c-1", "ann@example.com"] and preview["masked"] is False

    bad = api.put(f"/api/v1/imports/{pk}/mapping/", {"mapping": {"type": "identify", "fields": [
        {"from": "email", "to": "traits"}]}}, format="json")
    assert bad.status_code == 400
    assert "mapping.fields.0.to" in bad.json()["error"]["fields"]
    assert api.post(f"/api/v1/imports/{pk}/start/").status_code == 400  # not mapped yet

    assert api.put(f"/api/v1/imports/{pk}/mapping/", {"mapping": MAPPING}, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(f"/api/v1/imports/{pk}/start/")
    assert started.status_code == 202
    status = api.get(f"/api/v1/imports/{pk}/").json()
    assert (status["status"], status["rows_read"], status["rows_stored"], status["rows_failed"], status["percent"]) \
        == ("done", 3, 2, 1, 100)
    assert status["error_report_url"].endswith(f"/api/v1/imports/{pk}/errors/")

    errors = api.get(f"/api/v1/imports/{pk}/errors/")
    assert errors.status_code == 200
    assert "expected an integer" in b"".join(errors.streaming_content).decode()
    assert api.get("/api/v1/imports/?source=crm&status=done").json()["count"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/imports/{pk}/").status_code == 204
    assert not Import.objects.exists()


def test_api_bad_files_answer_400_naming_the_problem(api_as, file_source):
    api = api_as("Admin")
    for content, expected in [(b"", "file is empty"), (LATIN1, "not UTF-8"),
                              (b"a,b,a\n1,2,3\n", "twice")]:
        response = api.post("/api/v1/imports/", {"source": "crm", "file": SimpleUploadedFile("x.csv", content)},
                            format="multipart")
        assert response.status_code == 400
        assert expected in response.json()["error"]["fields"]["file"][0]
    assert not Import.objects.exists()
    ok = api.post("/api/v1/imports/", {"source": "crm", "encoding": "latin-1",
                                       "file": SimpleUploadedFile("x.csv", LATIN1)}, format="multipart")
    assert ok.status_code == 201 and ok.json()["encoding"] == "latin-1"


def test_api_permissions(api_as, file_source):
    imp = run(upload(file_source, GOOD + "c-3,cy@example.com,Cy,many,2024-01-01\n"))
    marketing = api_as("Marketing")
    assert marketing.get("/api/v1/imports/").status_code == 200
    assert marketing.post("/api/v1/imports/", {"source": "crm", "file": SimpleUploadedFile("c.csv", b"a\n1\n")},
                          format="multipart").status_code == 403
    assert marketing.get(f"/api/v1/imports/{imp.pk}/errors/").status_code == 403
    preview = marketing.get(f"/api/v1/imports/{imp.pk}/preview/")
    assert preview.status_code == 200 and "ann@example.com" not in preview.content.decode()


def test_api_refuses_a_file_for_a_non_file_source(api_as, db):
    source_create(name="Web", kind="http", slug="web")
    response = api_as("Admin").post("/api/v1/imports/", {"source": "web", "file": SimpleUploadedFile("c.csv",
                                                                                                      b"a\n1\n")},
                                    format="multipart")
    assert response.status_code == 400 and "source" in response.json()["error"]["fields"]


# --- the shell -----------------------------------------------------------------------------------------------------

def test_import_file_command_infers_and_prints_the_mapping(file_source, tmp_path, capsys):
    path = tmp_path / "people.csv"
    path.write_text("user_id,email,visits\nu-1,ann@example.com,3\nu-2,bob@example.com,x\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_file", str(path), "--source", "crm", stdout=out, stderr=err)
    inferred = err.getvalue()
    assert '"to": "userId"' in inferred and '"to": "traits.email"' in inferred
    summary = out.getvalue().strip().splitlines()[-1]
    assert summary.startswith("Done: people.csv into crm") and "2 rows read, 2 stored" in summary
    assert stored(file_source)[0]["userId"] == "u-1"


def test_import_file_command_with_a_mapping_file_and_errors(file_source, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(GOOD + "c-3,cy@example.com,Cy,many,2024-01-01\n", encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    out = io.StringIO()
    call_command("import_file", str(path), "--source", "crm", "--mapping", str(mapping), "--quiet", stdout=out)
    assert "3 rows read, 2 stored, 0 already there, 1 failed" in out.getvalue()
    assert "Error report: " in out.getvalue()

    mapping.write_text('{"type": "identify", "fields": [{"from": "nope", "to": "userId"}]}')
    with pytest.raises(CommandError, match="no column 'nope'"):
        call_command("import_file", str(path), "--source", "crm", "--mapping", str(mapping))
    with pytest.raises(CommandError, match="No source with the slug"):
        call_command("import_file", str(path), "--source", "nope")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CommandError, match="The file is empty"):
        call_command("import_file", str(empty), "--source", "crm")
