"""Loading the demo data: through the real pipeline, or in bulk for benchmarks.

``demo_load`` sends every record the way its source system would:

- the CRM export is a CSV file (semicolon-separated, as German CRMs write it) imported by the file import service
  into the file source "CRM", mapped to identify calls with the customer number as the record key (first: the
  CRM is the oldest system);
- the website's and the shop's Segment messages go to the inbox of the http sources "Website" and "Online shop"
  (``inbox_store``, as the tracking API would store them);
- call-center notes and e-mail engagement arrive as webhook bodies of the webhook sources "Call center" and
  "E-mail service", mapped by their field mappings (``webhook_receive``);
- processing is the pipeline's: eager, right after each store, when no broker is set; with a broker the workers
  take it, and the loader drains whatever is still pending itself at the end (SKIP LOCKED keeps that safe).

The demo sources get their mappings and transformations (e-mail, phone to E.164, names, country codes, age band)
once, when they have none; a user's later edits are kept.

``demo_load_bulk`` is the fast path for benchmarks (a million profiles): it writes profiles, identities, events
and consent records directly, in chunks (COPY on PostgreSQL, bulk_create on SQLite), with flat memory and
optionally several processes. It resolves identities by the generator's knowledge of who is who (one profile per
person), not by the unifier, sends no signals and keeps only the part of an event's context that later steps
read (``BULK_CONTEXT_KEYS``). It is for measuring, not for showing the pipeline.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.db import connection, connections, models, transaction
from django.utils import timezone

from consent.models import ConsentRecord, Purpose
from consent.services import purposes_install
from ingestion.demo.generator import CRM_COLUMNS, Clock, DemoPerson, demo_people, person_generate
from ingestion.models import Import, InboxMessage, Source, SourceTransformation
from ingestion.services import pipeline
from ingestion.services.inbox import inbox_store
from ingestion.services.sources import source_create
from ingestion.services.transforms import transformation_save
from profiles.insights.sentiment import event_sentiment
from profiles.models import Event, Identity, Profile

NOTE_EVENT = "Call Center Note"
BATCH = 500

# key -> how the source is created. The keys are the attributes of DemoPerson.
DEMO_SOURCES = {
    "crm": {"name": "CRM", "slug": "crm", "kind": "file", "channel": "crm", "settings": {"default_region": "DE"}},
    "web": {"name": "Website", "slug": "website", "kind": "http", "channel": "web", "settings": {}},
    "shop": {"name": "Online shop", "slug": "online-shop", "kind": "http", "channel": "shop",
             "settings": {"default_region": "DE"}},
    "notes": {"name": "Call center", "slug": "call-center", "kind": "webhook", "channel": "call_center",
              "settings": {"default_region": "DE"}},
    "email": {"name": "E-mail service", "slug": "email-service", "kind": "webhook", "channel": "email",
              "settings": {}},
}

CRM_MAPPING = {"type": "identify", "event": None, "event_from": None, "fields": [
    {"from": "customer_no", "to": "externalId"},
    {"from": "customer_no", "to": "traits.customer_no", "type": "string"},
    {"from": "first_name", "to": "traits.first_name", "type": "string"},
    {"from": "last_name", "to": "traits.last_name", "type": "string"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "phone", "to": "traits.phone", "type": "string"},
    {"from": "street", "to": "traits.street", "type": "string"},
    {"from": "postcode", "to": "traits.postcode", "type": "string"},
    {"from": "city", "to": "traits.city", "type": "string"},
    {"from": "country", "to": "traits.country", "type": "string"},
    {"from": "birth_date", "to": "traits.birth_date", "type": "date"},
    {"from": "membership", "to": "traits.membership", "type": "string"},
    {"from": "created_at", "to": "traits.customer_since", "type": "date"},
    {"from": "updated_at", "to": "timestamp", "type": "datetime"},
]}

NOTES_MAPPING = {"type": "track", "event": NOTE_EVENT, "event_from": None, "fields": [
    {"from": "contact_id", "to": "externalId"},
    {"from": "ticket_id", "to": "messageId"},
    {"from": "created_at", "to": "timestamp", "type": "datetime"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "phone", "to": "traits.phone", "type": "string"},
    {"from": "note", "to": "properties.note", "type": "string"},
    {"from": "subject", "to": "properties.subject", "type": "string"},
    {"from": "language", "to": "properties.language", "type": "string"},
    {"from": "channel", "to": "properties.channel", "type": "string"},
    {"from": "agent", "to": "properties.agent", "type": "string"},
    {"from": "ticket_id", "to": "properties.ticket_id", "type": "string"},
    {"from": "customer_no", "to": "properties.customer_no", "type": "string"},
]}

EMAIL_MAPPING = {"type": "track", "event": None, "event_from": "event", "fields": [
    {"from": "contact_id", "to": "externalId"},
    {"from": "event_id", "to": "messageId"},
    {"from": "timestamp", "to": "timestamp", "type": "datetime"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "campaign_id", "to": "properties.campaign_id", "type": "string"},
    {"from": "campaign_name", "to": "properties.campaign_name", "type": "string"},
    {"from": "esp_message_id", "to": "properties.email_id", "type": "string"},
    {"from": "url", "to": "properties.url", "type": "string"},
]}

WEBHOOK_MAPPINGS = {"notes": NOTES_MAPPING, "email": EMAIL_MAPPING}

# Standardization of each demo source (ingestion.services.transforms), installed when a source has none.
_PERSON_STEPS = [
    {"op": "trim", "fields": ["traits.*"], "collapse": True},
    {"op": "email", "fields": ["traits.email"]},
    {"op": "phone", "fields": ["traits.phone"]},
    {"op": "name", "fields": ["traits.first_name", "traits.last_name"]},
    {"op": "country", "fields": ["traits.country"]},
]
DEMO_TRANSFORMS = {
    "crm": [*_PERSON_STEPS,
            {"op": "age_band", "field": "traits.birth_date", "to": "traits.age_band"}],
    "shop": [*_PERSON_STEPS,
             {"op": "age_band", "field": "traits.birth_date", "to": "traits.age_band", "types": ["identify"]}],
    "web": [{"op": "email", "fields": ["traits.email"]}],
    "notes": [{"op": "email", "fields": ["traits.email"]}, {"op": "phone", "fields": ["traits.phone"]}],
    "email": [{"op": "email", "fields": ["traits.email"]}],
}

# What an event keeps of its message's context in bulk loads (the rest, such as the user agent, is left out to
# keep a 20-million-event table at a sensible size).
BULK_CONTEXT_KEYS = ("locale", "consent", "traits", "externalIds")

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class DemoError(Exception):
    """The demo cannot be loaded as asked; the message says why."""


@dataclass
class LoadSummary:
    people: int = 0
    records: int = 0
    stored: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    mode: str = "pipeline"

    def add(self, slug: str, *, stored: int = 0, duplicates: int = 0, rejected: int = 0) -> None:
        self.stored[slug] = self.stored.get(slug, 0) + stored
        self.duplicates[slug] = self.duplicates.get(slug, 0) + duplicates
        self.rejected[slug] = self.rejected.get(slug, 0) + rejected


# --- sources -----------------------------------------------------------------------------------------------------


def demo_sources_ensure() -> dict[str, Source]:
    """The demo's sources by key, created when missing (found by slug, so this is idempotent), with their
    webhook mappings and transformations when they have none yet."""
    from ingestion.services.connectors import WebhookConfig, webhook_settings_save

    sources = {}
    for key, spec in DEMO_SOURCES.items():
        source = Source.objects.filter(slug=spec["slug"]).first()
        if source is None:
            source, _ = source_create(name=spec["name"], kind=spec["kind"], slug=spec["slug"],
                                      channel=spec["channel"], settings=dict(spec["settings"]))
        if key in WEBHOOK_MAPPINGS and not WebhookConfig.of(source).mapping:
            webhook_settings_save(source=source, mapping=WEBHOOK_MAPPINGS[key])
            source.refresh_from_db()
        if not SourceTransformation.objects.filter(source=source).exists():
            transformation_save(source=source, steps=DEMO_TRANSFORMS[key])
        sources[key] = source
    return sources


# --- through the pipeline ----------------------------------------------------------------------------------------


def demo_load(*, profiles: int, seed: int = 42, now: datetime | None = None, progress: Progress | None = None,
              batch: int = BATCH, import_wait_seconds: float = 10.0) -> LoadSummary:
    """Generate ``profiles`` people and send their records through the real sources, imports and pipeline."""
    started = time.monotonic()
    now = now or timezone.now()
    purposes_install()
    sources = demo_sources_ensure()
    summary = LoadSummary(people=profiles)

    _crm_import(profiles=profiles, seed=seed, now=now, source=sources["crm"], summary=summary, progress=progress,
                wait_seconds=import_wait_seconds)

    from ingestion.services.connectors import webhook_receive

    buffers: dict[str, list] = {"web": [], "shop": [], "notes": [], "email": []}

    def flush(key: str) -> None:
        records = buffers[key]
        if not records:
            return
        source = sources[key]
        if key in WEBHOOK_MAPPINGS:
            result = webhook_receive(source=source, body=records)
            summary.add(source.slug, stored=result.stored, duplicates=result.duplicates, rejected=result.rejected)
        else:
            result = inbox_store(source=source, messages=records)
            summary.add(source.slug, stored=result.stored, duplicates=result.duplicates, rejected=result.rejected)
        buffers[key] = []

    for person in demo_people(profiles=profiles, seed=seed, now=now):
        summary.records += person.record_count - len(person.crm)
        for key, records in buffers.items():
            records.extend(getattr(person, key))
            if len(records) >= batch:
                flush(key)
        if progress:
            progress("sending", person.index + 1, profiles)
    for key in buffers:
        flush(key)
    if progress:
        progress("processing", 0, 0)
    pipeline.inbox_process_pending()
    summary.seconds = time.monotonic() - started
    return summary


def crm_file_name(*, seed: int, profiles: int) -> str:
    return f"crm-export-seed{seed}-{profiles}.csv"


def crm_write(path: Path, *, profiles: int, seed: int, now: datetime, progress: Progress | None = None) -> int:
    """The CRM export of the demo people, as a semicolon-separated UTF-8 file. Returns its row count."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CRM_COLUMNS, delimiter=";")
        writer.writeheader()
        for person in demo_people(profiles=profiles, seed=seed, now=now):
            writer.writerows(person.crm)
            rows += len(person.crm)
            if progress:
                progress("CRM export", person.index + 1, profiles)
    return rows


