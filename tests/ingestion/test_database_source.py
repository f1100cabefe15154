"""Database sources, against a REAL second PostgreSQL database (cdp_connectors_src_<pid>), dropped and created per test.

The CDP's own database is whatever the suite runs on (SQLite by default); the source database is PostgreSQL.
Set CDP_TEST_SOURCE_POSTGRES_URL to an admin URL of another server; without a reachable PostgreSQL these tests
are skipped with the reason.
"""

import html as html_module
import logging
import os
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.celery import BEAT_SCHEDULE, app
from ingestion.models import Import, InboxMessage
from ingestion.services import connectors, source_create

psycopg = pytest.importorskip("psycopg")

ADMIN_URL = os.environ.get("CDP_TEST_SOURCE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# One source database per test process: the CI runs two suites side by side on the same server.
SOURCE_DB = f"cdp_connectors_src_{os.getpid()}"
PASSWORD = "s3cret-Pw-never-shown"

MAPPING = {"type": "identify", "event": None, "event_from": None, "fields": [
    {"from": "id", "to": "externalId", "type": "string"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "name", "to": "traits.name", "type": "string"},
    {"from": "visits", "to": "traits.visits", "type": "integer"},
]}


def _with_db(url: str, database: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if password is not None:
        user_host = netloc.rsplit("@", 1)
        host = user_host[-1]
        user = (user_host[0].split(":")[0] if len(user_host) == 2 else "postgres")
        netloc = f"{user}:{password}@{host}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


@pytest.fixture
def source_db():
    """A fresh source database (cdp_connectors_src_<pid>) with a customers table.
    Yields (url with a password, connection)."""
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL server for the source database ({connectors.database_url_masked(ADMIN_URL)}): "
                    f"{str(error).strip().splitlines()[0]}")
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SOURCE_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {SOURCE_DB}")
    # Trust authentication ignores the password, which lets the tests check that it is never shown.
    url = _with_db(ADMIN_URL, SOURCE_DB, password=PASSWORD)
    connection = psycopg.connect(_with_db(ADMIN_URL, SOURCE_DB), autocommit=True)
    connection.execute("""
        CREATE TABLE customers (
            id serial PRIMARY KEY, email text, name text, visits text,
            updated_at timestamptz NOT NULL DEFAULT now());
        CREATE SEQUENCE audit_seq;
    """)
    yield url, connection
    connection.close()
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SOURCE_DB} WITH (FORCE)")



def _insert(connection, *rows, at=None):
    for email, name, visits in rows:
        connection.execute("INSERT INTO customers (email, name, visits, updated_at) VALUES (%s, %s, %s, %s)",
                           (email, name, visits, at or timezone.now()))


@pytest.fixture
def db_source(db, source_db):
    url, connection = source_db
    source, _ = source_create(name="CRM database", kind="database")
    connectors.database_settings_save(source=source, url=url, table="customers", cursor_column="updated_at",
                                      interval_minutes=15, mapping=MAPPING)
    return source, connection


def _stored(source):
    return list(InboxMessage.objects.filter(source=source).exclude(status="rejected")
                .order_by("id").values_list("payload", flat=True))


def test_incremental_pull_by_updated_at_stores_only_new_and_changed_rows(db_source):
    source, connection = db_source
    start = timezone.now() - timedelta(hours=1)
    _insert(connection, ("ann@example.com", "Ann", "3"), ("bob@example.com", "Bob", "1"), at=start)
    _insert(connection, ("cy@example.com", "Cy", "7"), at=start + timedelta(minutes=1))

    first = connectors.database_pull(source_id=source.pk)

    assert (first.status, first.rows_read, first.rows_stored, first.rows_failed) == ("done", 3, 3, 0)
    assert first.cursor_start is None and first.cursor_end["type"] == "datetime"
    payloads = _stored(source)
    assert [p["traits"]["email"] for p in payloads] == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert payloads[0]["traits"]["visits"] == 3
    assert payloads[0]["context"]["externalIds"] == [
        {"id": "1", "type": source.slug, "collection": "customers", "encoding": "none"}]

    # Two new rows and one change; the unchanged rows must not arrive again.
    later = start + timedelta(minutes=5)
    _insert(connection, ("dee@example.com", "Dee", "0"), ("eve@example.com", "Eve", "2"), at=later)
    connection.execute("UPDATE customers SET name = 'Bob B.', updated_at = %s WHERE id = 2", (later,))

    second = connectors.database_pull(source_id=source.pk)

    assert second.cursor_start == first.cursor_end
    assert second.status == "done"
    # The row at the previous cursor value is read again (>=, so that nothing committed at that instant is missed)
    # and recognised as a duplicate.
    assert (second.rows_read, second.rows_stored, second.rows_duplicate) == (4, 3, 1)
    new = _stored(source)[3:]
    assert sorted((p["traits"]["email"], p["traits"]["name"]) for p in new) == [
        ("bob@example.com", "Bob B."), ("dee@example.com", "Dee"), ("eve@example.com", "Eve")]

    third = connectors.database_pull(source_id=source.pk)
    assert (third.rows_stored, third.rows_duplicate) == (0, 3)
    assert InboxMessage.objects.filter(source=source).count() == 6


