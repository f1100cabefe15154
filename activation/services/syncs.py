"""Syncs: what an activation sends is the delta between the segment's members who may be activated for its purpose
and the last state sent (``SyncMember``: a hash of the mapped payload per profile). Added and changed members go
out in upsert batches, removed ones in removal batches; the first sync sends everything.

Reads are set-based: members with their consent in one query, read in chunks with one query for their computed
values each; the state in one query. The state is written when a delivery is delivered, so a batch that fails is
sent again by the next sync (and a batch still in flight is not sent a second time meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import OuterRef
from django.utils import timezone

from activation.destinations import kind_module
from activation.mapping import computed_keys, computed_value, payload_build, payload_hash
from activation.models import Activation, Delivery, DeliveryItem, Sync, SyncMember
from consent.selectors import consent_granted_exists, processing_restricted_exists
from profiles.models import ComputedValue, Profile

READ_CHUNK = 2000
DEFAULT_BATCH = 500
IN_FLIGHT = (Delivery.Status.PENDING, Delivery.Status.SENDING, Delivery.Status.RETRYING)


@dataclass
class Delta:
    members: int = 0
    skipped_consent: int = 0
    upserts: list[tuple[int, str, dict, str]] = field(default_factory=list)  # (profile, change, payload, hash)
    removals: list[tuple[int, dict, str]] = field(default_factory=list)  # (profile, last payload, its hash)

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.removals


def members_query(activation: Activation, profile_ids=None):
    """The segment's current members (live profiles), optionally only among ``profile_ids``."""
    members = Profile.objects.filter(merged_into__isnull=True, segment_memberships__segment_id=activation.segment_id,
                                     segment_memberships__exited_at__isnull=True)
    if profile_ids is not None:
        members = members.filter(pk__in=list(profile_ids))
    return members


def eligible_query(members, purpose_key: str):
    """Members who may be activated for the purpose: granted, and not frozen by a restriction or objection."""
    return (members.filter(consent_granted_exists(purpose_key=purpose_key, profile_ref=OuterRef("pk")))
            .exclude(processing_restricted_exists(profile_ref=OuterRef("pk"))))


def _payloads(activation: Activation, eligible):
    """(profile id, payload, hash) of each eligible member, in id order, read in chunks: one query for the rows and
    one for their computed values per chunk."""
    keys = computed_keys(activation.mapping)
    rows = eligible.order_by("pk").values("id", "traits", "created_at", "last_seen_at")
    chunk: list[dict] = []

    def flush():
        computed: dict[int, dict] = {}
        if keys:
            for pid, key, value_type, number, text, time in ComputedValue.objects.filter(
                    trait__key__in=keys, profile_id__in=[row["id"] for row in chunk]).values_list(
                    "profile_id", "trait__key", "trait__value_type", "value_number", "value_text", "value_time"):
                computed.setdefault(pid, {})[key] = computed_value(value_type, number, text, time)
        for row in chunk:
            payload = payload_build(activation.mapping, row, computed.get(row["id"], {}))
            yield row["id"], payload, payload_hash(payload)
        chunk.clear()

    for row in rows.iterator(chunk_size=READ_CHUNK):
        chunk.append(row)
        if len(chunk) >= READ_CHUNK:
            yield from flush()
    if chunk:
        yield from flush()


def delta_compute(activation: Activation, *, profile_ids=None, removals_only: bool = False) -> Delta:
    """The delta to send now; with ``profile_ids``, only among those profiles (real-time triggers, consent).
    Payloads are kept only for the members whose payload changed; the others leave just their id."""
    members = members_query(activation, profile_ids)
    eligible = eligible_query(members, activation.purpose.key)
    delta = Delta(members=members.count())
    state_rows = SyncMember.objects.filter(activation=activation)
    if profile_ids is not None:
        state_rows = state_rows.filter(profile_id__in=list(profile_ids))
    state = dict(state_rows.values_list("profile_id", "payload_hash"))
    in_flight: dict[int, tuple[str, str]] = {}
    for pid, change, item_hash in (DeliveryItem.objects.filter(
            delivery__activation=activation, delivery__status__in=IN_FLIGHT, profile_id__isnull=False)
            .order_by("id").values_list("profile_id", "change", "payload_hash")):
        in_flight[pid] = (change, item_hash)  # the latest one wins
    wanted: set[int] = set()
    for pid, payload, digest in _payloads(activation, eligible):
        wanted.add(pid)
        if removals_only or state.get(pid) == digest:
            continue
        flying = in_flight.get(pid)
        if flying and flying[0] != DeliveryItem.Change.REMOVED and flying[1] == digest:
            continue
        change = DeliveryItem.Change.CHANGED if pid in state else DeliveryItem.Change.ADDED
        delta.upserts.append((pid, change, payload, digest))
    delta.skipped_consent = delta.members - len(wanted)
    gone = [pid for pid in state if pid not in wanted]
    gone = [pid for pid in gone if (in_flight.get(pid) or ("",))[0] != DeliveryItem.Change.REMOVED]
    for start in range(0, len(gone), READ_CHUNK):  # chunks: SQLite limits the parameters of one statement
        delta.removals.extend(SyncMember.objects.filter(activation=activation,
                                                        profile_id__in=gone[start:start + READ_CHUNK])
                              .order_by("profile_id").values_list("profile_id", "payload", "payload_hash"))
    return delta