def _crm_import(*, profiles, seed, now, source, summary, progress, wait_seconds) -> None:
    from ingestion.services.imports import import_configure, import_create, import_run, import_start

    name = crm_file_name(seed=seed, profiles=profiles)
    if Import.objects.filter(source=source, original_name=name, status=Import.Status.DONE).exists():
        return  # this export was imported before; importing it again would only repeat its identify calls
    with tempfile.TemporaryDirectory(prefix="cdp-demo-") as folder:
        path = Path(folder) / name
        summary.records += crm_write(path, profiles=profiles, seed=seed, now=now, progress=progress)
        with path.open("rb") as handle:
            imp = import_create(source=source, upload=handle, filename=name)
    if imp.blocking_problems:
        raise DemoError(f"The CRM export could not be read: {imp.blocking_problems[0]['message']}")
    imp = import_configure(imp=imp, mapping=CRM_MAPPING)
    if progress:
        progress("CRM import", 0, 0)
    imp = import_start(imp=imp)
    imp.refresh_from_db()
    # Without a broker the task ran eagerly on commit (inside a caller's transaction it waits for that commit:
    # run it here). With a broker a worker runs it; if none takes it within ``wait_seconds``, run it here.
    if imp.status == Import.Status.QUEUED and not (settings.CELERY_TASK_ALWAYS_EAGER or connection.in_atomic_block):
        deadline = time.monotonic() + wait_seconds
        while imp.status == Import.Status.QUEUED and time.monotonic() < deadline:
            time.sleep(0.5)
            imp.refresh_from_db()
    if imp.status == Import.Status.QUEUED:
        imp = import_run(import_id=imp.pk) or imp
    while imp.is_active:  # a worker is on it
        time.sleep(0.5)
        imp.refresh_from_db()
    if imp.status != Import.Status.DONE:
        raise DemoError(f"The CRM import ended {imp.get_status_display().lower()}: {imp.error}")
    summary.add(source.slug, stored=imp.rows_stored, duplicates=imp.rows_duplicate, rejected=imp.rows_failed)


