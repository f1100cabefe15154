from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Avg, Count, IntegerField, Max, Min, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from cdp.core.masking import PII_KINDS, SENSITIVE, is_sealed, mask_for, reveal
from profiles.filters import EventFilter, ProfileFilter
from profiles.models import (
    ComputedTrait,
    ComputedValue,
    Event,
    Identity,
    Merge,
    Note,
    Product,
    ProductAffinity,
    Profile,
    TraitValue,
)
from profiles.search import identifier_candidates
from profiles.services.golden import Policies

TIMELINE_PAGE_SIZE = 50
MAX_TOMBSTONE_HOPS = 20


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def profile_count() -> int:
    return Profile.objects.count()


def events_today_count() -> int:
    return Event.objects.filter(timestamp__gte=_day_start(timezone.localdate())).count()


def events_per_day(start: date, end: date) -> dict[date, int]:
    rows = (Event.objects.filter(timestamp__gte=_day_start(start), timestamp__lt=_day_start(end + timedelta(days=1)))
            .annotate(day=TruncDate("timestamp")).values("day").annotate(n=Count("id")).values_list("day", "n"))
    return dict(rows)


def profile_list(*, filters: dict | None = None, request=None):
    return ProfileFilter(filters or {}, queryset=Profile.objects.all(), request=request).qs


def profile_resolve(*, profile_id: int) -> Profile | None:
    """The live profile for an id: a merged profile (a tombstone) leads to the profile it was merged into."""
    profile = Profile.objects.filter(pk=profile_id).first()
    hops = 0
    while profile is not None and getattr(profile, "merged_into_id", None) and hops < MAX_TOMBSTONE_HOPS:
        profile = Profile.objects.filter(pk=profile.merged_into_id).first()
        hops += 1
    return profile


def profile_lookup(*, identity_type: str, value: str) -> Profile | None:
    """The live profile that carries the identifier (normalized as the pipeline does; a value that failed
    normalization is found as sent), following merge tombstones; None when no profile has it."""
    candidates = identifier_candidates(identity_type, value)
    if not candidates:
        return None
    found = dict(Identity.objects.filter(type=identity_type, value__in=candidates).values_list("value", "profile_id"))
    profile_id = next((found[c] for c in candidates if c in found), None)
    if profile_id is None:
        profile_id = (Identity.objects.filter(type=identity_type, flagged=True, raw_value__in=candidates)
                      .values_list("profile_id", flat=True).first())
    return None if profile_id is None else profile_resolve(profile_id=profile_id)


# --- the timeline ---------------------------------------------------------------------------------------------


def profile_timeline(*, profile: Profile):
    return profile.events.order_by("-timestamp", "-id")


@dataclass(frozen=True)
class TimelinePage:
    events: list
    next_cursor: str | None


def timeline_cursor(event: Event) -> str:
    return f"{event.timestamp.isoformat()}~{event.pk}"


