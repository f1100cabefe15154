"""Template tags and filters of the UI. This library is a builtin (settings.TEMPLATES), no ``{% load %}`` needed."""

import copy
import json

from django import forms, template

from cdp.core.masking import (
    PII_KINDS,
    SENSITIVE,
    can_view_pii,
    is_sealed,
    mask,
    mask_data,
    mask_for,
    reveal,
    trait_kind,
)

register = template.Library()

# The label of "no choice" in filter forms ("---------" and "Unknown" are Django's defaults).
ANY_LABEL = "Any"
_EMPTY_LABELS = {"---------", "Unknown"}


def _user(context):
    request = context.get("request")
    return getattr(request, "user", None)


@register.simple_tag(takes_context=True)
def pii(context, value, kind="text"):
    """``{% pii profile.email "email" %}``: the value, masked unless the user may see personal data."""
    return mask_for(_user(context), value, kind)


@register.filter
def pii_kind(name) -> str:
    """How a trait or identity named ``name`` is masked: ``{% pii identity.value identity.type|pii_kind %}``."""
    return trait_kind(str(name)) or "text"


def _display(value) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


@register.simple_tag(takes_context=True)
def masked_items(context, data):
    """``{% masked_items profile.traits as traits %}``: the (key, value) pairs of a dict, sorted by key, the
    personal and sensitive ones (cdp.core.masking.trait_kind, sealed values) masked unless the user may see personal
    data, sealed ones decrypted if they may. Each item has ``key``, ``value`` (text), ``pii`` (the key names
    personal data) and ``masked`` (the value is hidden)."""
    visible = can_view_pii(_user(context))
    items = []
    for key in sorted(data or {}, key=str):
        value = data[key]
        kind = trait_kind(key) or (SENSITIVE if is_sealed(value) else None)
        personal = kind is not None
        masked = personal and not visible and value not in (None, "")
        shown = mask(_display(value), kind) if masked else _display(reveal(value) if visible else mask_data(value))
        items.append({"key": key, "value": shown, "pii": personal, "masked": masked})
    return items


@register.simple_tag(takes_context=True)
def profile_label(context, profile) -> str:
    """A person's name for lists and headings: first and last name, else name, else email, each masked unless
    the user may see personal data; "Unnamed profile" when it has none of them (lists show the id beside it)."""
    traits = getattr(profile, "traits", None) or {}
    user = _user(context)
    parts = [mask_for(user, str(traits[key]), "name") for key in ("first_name", "last_name") if traits.get(key)]
    if parts:
        return " ".join(parts)
    for key in ("full_name", "name", "email"):
        if traits.get(key):
            return mask_for(user, str(traits[key]), PII_KINDS[key])
    return "Unnamed profile"


@register.filter
def series_rows(data) -> list[dict]:
    """A chart's {"labels": [...], "series": [{"label", "values"}]} as table rows: [{"label", "values"}]."""
    data = data or {}
    columns = [item.get("values", []) for item in data.get("series", [])]
    return [{"label": label, "values": [values[i] if i < len(values) else 0 for values in columns]}
            for i, label in enumerate(data.get("labels", []))]


@register.filter
def series_total(data) -> int:
    """The sum of every value of every series: 0 means there is nothing to draw yet."""
    return sum(sum(item.get("values", [])) for item in (data or {}).get("series", []))


@register.filter
def percent(part, whole) -> int:
    """``{{ granted|percent:decided }}``: a whole percentage, 0 when the whole is 0."""
    try:
        return round(100 * float(part) / float(whole)) if float(whole) else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def widget(bound_field):
    """Render a form field's widget for the UI: the CSS class, a date-time picker for date-time fields and
    "Any" for the empty choice of a filter's select (instead of "---------" / "Unknown")."""
    field_widget = copy.copy(bound_field.field.widget)
    attrs = {"class": f"input input-{bound_field.widget_type}"}
    if bound_field.errors:
        attrs["aria-invalid"] = "true"
        attrs["aria-describedby"] = f"{bound_field.auto_id}-errors"
    if bound_field.help_text and not bound_field.errors:
        attrs["aria-describedby"] = f"{bound_field.auto_id}-help"
    if isinstance(field_widget, forms.DateTimeInput):
        field_widget.input_type = "datetime-local"
    elif isinstance(field_widget, forms.DateInput):
        field_widget.input_type = "date"
    if isinstance(field_widget, forms.Select) and not isinstance(field_widget, forms.SelectMultiple):
        field_widget.choices = [(value, ANY_LABEL if value in ("", None, "unknown") and str(label) in _EMPTY_LABELS
                                 else label) for value, label in field_widget.choices]
    return bound_field.as_widget(widget=field_widget, attrs=attrs)


@register.filter
def page_links(page) -> list[dict]:
    """The page numbers to link to around the current one, with gaps: [{"number", "current", "gap"}]."""
    paginator = page.paginator
    links = []
    for number in paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1):
        if isinstance(number, int):
            links.append({"number": number, "current": number == page.number, "gap": False})
        else:
            links.append({"number": None, "current": False, "gap": True})
    return links
