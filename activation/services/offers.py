"""Offers: what the personalization API proposes to the members of a segment who granted the offer's purpose."""

from __future__ import annotations

import math
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from activation.models import Offer
from activation.selectors.personalization import offers_cache_clear

# The content of an offer: (key, required, maximum length).
CONTENT_FIELDS = (("headline", True, 200), ("body", False, 2000), ("cta_url", True, 2000),
                  ("image_url", False, 2000))
URL_FIELDS = ("cta_url", "image_url")
MAX_PRODUCT_IDS = 50
MAX_EXPECTED_VALUE = 1_000_000
_url = URLValidator(schemes=["http", "https"])


class OfferInvalid(ValueError):
    """An offer that cannot be saved. ``errors`` maps each wrong field (``content.headline``) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        first = next(iter(errors.items()))
        super().__init__(f"{first[0]}: {first[1][0]}")


def _url_valid(value: str) -> bool:
    if value.startswith("/") and not value.startswith("//"):
        return True  # a path on the site that asks
    try:
        _url(value)
    except ValidationError:
        return False
    return True


def offer_content_clean(content) -> dict:
    """The content checked: a JSON object with a headline and a call-to-action URL, an optional body and image
    URL, nothing else. URLs are http(s) or a path on the site (``/stay``)."""
    if not isinstance(content, dict):
        raise OfferInvalid({"content": ["An object with headline, body, cta_url and image_url."]})
    errors: dict[str, list[str]] = {}
    known = {key for key, _, _ in CONTENT_FIELDS}
    for key in sorted(set(content) - known):
        errors[f"content.{key}"] = [f"Unknown field; the content has {', '.join(sorted(known))}."]
    clean = {}
    for key, required, limit in CONTENT_FIELDS:
        value = content.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                errors[f"content.{key}"] = ["This field is required."]
            continue
        if not isinstance(value, str):
            errors[f"content.{key}"] = ["A text."]
            continue
        value = value.strip()
        if len(value) > limit:
            errors[f"content.{key}"] = [f"At most {limit} characters."]
        elif key in URL_FIELDS and not _url_valid(value):
            errors[f"content.{key}"] = ["An http(s) URL or a path on the site starting with /."]
        else:
            clean[key] = value
    if errors:
        raise OfferInvalid(errors)
    return clean


def _checked(fields: dict) -> dict:
    errors: dict[str, list[str]] = {}
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            errors["name"] = ["This field is required."]
    if "priority" in fields and (not isinstance(fields["priority"], int) or isinstance(fields["priority"], bool)
                                 or not 0 <= fields["priority"] <= 1_000_000):
        errors["priority"] = ["A whole number from 0 (first) to 1000000."]
    if "content" in fields:
        try:
            fields["content"] = offer_content_clean(fields["content"])
        except OfferInvalid as error:
            errors.update(error.errors)
    for name in ("valid_from", "valid_until"):
        if fields.get(name) is not None and not isinstance(fields[name], datetime):
            errors[name] = ["A date and time."]
    if "goal" in fields and fields["goal"] not in Offer.Goal.values:
        errors["goal"] = [f"One of {', '.join(Offer.Goal.values)}."]
    if fields.get("expected_value") is not None:
        if not _number(fields["expected_value"]) or not 0 <= fields["expected_value"] <= MAX_EXPECTED_VALUE:
            errors["expected_value"] = [f"A number of EUR from 0 to {MAX_EXPECTED_VALUE}."]
        else:
            fields["expected_value"] = float(fields["expected_value"])
    for name in ("min_churn_risk", "max_churn_risk"):
        if fields.get(name) is not None:
            if not _number(fields[name]) or not 0 <= fields[name] <= 1:
                errors[name] = ["A churn risk from 0 to 1."]
            else:
                fields[name] = float(fields[name])
    if "product_ids" in fields:
        try:
            fields["product_ids"] = offer_product_ids_clean(fields["product_ids"])
        except OfferInvalid as error:
            errors.update(error.errors)
    if errors:
        raise OfferInvalid(errors)
    return fields


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def offer_product_ids_clean(product_ids) -> list[str]:
    """The promoted product ids checked: a list of at most MAX_PRODUCT_IDS ids (text, as the events carry them),
    stripped, without repeats, in the given order."""
    if product_ids is None:
        return []
    if not isinstance(product_ids, list | tuple) or not all(isinstance(pid, str | int) and not isinstance(pid, bool)
                                                           for pid in product_ids):
        raise OfferInvalid({"product_ids": ["A list of product ids."]})
    clean = list(dict.fromkeys(str(pid).strip() for pid in product_ids if str(pid).strip()))
    if len(clean) > MAX_PRODUCT_IDS:
        raise OfferInvalid({"product_ids": [f"At most {MAX_PRODUCT_IDS} products."]})
    if any(len(pid) > 200 for pid in clean):
        raise OfferInvalid({"product_ids": ["A product id has at most 200 characters."]})
    return clean


def _cache_clear() -> None:
    # Now, for what this transaction reads next; and on commit, for anything this process cached meanwhile.
    offers_cache_clear()
    transaction.on_commit(offers_cache_clear)


def _across_check(offer: Offer) -> None:
    """The checks across fields, on the offer as it will be saved."""
    errors: dict[str, list[str]] = {}
    if offer.valid_from and offer.valid_until and offer.valid_until <= offer.valid_from:
        errors["valid_until"] = ["Must be after valid_from."]
    if (offer.min_churn_risk is not None and offer.max_churn_risk is not None
            and offer.max_churn_risk < offer.min_churn_risk):
        errors["max_churn_risk"] = ["Must be at least min_churn_risk."]
    if offer.goal == Offer.Goal.CROSS_SELL and not offer.product_ids:
        errors["product_ids"] = ["A cross-sell offer names the products it promotes."]
    if offer.goal == Offer.Goal.ACQUISITION and offer.expected_value is None:
        errors["expected_value"] = ["An acquisition offer is scored by its expected value: give it."]
    if errors:
        raise OfferInvalid(errors)


@transaction.atomic
def offer_create(*, name: str, segment, purpose, content: dict, priority: int = 100,
                 valid_from: datetime | None = None, valid_until: datetime | None = None, enabled: bool = True,
                 goal: str = Offer.Goal.NONE, expected_value: float | None = None, product_ids=(),
                 min_churn_risk: float | None = None, max_churn_risk: float | None = None, actor=None) -> Offer:
    """A new offer; the personalization API shows it within a few seconds (OFFERS_CACHE_SECONDS). ``goal``,
    ``expected_value`` and ``product_ids`` decide how the next best action scores it; the churn-risk bounds whom
    it is for (see activation.selectors.nba)."""
    fields = _checked({"name": name, "priority": priority, "content": content, "valid_from": valid_from,
                       "valid_until": valid_until, "goal": goal, "expected_value": expected_value,
                       "product_ids": list(product_ids or ()), "min_churn_risk": min_churn_risk,
                       "max_churn_risk": max_churn_risk})
    offer = Offer(segment=segment, purpose=purpose, enabled=enabled,
                  created_by=actor if getattr(actor, "pk", None) else None, **fields)
    _across_check(offer)
    offer.save()
    _cache_clear()
    return offer


OFFER_FIELDS = {"name", "segment", "purpose", "content", "priority", "valid_from", "valid_until", "enabled", "goal",
                "expected_value", "product_ids", "min_churn_risk", "max_churn_risk"}


@transaction.atomic
def offer_update(*, offer: Offer, actor=None, **fields) -> Offer:
    """Change any of OFFER_FIELDS."""
    unknown = set(fields) - OFFER_FIELDS
    if unknown:
        raise OfferInvalid({name: ["Not a field of an offer."] for name in sorted(unknown)})
    for name, value in _checked(dict(fields)).items():
        setattr(offer, name, value)
    _across_check(offer)
    offer.save()
    _cache_clear()
    return offer


@transaction.atomic
def offer_delete(*, offer: Offer, actor=None) -> None:
    offer.delete()
    _cache_clear()