def test_pull_by_id_from_a_query_and_bad_rows_go_to_the_error_report(db, source_db):
    url, connection = source_db
    _insert(connection, ("ann@example.com", "Ann", "3"), ("bob@example.com", "Bob", "many"),
            ("cy@example.com", "Cy", "2"))
    source, _ = source_create(name="Shop DB", kind="database")
    connectors.database_settings_save(
        source=source, url=url, query="SELECT id, email, name, visits FROM customers WHERE email <> '';",
        cursor_column="id", mapping=MAPPING)

    run = connectors.database_pull(source_id=source.pk)

    assert (run.status, run.rows_read, run.rows_stored, run.rows_failed) == ("done", 3, 2, 1)
    assert run.cursor_end == {"type": "integer", "value": 3}
    from ingestion.services.imports import error_report_rows

    [error] = error_report_rows(run)
    assert error["row"] == "2" and error["column"] == "visits"
    assert "expected an integer" in error["message"] and "bob@example.com" in error["raw"]

    _insert(connection, ("dee@example.com", "Dee", "5"))
    again = connectors.database_pull(source_id=source.pk)
    assert (again.rows_read, again.rows_stored, again.rows_duplicate) == (2, 1, 1)  # id 3 again, and id 4
    assert _stored(source)[-1]["traits"]["email"] == "dee@example.com"


def test_the_pull_is_read_only_and_has_a_statement_timeout(db, source_db):
    url, connection = source_db
    _insert(connection, ("ann@example.com", "Ann", "1"))
    source, _ = source_create(name="Sneaky", kind="database")
    connectors.database_settings_save(source=source, url=url, cursor_column="id", mapping=MAPPING,
                                      query="SELECT c.*, nextval('audit_seq') AS n FROM customers c")
    run = connectors.database_pull(source_id=source.pk)
    assert run.status == "failed"
    assert "read-only transaction" in run.error
    assert connection.execute("SELECT last_value, is_called FROM audit_seq").fetchone() == (1, False)

    connectors.database_settings_save(source=source, url=url, cursor_column="id", mapping=MAPPING,
                                      statement_timeout_seconds=1,
                                      query="SELECT c.*, pg_sleep(3) AS pause FROM customers c")
    run = connectors.database_pull(source_id=source.pk)
    assert run.status == "failed" and "statement timeout" in run.error


def test_a_connection_error_fails_the_run_and_never_shows_the_password(db, source_db, caplog):
    url, _ = source_db
    parts = urlsplit(url)
    bad_url = urlunsplit((parts.scheme, parts.netloc.replace(str(parts.port or 5432), "1"), parts.path, "", ""))
    if parts.port is None:
        bad_url = url.replace(parts.hostname, f"{parts.hostname}:1", 1)
    source, _ = source_create(name="Unreachable", kind="database")
    connectors.database_settings_save(source=source, url=bad_url, table="customers", cursor_column="id",
                                      mapping=MAPPING)
    with caplog.at_level(logging.DEBUG):
        run = connectors.database_pull(source_id=source.pk)
    assert run.status == "failed" and run.error.startswith("The database answered:")
    assert PASSWORD not in run.error and PASSWORD not in caplog.text
    assert connectors.source_settings_public(source.settings)["database"]["url"].count("****") == 1


