"""One permission mixin for every UI view and API view.

A view says what it needs in ``permission_required``: one permission, a tuple of them, or a dict with the keys
"read" and "write" (safe and unsafe methods). A view on a model that says nothing needs the model's view
permission to read, and its add/change/delete permission to write, by method.
"""

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WRITE_ACTIONS = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}


def _as_tuple(perms) -> tuple[str, ...]:
    if perms is None:
        return ()
    if isinstance(perms, str):
        return (perms,)
    return tuple(perms)


class PermissionMixin:
    permission_required: str | tuple[str, ...] | dict[str, str | tuple[str, ...]] | None = None

    def _permission_model(self):
        model = getattr(self, "model", None)
        if model is None:
            queryset = getattr(self, "queryset", None)
            model = getattr(queryset, "model", None)
        return model

    def get_permission_required(self, request) -> tuple[str, ...]:
        method = request.method.upper()
        required = self.permission_required
        if isinstance(required, dict):
            return _as_tuple(required.get("read" if method in SAFE_METHODS else "write"))
        if required is not None:
            return _as_tuple(required)
        model = self._permission_model()
        if model is None:
            raise ImproperlyConfigured(f"{type(self).__name__} needs permission_required or a model.")
        meta = model._meta
        action = "view" if method in SAFE_METHODS else WRITE_ACTIONS.get(method, "change")
        return (f"{meta.app_label}.{action}_{meta.model_name}",)

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active
                    and user.has_perms(self.get_permission_required(request)))


class RolePermission(BasePermission):
    """DRF's side of the mixin: every API view is a PermissionMixin, and this asks it."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(view, PermissionMixin):
            # Only the schema and docs views of drf-spectacular land here; they need a login and nothing more.
            return bool(request.user and request.user.is_authenticated)
        return view.has_permission(request)
