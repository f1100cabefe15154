"""The retention registry: how old data of each category is deleted.

Retention policies (kept by consent) say how long each category of data is kept: events (optionally by type),
inbox messages, delivery logs, audit entries. The tables belong to different apps, so each app registers, from
its ``AppConfig.ready()``, a handler that deletes one batch of its category older than a time; the nightly run in
consent calls them until nothing older is left. ``cdp`` imports no app, as with the personal-data registry.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

# (before, scope, limit) -> rows deleted, at most ``limit``; scope "" means the whole category.
DeleteBatch = Callable[[datetime, str, int], int]


@dataclass(frozen=True)
class RetentionHandler:
    category: str
    label: str
    delete_batch: DeleteBatch
    scope_label: str = ""  # what a scope is ("Event type"); empty: the category has no scopes
    scopes: tuple[str, ...] = ()  # the scopes to offer (free text is allowed too when scope_label is set)


_handlers: dict[str, RetentionHandler] = {}


def register(category: str, *, label: str, delete_batch: DeleteBatch, scope_label: str = "",
             scopes: tuple[str, ...] | list[str] = ()) -> None:
    """Register (or replace, on a reload) the handler of one category."""
    _handlers[category] = RetentionHandler(category, label, delete_batch, scope_label, tuple(scopes))


def handlers() -> list[RetentionHandler]:
    return sorted(_handlers.values(), key=lambda handler: handler.label)


def handler_for(category: str) -> RetentionHandler | None:
    return _handlers.get(category)


def delete_oldest(queryset, *, limit: int) -> int:
    """Delete up to ``limit`` rows of ``queryset`` (already filtered to what is old enough) by primary key: one
    short statement per batch, on any database. Returns the rows of the queryset's model deleted."""
    ids = list(queryset.order_by().values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    return queryset.model._base_manager.filter(pk__in=ids).delete()[1].get(queryset.model._meta.label, 0)


def audit_delete_batch(before: datetime, scope: str, limit: int) -> int:
    """The audit log's own handler: entries are append-only, and only ``purge()`` removes them."""
    from cdp.core.models import AuditEntry

    ids = list(AuditEntry.objects.filter(at__lt=before).order_by().values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    return AuditEntry.objects.filter(pk__in=ids).purge()[1].get(AuditEntry._meta.label, 0)