def _cursor_parse(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor or "~" not in cursor:
        return None
    stamp, _, pk = cursor.rpartition("~")
    when = parse_datetime(stamp.replace(" ", "+"))  # a "+" in a query string arrives as a space
    if when is None or not pk.isdigit():
        return None
    return when, int(pk)


def timeline_page(*, profile: Profile, filters=None, cursor: str | None = None,
                  size: int = TIMELINE_PAGE_SIZE) -> TimelinePage:
    """One page of the profile's events, newest first, filtered by EventFilter (type, channel, ...), after
    ``cursor`` (keyset on timestamp and id: stable while new events arrive). An unreadable cursor starts over."""
    events = EventFilter(filters or {}, queryset=profile_timeline(profile=profile)).qs
    position = _cursor_parse(cursor)
    if position:
        when, pk = position
        events = events.filter(Q(timestamp__lt=when) | Q(timestamp=when, pk__lt=pk))
    rows = list(events[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return TimelinePage(rows, timeline_cursor(rows[-1]) if more and rows else None)


def timeline_facets(*, profile: Profile) -> dict[str, list]:
    """The channels and types the profile's events have, for the timeline's filter."""
    rows = profile.events.order_by().values_list("channel", "type").distinct()
    channels = sorted({channel for channel, _ in rows if channel})
    types = sorted({kind for _, kind in rows})
    labels = dict(Event.Type.choices)
    return {"channels": channels, "types": [(kind, labels.get(kind, kind)) for kind in types]}


# --- the golden record, merges and notes ------------------------------------------------------------------------


def profile_lineage(*, profile: Profile) -> list[dict]:
    """Each trait's winning value with why it won (Profile.trait_sources) and every value seen for it
    (TraitValue: source, time, how often), the winner first, then the most recent. Values are as stored: a
    sensitive trait's are sealed (the presentation reveals or masks them for the user)."""
    seen: dict[str, list] = {}
    for row in TraitValue.objects.filter(profile=profile).order_by("name", "-observed_at", "-id"):
        seen.setdefault(row.name, []).append(row)
    sources = profile.trait_sources or {}
    lineage = []
    for name in sorted(set(profile.traits or {}) | set(seen), key=str):
        winner = (profile.traits or {}).get(name)
        plain_winner = reveal(winner)  # the golden record and the lineage seal the same value differently
        why = sources.get(name) or {}
        values = []
        for row in seen.get(name, []):
            wins = reveal(row.value) == plain_winner and (not why.get("source") or row.source == why.get("source"))
            values.append({"value": row.value, "source": row.source, "observed_at": row.observed_at,
                           "first_observed_at": row.first_observed_at, "seen_count": row.seen_count,
                           "winner": wins})
        values.sort(key=lambda v: not v["winner"])
        lineage.append({"name": name, "value": winner, "present": name in (profile.traits or {}),
                        "source": why.get("source", ""), "observed_at": parse_datetime(why["observed_at"])
                        if isinstance(why.get("observed_at"), str) else why.get("observed_at"),
                        "strategy": why.get("strategy", ""), "why": why.get("why", ""), "values": values})
    return lineage


def sensitive_trait_names() -> frozenset[str]:
    """The traits classified as sensitive (TraitPolicy; cached per process for a few seconds)."""
    return Policies.cached().sensitive


def trait_is_sensitive(name: str) -> bool:
    """Whether a trait name, or the trait a dotted path walks into ("diagnosis.code"), is sensitive."""
    sensitive = sensitive_trait_names()
    return bool(sensitive) and (name in sensitive or str(name).split(".", 1)[0] in sensitive)


def traits_without_sensitive(traits: dict) -> dict:
    """The traits without the sensitive ones (and without any sealed value): what may leave the CDP to a system
    that must never get them (the personalization API)."""
    sensitive = sensitive_trait_names()
    return {name: value for name, value in traits.items() if name not in sensitive and not is_sealed(value)}


def profile_merges(*, profile: Profile):
    """The merge journal entries of this profile: merges it won and merges in which it was the loser."""
    return (Merge.objects.filter(Q(winner=profile) | Q(loser_id=profile.pk))
            .select_related("actor", "undone_by").order_by("-created_at", "-id"))


def profile_notes(*, profile: Profile):
    return Note.objects.filter(profile=profile).select_related("author").order_by("-created_at", "-id")


# --- computed traits -----------------------------------------------------------------------------------------------

HISTOGRAM_BINS = 20
TOP_VALUES = 20
INTEGER_AGGREGATIONS = ("count", "distinct_count", "rfm")


def computed_traits_with_coverage():
    """Every computed trait with ``coverage``: how many profiles have a value now (one index-only count each)."""
    counts = (ComputedValue.objects.filter(trait=OuterRef("pk")).order_by().values("trait")
              .annotate(n=Count("*")).values("n"))
    return ComputedTrait.objects.annotate(coverage=Coalesce(Subquery(counts, output_field=IntegerField()), 0))


def _number_text(value) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def computed_value_text(trait, value) -> str:
    """A computed value as people read it: numbers with separators, times as local times, days as days."""
    if value is None:
        return ""
    if trait.value_type == "days_since":
        return "today" if value == 0 else ("1 day" if value == 1 else f"{value:,} days")
    if trait.value_type == "datetime":
        return date_format(timezone.localtime(value), "Y-m-d H:i")
    if trait.value_type == "number":
        return _number_text(value)
    return str(value)


def _pii_kind(trait) -> str | None:
    """The mask of a trait whose values are personal data (first/last/most frequent of email, phone, ...)."""
    if trait.value_type != "text" or not trait.field:
        return None
    return PII_KINDS.get(trait.field.rsplit(".", 1)[-1])


def profile_computed_values(*, profile, user=None) -> list[dict]:
    """The profile's values of every enabled computed trait, in the traits' order, each with ``key``, ``name``,
    ``value_type``, ``value`` (JSON-ready: days as an int, times in ISO), ``text`` and, for rfm_segment, the three
    scores. Text values of personal fields are masked for ``user``."""
    stored = {v.trait_id: v for v in profile.computed_values.select_related("trait")}
    rows = []
    for trait in ComputedTrait.objects.filter(enabled=True):
        value = stored[trait.pk].value if trait.pk in stored else None
        text = computed_value_text(trait, value)
        kind = SENSITIVE if is_sealed(value) else _pii_kind(trait)  # sealed: taken from a sensitive trait's copy
        if kind and value is not None and user is not None:
            value = text = mask_for(user, str(value), kind)
        rows.append({"key": trait.key, "name": trait.name, "value_type": trait.value_type, "trait": trait,
                     "value": value.isoformat() if isinstance(value, datetime) else value, "text": text})
    scores = {row["key"]: row["value"] for row in rows if row["key"] in ("rfm_recency", "rfm_frequency",
                                                                         "rfm_monetary")}
    for row in rows:
        if row["key"] == "rfm_segment" and row["value"] and all(scores.values()) and len(scores) == 3:
            row["text"] = (f"{row['value']} (R {scores['rfm_recency']:.0f} · F {scores['rfm_frequency']:.0f} · "
                           f"M {scores['rfm_monetary']:.0f})")
    return rows


def profile_computed(*, profile, user=None) -> dict:
    """{key: value} of the profile's computed traits (None where it has no value): the profile API's ``computed``."""
    return {row["key"]: row["value"] for row in profile_computed_values(profile=profile, user=user)}


def _edges(low: float, high: float, bins: int, integers: bool) -> list[float]:
    if integers and high - low < bins:
        return [low + i for i in range(int(high - low) + 2)]
    if high == low:
        return [low, low + 1]
    width = (high - low) / bins
    return [low + i * width for i in range(bins)] + [high]


def computed_trait_distribution(*, trait, bins: int = HISTOGRAM_BINS, top: int = TOP_VALUES) -> dict:
    """How the values of a trait are spread, in one or two aggregate queries: for numbers, times and days a
    histogram ``{"kind": "histogram", "labels", "counts", "total", "min", "max", "avg"}`` (days since: in days);
    for text the most frequent values ``{"kind": "top", "rows": [{"value", "count"}], "total", "distinct"}``."""
    values = ComputedValue.objects.filter(trait=trait)
    if trait.value_type == "text":
        total = values.count()
        rows = list(values.values("value_text").annotate(count=Count("id")).order_by("-count", "value_text")[:top])
        return {"kind": "top", "total": total, "distinct": values.values("value_text").distinct().count(),
                "rows": [{"value": row["value_text"], "count": row["count"]} for row in rows]}
    if trait.value_type == "number":
        stats = values.aggregate(low=Min("value_number"), high=Max("value_number"), avg=Avg("value_number"),
                                 total=Count("id"))
        if not stats["total"]:
            return {"kind": "histogram", "total": 0, "labels": [], "counts": []}
        integers = trait.aggregation in INTEGER_AGGREGATIONS
        edges = _edges(stats["low"], stats["high"], bins, integers)
        ranges = [(edges[i], edges[i + 1], i == len(edges) - 2) for i in range(len(edges) - 1)]
        counts = values.aggregate(**{
            f"b{i}": Count("id", filter=Q(value_number__gte=lo) & (Q(value_number__lte=hi) if last
                                                                     else Q(value_number__lt=hi)))
            for i, (lo, hi, last) in enumerate(ranges)})
        labels = [_number_text(lo) if integers and hi - lo == 1 else f"{_number_text(lo)}–{_number_text(hi)}"
                  for lo, hi, _last in ranges]
        return {"kind": "histogram", "total": stats["total"], "labels": labels,
                "counts": [counts[f"b{i}"] for i in range(len(ranges))],
                "min": stats["low"], "max": stats["high"], "avg": stats["avg"]}
    stats = values.aggregate(low=Min("value_time"), high=Max("value_time"), total=Count("id"))
    if not stats["total"]:
        return {"kind": "histogram", "total": 0, "labels": [], "counts": []}
    now = timezone.now()
    if trait.value_type == "days_since":  # bins of whole days since: days in [a, b) <=> time in (now-b, now-a]
        low, high = (now - stats["high"]).days, (now - stats["low"]).days
        width = max(1, -(-(high - low + 1) // bins))  # whole days per bin, rounded up
        ranges = [(lo, min(lo + width, high + 1)) for lo in range(low, high + 1, width)]
        counts = values.aggregate(**{f"b{i}": Count("id", filter=Q(value_time__gt=now - timedelta(days=hi),
                                                                   value_time__lte=now - timedelta(days=lo)))
                                     for i, (lo, hi) in enumerate(ranges)})
        labels = [(f"{lo} day{pluralize(lo)}" if hi - lo == 1 else f"{lo}–{hi - 1} days") for lo, hi in ranges]
        return {"kind": "histogram", "total": stats["total"], "labels": labels, "unit": "days",
                "counts": [counts[f"b{i}"] for i in range(len(ranges))], "min": low, "max": high}
    span = (stats["high"] - stats["low"]) / bins or timedelta(seconds=1)
    ranges = [(stats["low"] + i * span, stats["low"] + (i + 1) * span, i == bins - 1) for i in range(bins)]
    counts = values.aggregate(**{
        f"b{i}": Count("id", filter=Q(value_time__gte=lo) & (Q(value_time__lte=hi) if last else Q(value_time__lt=hi)))
        for i, (lo, hi, last) in enumerate(ranges)})
    return {"kind": "histogram", "total": stats["total"],
            "labels": [timezone.localtime(lo).strftime("%Y-%m-%d") for lo, _hi, _last in ranges],
            "counts": [counts[f"b{i}"] for i in range(bins)], "min": stats["low"].isoformat(),
            "max": stats["high"].isoformat()}


# --- product recommendations ----------------------------------------------------------------------------------------


def recommendations_for(*, profile_id: int, limit: int = 10) -> list[dict]:
    """The person's top ``limit`` products now, computed on the fly (profiles.insights.recommendations.recommend_one)
    from their own product events (so a view of a minute ago counts) and the item-to-item table of the last
    recommendations run (ProductAffinity), filled up with the most popular products; what they bought is left out.
    Each {product_id, name, category, price, score, reason}; ``reason`` says why ("Bought together with X",
    "Viewed together with X", "Popular"). Three queries: the events, the neighbours, the products."""
    from profiles.insights import recommendations as reco  # numpy and scipy load when first asked

    history: dict[str, float] = {}
    bought: set[str] = set()
    events = Event.objects.filter(profile_id=profile_id, name__in=list(reco.EVENT_KINDS)).order_by()
    for name, properties in events.values_list("name", "properties"):
        for product, kind in reco.event_products(name, properties):
            history[product] = max(history.get(product, 0.0), reco.HISTORY_WEIGHTS[kind])
            if kind == reco.PURCHASE:
                bought.add(product)
    neighbours: dict[str, list] = {}
    if history:
        for row in ProductAffinity.objects.filter(product__in=list(history)).values_list(
                "product", "other", "score", "co_purchases", "co_views"):
            neighbours.setdefault(row[0], []).append(reco.Neighbour(*row[1:]))
    candidates = {n.other for rows in neighbours.values() for n in rows} | set(history)
    popular_ids = Product.objects.order_by("-buyers", "-views", "product_id").values("pk")[:2 * limit + len(bought)]
    products = {p.product_id: p for p in Product.objects.filter(Q(product_id__in=list(candidates))
                                                                | Q(pk__in=popular_ids))}
    popular = [p.product_id for p in sorted(products.values(), key=lambda p: (-p.buyers, -p.views, p.product_id))]
    rows = reco.recommend_one(history=history, bought=bought, neighbours=neighbours, popular=popular, n=limit)
    result = []
    for row in rows:
        product = products.get(row["product"])
        because = products.get(row["because"]) if row["because"] else None
        if row["popular"]:
            reason = "Popular"
        else:
            reason = (f"{'Bought' if row['together'] == 'bought' else 'Viewed'} together with "
                      f"{(because.name if because else '') or row['because']}")
        result.append({"product_id": row["product"], "name": product.name if product else "",
                       "category": product.category if product else "", "price": product.price if product else None,
                       "score": row["score"], "reason": reason})
    return result
