"""Token authentication for systems, with a short per-process cache.

Websites call the personalization API for every page they show, with one integration user's token. Looking up
the token, its user and the user's permissions costs three queries per request, and they rarely change, so each
process keeps a token's user, with its permissions loaded, for ``TOKEN_CACHE_SECONDS``.

A change reaches the process that made it at once (the receivers below forget every cached token) and the other
processes within ``TOKEN_CACHE_SECONDS``: a deleted token, a deactivated user or a changed role stops working
within that time everywhere. An unknown token is never cached (every try asks the database).
"""

from __future__ import annotations

import copy
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

TOKEN_CACHE_SECONDS = 10.0
# More tokens than this in one process's cache and it starts again (a bound, not an LRU: systems use few tokens).
TOKEN_CACHE_SIZE = 1_000

_tokens: dict[str, tuple[float, object, Token]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication (``Authorization: Token <key>``) with the token's user and permissions cached."""

    def authenticate_credentials(self, key):
        now = time.monotonic()
        cached = _tokens.get(key)
        if cached is None or cached[0] <= now:
            user, token = super().authenticate_credentials(key)  # unknown key or inactive user: AuthenticationFailed
            user.get_all_permissions()  # fills the backend's permission caches on the instance
            if len(_tokens) >= TOKEN_CACHE_SIZE:
                _tokens.clear()
            cached = _tokens[key] = (now + TOKEN_CACHE_SECONDS, user, token)
        # A copy per request: a view that sets an attribute on request.user does not change the cached one (the
        # permission sets are shared; nothing writes to them).
        return copy.copy(cached[1]), cached[2]


def tokens_forget(**kwargs) -> None:
    """Forget every cached token of this process (a token, user, group or permission changed)."""
    _tokens.clear()


def connect_receivers() -> None:
    user_model = get_user_model()
    for model in (Token, user_model, Group):
        post_save.connect(tokens_forget, sender=model, dispatch_uid=f"tokens_forget_save_{model._meta.label}")
        post_delete.connect(tokens_forget, sender=model, dispatch_uid=f"tokens_forget_delete_{model._meta.label}")
    for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(tokens_forget, sender=through, dispatch_uid=f"tokens_forget_m2m_{through._meta.label}")
