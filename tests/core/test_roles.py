"""Roles defined in code: ``manage.py sync_roles`` makes the five groups match cdp.core.roles, every time."""

import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from cdp.core import roles
from cdp.core.services import _expand

pytestmark = pytest.mark.django_db


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {f"{p.content_type.app_label}.{p.codename}"
                     for p in group.permissions.select_related("content_type")}
        for group in Group.objects.all()
    }


def sync() -> str:
    out = io.StringIO()
    call_command("sync_roles", stdout=out)
    return out.getvalue()


def test_sync_roles_creates_the_five_groups_and_is_idempotent():
    first_output = sync()
    first = group_permissions()
    assert set(first) == {"Marketing", "Sales", "Service", "Privacy", "Admin"}
    second_output = sync()
    assert group_permissions() == first
    assert second_output == first_output
    assert Group.objects.count() == 5
    for name in first:
        assert f"{name}: {len(first[name])} permissions" in first_output


def test_sync_roles_takes_away_what_the_code_does_not_give():
    sync()
    marketing = Group.objects.get(name="Marketing")
    marketing.permissions.add(Permission.objects.get(content_type__app_label="core", codename="view_pii"))
    sync()
    assert "core.view_pii" not in group_permissions()["Marketing"]


def test_the_roles_get_their_intended_permissions():
    sync()
    perms = group_permissions()
    everything = {f"{p.content_type.app_label}.{p.codename}"
                  for p in Permission.objects.select_related("content_type")}
    assert perms["Admin"] == everything

    assert "core.view_pii" not in perms["Marketing"]
    assert "core.view_auditentry" not in perms["Marketing"]
    assert "profiles.view_profile" in perms["Marketing"]
    assert "segments.add_segment" in perms["Marketing"]

    assert "core.view_pii" in perms["Sales"]
    assert "segments.add_segment" not in perms["Sales"]

    assert "core.view_pii" in perms["Service"]
    assert "consent.add_consentrecord" in perms["Service"]

    assert "core.view_auditentry" in perms["Privacy"]
    assert "core.view_pii" in perms["Privacy"]

    for role in ("Marketing", "Sales", "Service", "Privacy"):
        assert not any(p.startswith(("auth.", "admin.", "authtoken.")) for p in perms[role]), role
        assert "core.delete_auditentry" not in perms[role]
        assert "core.change_auditentry" not in perms[role]


def test_users_get_the_permissions_of_their_role(make_user):
    marketing, sales, privacy = make_user("Marketing"), make_user("Sales"), make_user("Privacy")
    assert not marketing.has_perm("core.view_pii")
    assert sales.has_perm("core.view_pii")
    assert privacy.has_perm("core.view_auditentry")
    assert not make_user(None).has_perm("profiles.view_profile")


def test_every_permission_spec_of_every_role_matches_a_permission():
    permissions = list(Permission.objects.values_list("content_type__app_label", "codename", "pk"))
    for name, role in roles.ROLES.items():
        assert role["description"], name
        for spec in role["permissions"]:
            assert _expand(spec, permissions), f"role {name}: {spec} matches no permission (a typo?)"