# --- in bulk -----------------------------------------------------------------------------------------------------


@dataclass
class BulkCounts:
    profiles: int = 0
    identities: int = 0
    events: int = 0
    consent_records: int = 0

    def __iadd__(self, other: BulkCounts) -> BulkCounts:
        for name in ("profiles", "identities", "events", "consent_records"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


class _Table:
    """Rows of one model as tuples of ``given`` fields; the model's other columns get their defaults (so a column
    added later does not break the bulk path)."""

    def __init__(self, model: type[models.Model], given: list[str]):
        self.model = model
        by_name = {f.attname: f for f in model._meta.concrete_fields}
        self.given = given
        self.fields = [by_name[name] for name in given]
        self.extra = []
        for f in model._meta.concrete_fields:
            if f.attname in given or f.primary_key or f.generated:
                continue  # a generated column (Profile.search_text) is computed by the database
            value = f.get_default()  # the declared default, "" for text, None otherwise
            if value is None and not f.null:
                raise DemoError(f"{model._meta.label}.{f.name} has no default; the bulk loader needs to know it.")
            self.extra.append((f, value))
        self.json_positions = [i for i, f in enumerate(self.fields + [f for f, _ in self.extra])
                               if isinstance(f, models.JSONField)]
        self.columns = [f.column for f in self.fields] + [f.column for f, _ in self.extra]
        self.extra_values = tuple(value for _, value in self.extra)

    def write(self, rows: list[tuple]) -> int:
        if not rows:
            return 0
        if connection.vendor == "postgresql":
            table = connection.ops.quote_name(self.model._meta.db_table)
            columns = ", ".join(connection.ops.quote_name(c) for c in self.columns)
            json_positions = self.json_positions
            with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    values = list(row + self.extra_values)
                    for i in json_positions:
                        values[i] = json.dumps(values[i], ensure_ascii=False, separators=(",", ":"))
                    copy.write_row(values)
        else:
            names = self.given + [f.attname for f, _ in self.extra]
            objects = [self.model(**dict(zip(names, row + self.extra_values, strict=True))) for row in rows]
            self.model.objects.bulk_create(objects, batch_size=500)
        return len(rows)


def _bulk_tables() -> dict[str, _Table]:
    return {
        "profile": _Table(Profile, ["id", "created_at", "updated_at", "first_seen_at", "last_seen_at", "traits"]),
        "identity": _Table(Identity, ["profile_id", "type", "value", "source", "first_seen_at", "last_seen_at"]),
        "event": _Table(Event, ["profile_id", "type", "name", "channel", "properties", "context", "timestamp",
                                "received_at", "source", "message_id"]),
        "consent": _Table(ConsentRecord, ["profile_id", "purpose_id", "status", "source", "proof", "recorded_at"]),
    }


def _reserve_profile_ids(count: int) -> int | list[int]:
    """Ids for ``count`` new profiles: taken from the table's sequence on PostgreSQL (safe with concurrent
    writers), after the highest id on SQLite (whose write lock this transaction holds)."""
    table = Profile._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [table, count])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"UPDATE {connection.ops.quote_name(table)} SET id = id WHERE 0")  # take the write lock
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
        base = cursor.fetchone()[0] + 1
        return list(range(base, base + count))