def batch_size(activation: Activation) -> int:
    destination = activation.destination
    if destination.kind == "audience_api":
        return kind_module("audience_api").batch_size(destination.config)
    if destination.kind == "file":
        return 50_000  # one file per action and sync, up to this many rows
    return DEFAULT_BATCH


def _deliveries_create(activation: Activation, sync: Sync, delta: Delta) -> list[int]:
    size = batch_size(activation)
    ids: list[int] = []
    groups = [(Delivery.Action.UPSERT, [(pid, change, payload, digest) for pid, change, payload, digest
                                        in delta.upserts])]
    if kind_module(activation.destination.kind).SUPPORTS_REMOVE:
        groups.append((Delivery.Action.REMOVE, [(pid, DeliveryItem.Change.REMOVED, payload, digest)
                                                for pid, payload, digest in delta.removals]))
    for action, rows in groups:
        for start in range(0, len(rows), size):
            part = rows[start:start + size]
            delivery = Delivery.objects.create(destination=activation.destination, activation=activation, sync=sync,
                                               action=action, item_count=len(part))
            DeliveryItem.objects.bulk_create(
                [DeliveryItem(delivery=delivery, profile_id=pid, change=change, payload=payload, payload_hash=digest)
                 for pid, change, payload, digest in part], batch_size=1000)
            ids.append(delivery.pk)
    return ids


def _enqueue(delivery_ids: list[int]) -> None:
    if delivery_ids:
        from activation.tasks import delivery_send

        transaction.on_commit(lambda: [delivery_send.delay(pk) for pk in delivery_ids])


@transaction.atomic
def sync_run(*, activation: Activation, trigger: str = Sync.Trigger.MANUAL, profile_ids=None,
             removals_only: bool = False, actor=None) -> Sync | None:
    """Compute the delta and queue its deliveries (each sent by its own task). A scheduled or manual sync always
    leaves a Sync with its counts; a scoped one (``profile_ids``: a real-time trigger or a consent change) only
    when there is something to send. Runs of one activation take turns (its row is locked)."""
    activation = Activation.objects.select_for_update().select_related("destination", "purpose").get(pk=activation.pk)
    now = timezone.now()
    if profile_ids is None:
        Activation.objects.filter(pk=activation.pk).update(last_sync_at=now)
    if not activation.enabled or not activation.destination.enabled:
        return None
    first = profile_ids is None and not SyncMember.objects.filter(activation=activation).exists()
    delta = delta_compute(activation, profile_ids=profile_ids, removals_only=removals_only)
    if profile_ids is not None and delta.empty:
        return None
    sync = Sync.objects.create(
        activation=activation, trigger=trigger, full=first, members=delta.members,
        skipped_consent=delta.skipped_consent, added=sum(1 for u in delta.upserts if u[1] == "added"),
        changed=sum(1 for u in delta.upserts if u[1] == "changed"), removed=len(delta.removals),
        started_by=actor if getattr(actor, "is_authenticated", False) else None)
    delivery_ids = _deliveries_create(activation, sync, delta)
    sync.deliveries_total = len(delivery_ids)
    sync.save(update_fields=["deliveries_total"])
    if not delivery_ids:
        sync_finish(sync=sync)
    _enqueue(delivery_ids)
    return sync


def sync_finish(*, sync: Sync) -> Sync:
    """Close a sync whose deliveries are all delivered or dead (no-op otherwise): its status from the counts, and
    the activation's last good sync."""
    sync.refresh_from_db()
    if sync.deliveries_done < sync.deliveries_total or sync.status != Sync.Status.RUNNING:
        return sync
    if sync.failed == 0:
        sync.status = Sync.Status.SUCCEEDED
    else:
        sync.status = Sync.Status.PARTIAL if sync.sent else Sync.Status.FAILED
    sync.finished_at = timezone.now()
    sync.save(update_fields=["status", "finished_at"])
    if sync.status == Sync.Status.SUCCEEDED and sync.trigger in (Sync.Trigger.MANUAL, Sync.Trigger.SCHEDULE):
        Activation.objects.filter(pk=sync.activation_id).update(last_good_sync_at=sync.started_at)
    return sync


def activations_due(*, now=None) -> list[int]:
    """Claim the activations whose schedule has come (hourly, daily; real-time ones get an hourly catch-up sync
    for anything a lost trigger missed): each claimed by a conditional update, so two beats never both run it."""
    from datetime import timedelta

    now = now or timezone.now()
    periods = {Activation.Schedule.HOURLY: timedelta(hours=1), Activation.Schedule.DAILY: timedelta(days=1),
               Activation.Schedule.REALTIME: timedelta(hours=1)}
    claimed = []
    for pk, schedule, last in (Activation.objects.filter(enabled=True, destination__enabled=True,
                                                         schedule__in=list(periods))
                               .values_list("pk", "schedule", "last_sync_at")):
        if last is not None and last > now - periods[schedule]:
            continue
        if Activation.objects.filter(pk=pk, last_sync_at=last).update(last_sync_at=now):
            claimed.append(pk)
    return claimed
