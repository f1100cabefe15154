"""What the 360° profile page and the profile API show from higher layers. cdp imports no app and profiles must
not import consent or segments, so those apps register a panel from ``AppConfig.ready()``:

    profile_panels.register(profile_panels.Panel(
        key="consent", title="Consent", template="consent/_profile_consent.html",
        context=lambda profile, user: {"state": consent_state(profile=profile)},
        data=lambda profile, user: {...},          # optional: the JSON the profile API shows under ``key``
        permission="consent.view_consentrecord", order=20))

The page renders each panel the user may see (``permission``) with its template and context; the profile API
adds ``data(profile, user)`` of the panels whose key it documents (``segments``, ``consent``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ContextFunction = Callable[[Any, Any], dict]
DataFunction = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    template: str
    context: ContextFunction
    permission: str | None = None
    data: DataFunction | None = None
    order: int = 100


_panels: dict[str, Panel] = {}


def register(panel: Panel) -> None:
    """Register (or replace, on a reload) a panel."""
    _panels[panel.key] = panel


def panels_for(user) -> list[Panel]:
    return sorted((p for p in _panels.values() if not p.permission or user.has_perm(p.permission)),
                  key=lambda p: (p.order, p.key))


def render_context(profile, user) -> list[dict]:
    """The panels ``user`` may see, each with its title, template and context, in order."""
    return [{"key": p.key, "title": p.title, "template": p.template, "context": p.context(profile, user)}
            for p in panels_for(user)]


def panel_data(key: str, profile, user, default=None):
    """The API data of panel ``key`` for ``user``: ``default`` when no app registered it, it has no data function
    or the user lacks its permission."""
    panel = _panels.get(key)
    if panel is None or panel.data is None or (panel.permission and not user.has_perm(panel.permission)):
        return default
    return panel.data(profile, user)


# --- Actions on the profile list ----------------------------------------------------------------------------------
# Buttons of the profile list that act on the profiles its current filters find ("Save as segment"). The list links
# to ``url_name`` with its filters in the query string; apps register them from ``AppConfig.ready()``.


@dataclass(frozen=True)
class ListAction:
    key: str
    label: str
    url_name: str
    permission: str | None = None
    order: int = 100


_list_actions: dict[str, ListAction] = {}


def register_list_action(action: ListAction) -> None:
    _list_actions[action.key] = action


def list_actions_for(user) -> list[ListAction]:
    return sorted((a for a in _list_actions.values() if not a.permission or user.has_perm(a.permission)),
                  key=lambda a: (a.order, a.key))