def _parse(ms_iso: str) -> datetime:
    return datetime.fromisoformat(ms_iso[:-1]).replace(tzinfo=UTC)


def _web_event(profile_id: int, message: dict, source) -> tuple:
    """The event processing makes of a website or shop message (without transformations), as a row."""
    kind = message["type"]
    if kind == "identify":
        name, properties = "", message.get("traits") or {}
    else:
        name, properties = message.get("event") or message.get("name") or "", message.get("properties") or {}
    raw = message.get("context") or {}
    context = {key: raw[key] for key in BULK_CONTEXT_KEYS if key in raw}
    if "page" in raw:
        context["page"] = {"path": raw["page"].get("path")}
    at = _parse(message["timestamp"])
    return (profile_id, kind, name, source.channel, properties, context, at, at + _RECEIVED_AFTER, source.slug,
            message["messageId"])


def _record_event(profile_id: int, source, *, kind: str, name: str, properties: dict, traits: dict,
                  record_id: str, collection: str, at: str, message_id: str) -> tuple:
    """The event a mapped record (CRM row, webhook record) becomes, as a row."""
    context = {"externalIds": [{"id": record_id, "type": source.slug, "collection": collection,
                                "encoding": "none"}]}
    if traits:
        context["traits"] = traits
    moment = _parse(at)
    return (profile_id, kind, name, source.channel, properties, context, moment, moment + _RECEIVED_AFTER,
            source.slug, message_id)


_RECEIVED_AFTER = timedelta(seconds=1)
_CRM_TRAITS = ("customer_no", "first_name", "last_name", "email", "phone", "street", "postcode", "city", "country",
               "birth_date", "membership")
_NOTE_PROPERTIES = ("note", "subject", "language", "channel", "agent", "ticket_id", "customer_no")


