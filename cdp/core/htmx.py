"""htmx helpers: a normal request gets the full page, an htmx request the partial; writes answer with
HX-Trigger events that the lists listen to, and a toast."""

import json

from django.contrib import messages
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers


def render_page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    """Render ``template``; for an htmx request that is not a boosted page load (nor htmx restoring a page from
    history, which needs the whole page), only ``template#partial``. The answer varies by HX-Request, so that a
    browser never shows a cached partial as a page (the lists push their URL into the history)."""
    htmx = request.htmx
    if partial and htmx and not htmx.boosted and not htmx.history_restore_request:
        template = f"{template}#{partial}"
    response = TemplateResponse(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def trigger(response, events: dict | None = None, *, toast: str | None = None, level: str = "success"):
    """Add HX-Trigger events (merged with any already set) and a toast. Without htmx the toast becomes a
    Django message, shown on the next page."""
    payload = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
    payload.update(events or {})
    if toast:
        payload["toast"] = {"level": level, "message": toast}
    if payload:
        response.headers["HX-Trigger"] = json.dumps(payload)
    return response


def notify(request, response, message: str, *, level: str = "success", events: dict | None = None):
    """A toast for htmx requests, a flashed message for plain ones."""
    if request.htmx:
        return trigger(response, events, toast=message, level=level)
    getattr(messages, level if level in {"success", "info", "warning", "error"} else "info")(request, message)
    return response
