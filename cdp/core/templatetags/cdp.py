from django import template

from cdp.core.masking import mask_for

register = template.Library()


@register.simple_tag(takes_context=True)
def pii(context, value, kind="text"):
    """``{% pii profile.email "email" %}``: the value, masked unless the user may see personal data."""
    request = context.get("request")
    return mask_for(getattr(request, "user", None), value, kind)