def _bulk_person(person: DemoPerson, profile_id: int, sources: dict, purposes: dict[str, int],
                 loaded_at: datetime) -> tuple[tuple, list[tuple], list[tuple], list[tuple]]:
    """A person as rows: (profile, identities, events, consent records). The events are what processing makes
    of the same records (names, properties, message ids; the context cut to BULK_CONTEXT_KEYS); the identities
    are all of the person's, on one profile."""
    truth = person.truth
    events: list[tuple] = []
    identities: dict[tuple[str, str], str] = {}
    crm, web, shop, notes, email = (sources[k] for k in ("crm", "web", "shop", "notes", "email"))

    for row in person.crm:
        traits = {key: row[key] for key in _CRM_TRAITS if row[key]}
        traits["customer_since"] = row["created_at"][:10]
        events.append(_record_event(profile_id, crm, kind="identify", name="", properties=traits, traits={},
                                    record_id=row["customer_no"], collection="crm-export.csv",
                                    at=row["updated_at"], message_id=f"crm-{row['customer_no']}"))
        identities.setdefault(("record", f"{crm.slug}:{row['customer_no']}"), crm.slug)
        if row["email"]:
            identities.setdefault(("email", row["email"].lower()), crm.slug)
        if row["phone"]:
            identities.setdefault(("phone", truth["phone"]), crm.slug)
    for message in person.web:
        events.append(_web_event(profile_id, message, web))
        identities.setdefault(("anonymous_id", message["anonymousId"]), web.slug)
        if "userId" in message:
            identities.setdefault(("user_id", message["userId"]), web.slug)
    for message in person.shop:
        events.append(_web_event(profile_id, message, shop))
        if "userId" in message:
            identities.setdefault(("user_id", message["userId"]), shop.slug)
        if "anonymousId" in message:
            identities.setdefault(("anonymous_id", message["anonymousId"]), shop.slug)
        traits = message.get("traits") or message["context"].get("traits") or {}
        if traits.get("phone"):
            identities.setdefault(("phone", truth["phone"]), shop.slug)
    if person.web or person.shop:
        identities.setdefault(("email", truth["email"]), (web if person.web else shop).slug)
    for record in person.notes:
        traits = {key: record[key] for key in ("email", "phone") if key in record}
        properties = {key: record[key] for key in _NOTE_PROPERTIES if key in record}
        properties.update(event_sentiment(properties) or {})  # as the pipeline's event write adds it
        events.append(_record_event(
            profile_id, notes, kind="track", name=NOTE_EVENT, traits=traits, record_id=record["contact_id"],
            properties=properties, collection="webhook",
            at=record["created_at"], message_id=record["ticket_id"]))
        identities.setdefault(("record", f"{notes.slug}:{record['contact_id']}"), notes.slug)
        if "phone" in record:
            identities.setdefault(("phone", truth["phone"]), notes.slug)
    for record in person.email:
        properties = {"email_id": record["esp_message_id"]}
        for key in ("campaign_id", "campaign_name", "url"):
            if key in record:
                properties[key] = record[key]
        events.append(_record_event(
            profile_id, email, kind="track", name=record["event"], properties=properties,
            traits={"email": record["email"]}, record_id=record["contact_id"], collection="webhook",
            at=record["timestamp"], message_id=record["event_id"]))
        identities.setdefault(("record", f"{email.slug}:{record['contact_id']}"), email.slug)
    if person.notes or person.email:
        identities.setdefault(("email", truth["email"]), (email if person.email else notes).slug)

    times = [e[6] for e in events]
    first, last = min(times), max(times)
    traits = {k: truth[k] for k in ("first_name", "last_name", "email", "street", "postcode", "city", "country")}
    if any(kind == "phone" for kind, _ in identities):
        traits["phone"] = truth["phone"]
    if person.crm:
        traits["customer_no"] = person.crm[0]["customer_no"]
        traits["birth_date"] = truth["birth_date"]
        if person.crm[0]["membership"]:
            traits["membership"] = person.crm[0]["membership"]
    profile = (profile_id, loaded_at, loaded_at, first, last, traits)
    identity_rows = [(profile_id, kind, value, slug, first, last) for (kind, value), slug in identities.items()]
    consent_rows = []
    if truth["consent"] is not None and person.web:
        decided = _parse(person.web[0]["timestamp"])
        proof = {"categoryPreferences": truth["consent"], "messageId": person.web[0]["messageId"]}
        for key, granted in truth["consent"].items():
            consent_rows.append((profile_id, purposes[key], "granted" if granted else "denied", web.slug, proof,
                                 decided))
        unsubscribed = [r for r in person.email if r["event"] == "Email Unsubscribed"]
        if unsubscribed and truth["consent"]["email_marketing"]:
            consent_rows.append((profile_id, purposes["email_marketing"], "withdrawn", email.slug,
                                 {"event_id": unsubscribed[0]["event_id"]}, _parse(unsubscribed[0]["timestamp"])))
    return profile, identity_rows, events, consent_rows