def test_settings_keep_the_password_when_the_masked_url_comes_back(db_source):
    source, _ = db_source
    source.refresh_from_db()
    masked = connectors.database_url_masked(source.settings["database"]["url"])
    assert PASSWORD not in masked and "****" in masked
    connectors.database_settings_save(source=source, url=masked, table="customers", cursor_column="updated_at",
                                      interval_minutes=30, mapping=MAPPING)
    source.refresh_from_db()
    assert PASSWORD in source.settings["database"]["url"]
    assert source.settings["database"]["interval_minutes"] == 30


@pytest.mark.parametrize(("changes", "field"), [
    ({"url": "mysql://u:p@h/db"}, "url"),
    ({"table": "customers; DROP TABLE x"}, "table"),
    ({"table": "", "query": "DELETE FROM customers"}, "query"),
    ({"table": "customers", "query": "SELECT 1"}, "table"),
    ({"cursor_column": "updated at"}, "cursor_column"),
    ({"interval_minutes": 0}, "interval_minutes"),
    ({"mapping": {"type": "identify", "fields": [{"from": "id", "to": "nowhere"}]}}, "mapping.fields.0.to"),
])
def test_bad_database_settings_name_the_field(db, changes, field):
    source, _ = source_create(name="DB", kind="database")
    values = {"url": "postgres://u:p@127.0.0.1/db", "table": "customers", "query": "", "cursor_column": "id",
              "interval_minutes": 60, "mapping": MAPPING, **changes}
    with pytest.raises(connectors.ConnectorError) as error:
        connectors.database_settings_save(source=source, **values)
    assert field in error.value.fields


def test_probe_lists_columns_and_suggests_a_mapping(db_source):
    source, connection = db_source
    _insert(connection, ("ann@example.com", "Ann", "3"))
    probe = connectors.database_probe(connectors.DatabaseConfig.of(source))
    assert probe.error == ""
    assert probe.columns == ["id", "email", "name", "visits", "updated_at"]
    assert probe.rows[0]["email"] == "ann@example.com"
    targets = {item["from"]: item["to"] for item in probe.mapping["fields"]}
    assert targets["id"] == "externalId" and targets["email"] == "traits.email"


def test_the_schedule_pulls_due_sources_by_their_interval(db_source, eager_tasks,
                                                          django_capture_on_commit_callbacks):
    source, connection = db_source
    import ingestion.tasks  # noqa: F401 - registers the tasks, as a worker's autodiscovery does

    entry = BEAT_SCHEDULE["ingestion-database-pulls"]
    assert entry["task"] in app.tasks
    _insert(connection, ("ann@example.com", "Ann", "3"))

    # What beat sends: the task queues a pull of each due source (eager Celery here: the pull runs at once).
    with django_capture_on_commit_callbacks(execute=True):
        assert app.tasks[entry["task"]].delay().get() == [source.pk]
    assert Import.objects.get(source=source).status == "done"
    assert connectors.database_pulls_enqueue_due() == []  # 15 minutes have not passed
    assert connectors.database_pulls_enqueue_due(now=timezone.now() + timedelta(minutes=16)) == [source.pk]

    source.enabled = False
    source.save()
    assert connectors.database_pulls_enqueue_due(now=timezone.now() + timedelta(minutes=40)) == []


def test_changing_the_table_or_cursor_starts_from_the_beginning(db_source):
    source, connection = db_source
    _insert(connection, ("ann@example.com", "Ann", "3"))
    connectors.database_pull(source_id=source.pk)
    assert connectors.database_last_cursor(source) is not None
    connectors.database_settings_save(source=source, url=source.settings["database"]["url"], table="customers",
                                      cursor_column="id", mapping=MAPPING)
    source.refresh_from_db()
    assert connectors.database_last_cursor(source) is None
    run = connectors.database_pull(source_id=source.pk)
    # Read again from the start; the row was stored already (same content, same messageId): a duplicate.
    assert (run.rows_read, run.rows_stored, run.rows_duplicate) == (1, 0, 1)


# --- the UI and the API ------------------------------------------------------------------------------------------

