from django.urls import reverse

from cdp.core.masking import can_view_pii

# The areas of the UI: (label, url name, permission needed to see the link).
NAVIGATION = [
    ("Dashboard", "dashboard", None),
    ("Profiles", "profiles:list", "profiles.view_profile"),
    ("Sources", "ingestion:source-list", "ingestion.view_source"),
    ("Segments", "segments:list", "segments.view_segment"),
    ("Activation", "activation:list", "activation.view_activation"),
    ("Privacy", "consent:dashboard", "consent.view_purpose"),
    ("Audit log", "audit-log", "core.view_auditentry"),
]


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "can_view_pii": False}
    path = request.path
    items = []
    for label, url_name, permission in NAVIGATION:
        if permission and not user.has_perm(permission):
            continue
        url = reverse(url_name)
        active = path == url if url == "/" else path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return {"nav_items": items, "can_view_pii": can_view_pii(user)}
