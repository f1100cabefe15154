import fnmatch
import logging

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from cdp.core.models import AuditEntry
from cdp.core.roles import ROLES

logger = logging.getLogger(__name__)


def _client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor,
    action: str,
    object_type: str,
    object_id: str | int = "",
    profile_id: int | None = None,
    summary: str = "",
    fields: list[str] | tuple[str, ...] = (),
    request=None,
) -> AuditEntry:
    """Append one entry to the audit log. ``fields`` names what was seen or changed, never the values."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        profile_id=profile_id,
        summary=summary[:255],
        fields=list(fields),
        ip_address=_client_ip(request),
        path=(request.path[:255] if request is not None else ""),
    )


def _expand(spec: str, permissions: list[tuple[str, str, int]]) -> set[int]:
    if spec == "*":
        return {pk for _, _, pk in permissions}
    app_label, _, pattern = spec.partition(".")
    return {pk for label, codename, pk in permissions if label == app_label and fnmatch.fnmatchcase(codename, pattern)}


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the groups of cdp.core.roles and give each exactly its permissions. Returns the count per group."""
    permissions = list(Permission.objects.values_list("content_type__app_label", "codename", "pk"))
    counts = {}
    for name, role in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted: set[int] = set()
        for spec in role["permissions"]:
            matched = _expand(spec, permissions)
            if not matched:
                logger.warning("Role %s: permission spec %s matches no permission", name, spec)
            wanted |= matched
        group.permissions.set(wanted)
        counts[name] = len(wanted)
    return counts
