"""The Segment-compatible Tracking API, mounted at /v1/ (with or without a trailing slash)."""

from django.urls import re_path

from ingestion.api import tracking

app_name = "tracking"
urlpatterns = [
    re_path(rf"^{name}/?$", getattr(tracking, name), name=name)
    for name in ("identify", "track", "page", "screen", "group", "alias", "batch")
]