def _bulk_chunk(args: tuple) -> BulkCounts:
    """Generate and write persons ``start`` to ``stop`` in one transaction (a worker process runs this too)."""
    start, stop, seed, now_iso, source_specs, purposes = args
    now = datetime.fromisoformat(now_iso)
    clock = Clock.at(now)
    sources = {key: SimpleNamespace(slug=slug, channel=channel) for key, (slug, channel) in source_specs.items()}
    tables = _bulk_tables()
    counts = BulkCounts()
    loaded_at = timezone.now()
    with transaction.atomic():
        ids = _reserve_profile_ids(stop - start)
        profiles, identities, events, consents = [], [], [], []
        for offset, index in enumerate(range(start, stop)):
            person = person_generate(seed=seed, index=index, clock=clock)
            profile, identity_rows, event_rows, consent_rows = _bulk_person(person, ids[offset], sources, purposes,
                                                                            loaded_at)
            profiles.append(profile)
            identities.extend(identity_rows)
            events.extend(event_rows)
            consents.extend(consent_rows)
        counts.profiles = tables["profile"].write(profiles)
        counts.identities = tables["identity"].write(identities)
        counts.events = tables["event"].write(events)
        counts.consent_records = tables["consent"].write(consents)
    return counts


def _bulk_worker_init() -> None:
    # A forked worker opens its own database connection (the parent closed its own before forking).
    connections.close_all()


def demo_load_bulk(*, profiles: int, seed: int = 42, now: datetime | None = None, progress: Progress | None = None,
                   chunk: int = 1000, jobs: int = 1) -> tuple[LoadSummary, BulkCounts]:
    """Write ``profiles`` demo people directly as profiles, identities, events and consent records."""
    started = time.monotonic()
    now = now or timezone.now()
    purposes = {p.key: p.pk for p in purposes_install()}
    sources = demo_sources_ensure()
    first = person_generate(seed=seed, index=0, clock=Clock.at(now))
    if Identity.objects.filter(type="email", value=first.truth["email"]).exists():
        raise DemoError(f"The demo people of seed {seed} are loaded already; use another --seed or an empty "
                        "database for a bulk load.")
    source_specs = {key: (s.slug, s.channel) for key, s in sources.items()}
    ranges = [(start, min(start + chunk, profiles)) for start in range(0, profiles, chunk)]
    tasks = [(start, stop, seed, now.isoformat(), source_specs, purposes) for start, stop in ranges]
    total = BulkCounts()
    done = 0
    if connection.vendor != "postgresql":
        jobs = 1  # SQLite has one writer
    if jobs > 1 and len(tasks) > 1:
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, initializer=_bulk_worker_init) as pool:
            for counts in pool.imap_unordered(_bulk_chunk, tasks):
                total += counts
                done += counts.profiles
                if progress:
                    progress("bulk", done, profiles)
    else:
        for task in tasks:
            counts = _bulk_chunk(task)
            total += counts
            done += counts.profiles
            if progress:
                progress("bulk", done, profiles)
    summary = LoadSummary(people=profiles, records=total.events, mode="bulk",
                          seconds=time.monotonic() - started)
    return summary, total


def demo_counts() -> dict[str, int]:
    """What the database holds now (for the summary at the end)."""
    statuses = dict(InboxMessage.objects.values_list("status").annotate(n=models.Count("id")).order_by())
    return {
        "profiles": Profile.objects.count(),
        "identities": Identity.objects.count(),
        "events": Event.objects.count(),
        "consent_records": ConsentRecord.objects.count(),
        "purposes": Purpose.objects.count(),
        "sources": Source.objects.count(),
        "inbox_pending": statuses.get(InboxMessage.Status.PENDING, 0),
        "inbox_processed": statuses.get(InboxMessage.Status.PROCESSED, 0),
        "inbox_rejected": statuses.get(InboxMessage.Status.REJECTED, 0),
    }


__all__ = ["BULK_CONTEXT_KEYS", "CRM_MAPPING", "DEMO_SOURCES", "EMAIL_MAPPING", "NOTES_MAPPING", "NOTE_EVENT",
           "BulkCounts", "DemoError", "LoadSummary", "crm_file_name", "crm_write", "demo_counts", "demo_load",
           "demo_load_bulk", "demo_sources_ensure"]