def test_settings_page_pull_now_and_last_run(db_source, client, make_user, eager_tasks,
                                             django_capture_on_commit_callbacks):
    source, connection = db_source
    _insert(connection, ("ann@example.com", "Ann", "3"))
    client.force_login(make_user("Admin"))
    url = reverse("ingestion:database-settings", args=[source.slug])

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert PASSWORD not in html and "****" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ingestion:database-pull", args=[source.slug]), HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and "importsChanged" in response["HX-Trigger"]
    run = Import.objects.get(source=source)
    assert run.status == "done" and run.rows_stored == 1
    html = client.get(url).content.decode()
    assert "1 stored" in html or ">1<" in html

    marketing = make_user("Marketing", username="m")
    client.force_login(marketing)
    assert client.post(reverse("ingestion:database-pull", args=[source.slug])).status_code == 403


def test_source_api_never_shows_the_password(db_source, api_as):
    source, _ = db_source
    response = api_as("Admin").get(f"/api/v1/sources/{source.pk}/")
    assert response.status_code == 200
    assert PASSWORD not in response.content.decode()


def test_source_api_update_with_the_masked_url_keeps_the_password(db_source, api_as):
    source, _ = db_source
    api = api_as("Admin")
    shown = api.get(f"/api/v1/sources/{source.pk}/").json()["settings"]
    shown["database"]["interval_minutes"] = 5
    response = api.patch(f"/api/v1/sources/{source.pk}/", {"settings": shown}, format="json")
    assert response.status_code == 200 and PASSWORD not in response.content.decode()
    source.refresh_from_db()
    assert PASSWORD in source.settings["database"]["url"] and source.settings["database"]["interval_minutes"] == 5


def test_connection_test_lists_columns_and_previews_messages(db_source, client, make_user):
    source, connection = db_source
    _insert(connection, ("ann@example.com", "Ann", "3"))
    client.force_login(make_user("Admin"))
    form = {"url": connectors.database_url_masked(source.settings["database"]["url"]), "table": "customers",
            "query": "", "cursor_column": "updated_at", "interval_minutes": "15",
            "statement_timeout_seconds": "30", "rows": "0", "message_type": "identify", "event": "",
            "event_from": ""}
    response = client.post(reverse("ingestion:database-test", args=[source.slug]), form, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Connected: 5 columns" in html and 'value="visits"' in html
    assert "&quot;email&quot;: &quot;ann@example.com&quot;" in html
    assert PASSWORD not in html

    response = client.post(reverse("ingestion:database-test", args=[source.slug]),
                           dict(form, table="nope"), HTTP_HX_REQUEST="true")
    assert 'relation "nope" does not exist' in html_module.unescape(response.content.decode())


def test_settings_form_saves_and_names_bad_fields(db, client, make_user):
    source, _ = source_create(name="Warehouse", kind="database", slug="warehouse")
    client.force_login(make_user("Admin"))
    url = reverse("ingestion:database-settings", args=["warehouse"])
    form = {"url": "postgres://reader:pw-123456@db.internal:5432/shop", "table": "public.customers", "query": "",
            "cursor_column": "updated_at", "interval_minutes": "30", "statement_timeout_seconds": "60",
            "rows": "2", "message_type": "identify", "event": "", "event_from": "",
            "from_0": "id", "to_0": "externalId", "name_0": "", "type_0": "string",
            "from_1": "email", "to_1": "traits", "name_1": "email", "type_1": ""}
    response = client.post(url, dict(form, url="mysql://x", cursor_column="updated at"))
    html = html_module.unescape(response.content.decode())
    assert response.status_code == 400
    assert "a postgres:// URL" in html and "the column that grows with every new or changed row" in html

    response = client.post(url, form)
    assert response.status_code == 302
    source.refresh_from_db()
    config = connectors.DatabaseConfig.of(source)
    assert (config.table, config.cursor_column, config.interval_minutes) == ("public.customers", "updated_at", 30)
    assert config.mapping["fields"][1] == {"from": "email", "to": "traits.email"}
    page = client.get(url).content.decode()
    assert "pw-123456" not in page and "reader:****@db.internal" in page


def test_the_admin_never_shows_the_database_password(db, admin_client):
    source, _ = source_create(name="Shop database", kind="database",
                              settings={"database": {"url": "postgres://reader:s3cret-pw@127.0.0.1:5432/shop"}})
    response = admin_client.get(f"/admin/ingestion/source/{source.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "s3cret-pw" not in body
    assert "reader:****@127.0.0.1:5432/shop" in body
