"""The Segment-compatible Tracking API, mounted at /v1/ (with or without a trailing slash)."""

from django.urls import re_path

from ingestion.api import tracking

app_name = "tracking"
urlpatterns = [
    re_path(rf"^{name}/?$", getattr(tracking, name), name=name)
    for name in ("identify", "track", "page", "screen", "group", "alias", "batch")
]

# Webhook sources (helper "connectors": ingestion/api/webhooks.py): any JSON, mapped by the source's field mapping.
from ingestion.api import webhooks  # noqa: E402

urlpatterns.append(re_path(r"^webhook/(?P<slug>[-a-zA-Z0-9_]+)/?$", webhooks.webhook, name="webhook"))
