"""Computed traits: measures aggregated from a profile's events, kept in ComputedValue for segments.

A definition (``ComputedTrait``) is an aggregation over the events that pass its event-name filter (one or several
names, or every event), its property filters (all must hold) and its time window (the last N days, or between two
days), of one field: a property path (``revenue``, ``product.sku``; ``properties.channel`` for a property that
shares its name with a column) or the event's ``channel``, ``name``, ``type``, ``source`` or ``timestamp``.

- count: matching events; distinct_count: different values of the field.
- sum, avg: of a number property; values that are not JSON numbers (text, missing) are skipped, and a profile
  whose matching events carry no number at all has no value (not 0).
- min, max: of a number property, or of ``timestamp`` (a time).
- first, last: the field's value on the earliest/latest matching event that has one (text, or a number with
  ``field_type`` number); of ``timestamp`` the earliest/latest time.
- most_frequent: the value most events carry (ties: the most recent, then the smallest).
- rfm: RFM scores 1-5 by quintiles across the profiles with at least one matching event (recency: the last
  event's time, frequency: the count, monetary: the sum of the field); ``segment`` names the cell of the R/FM grid.
  The full run stores the quintile boundaries; the incremental refresh scores against them (small shops are cut
  again inline; a missing or stale cut queues the full recompute, see ``_rfm_cut_due``).

``value_type`` is derived, never chosen: counts, sums and averages are numbers, most frequent/first/last of text is
text, min/max/first/last of ``timestamp`` a time, or ``days_since`` with ``as_days_since`` (the time is stored and
the days are counted when read, so they stay exact between recomputes). Empty text counts as no value.

Computation is set-based SQL, one statement per call on PostgreSQL: the fresh values of every trait (a GROUP BY
profile_id over the filtered events, or a ROW_NUMBER() pick for first/last/most frequent) are upserted into
ComputedValue (rows whose value did not change are left alone), and the rows of profiles that no longer have a
value are deleted. SQLite runs the same SELECTs as an upsert and a delete. Merged profiles (tombstones) never get
a value. Nothing here sends ``profile_changed``: the segments task that receives it calls
``computed_values_refresh`` first and re-checks memberships after.
"""

import json
import re
import time as clock
from datetime import UTC, date, datetime, time, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from profiles.models import ComputedTrait, ComputedValue, Event, Profile

Aggregation = ComputedTrait.Aggregation
ValueType = ComputedTrait.ValueType
RFMPart = ComputedTrait.RFMPart

# Event columns a definition may name as its field or in a filter (and timestamp); anything else is a property path.
TEXT_COLUMNS = ("channel", "name", "type", "source")
FILTER_OPS = ("equals", "not_equals", "gt", "gte", "lt", "lte", "contains", "in")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
RESERVED_KEYS = ("new", "recompute")  # page addresses under /profiles/computed-traits/
PATH_SEGMENT = re.compile(r"^[\w\- ]{1,64}$")
MAX_PATH_DEPTH = 5
MAX_EVENT_NAMES = 50
MAX_FILTERS = 20
MAX_IN_VALUES = 200
MAX_WINDOW_DAYS = 36500
TEXT_MAX = 255
DEFINABLE = tuple(value for value in Aggregation.values if value != Aggregation.INSIGHT)
ORDER_EVENT = "Order Completed"
# A refresh cuts RFM quintiles itself below this many customers, or when the last cut is older than this.
RFM_RECUT_BELOW = 1000
RFM_CUT_MAX_AGE = timedelta(hours=26)
RFM_CUT_QUEUED_SECONDS = 3600

# The R/FM grid: recency score x the rounded mean of the frequency and monetary scores.
RFM_GRID: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # name: (recency scores, FM scores); together the cells cover the 5x5 grid exactly once.
    "Champions": ((5,), (4, 5)),
    "Loyal Customers": ((3, 4), (4, 5)),
    "Potential Loyalists": ((4, 5), (2, 3)),
    "New Customers": ((5,), (1,)),
    "Promising": ((4,), (1,)),
    "Need Attention": ((3,), (3,)),
    "About To Sleep": ((3,), (1, 2)),
    "At Risk": ((1, 2), (3, 4)),
    "Cannot Lose Them": ((1, 2), (5,)),
    "Hibernating": ((2,), (1, 2)),
    "Lost": ((1,), (1, 2)),
}
RFM_SEGMENTS = tuple(RFM_GRID)


def rfm_segment_name(recency: int, frequency: int, monetary: int) -> str:
    """The R/FM grid cell of three scores (FM is the mean of F and M, halves rounded up)."""
    fm = (frequency + monetary + 1) // 2
    return next(name for name, (rs, fms) in RFM_GRID.items() if recency in rs and fm in fms)


# --- definitions ---------------------------------------------------------------------------------------------------


class ComputedTraitInvalid(Exception):
    """A definition that cannot be computed; ``errors`` maps each wrong field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {' '.join(messages)}" for path, messages in errors.items()))


DEFINITION_FIELDS = ("aggregation", "event_names", "filters", "field", "field_type", "as_days_since",
                     "window_days", "window_start", "window_end", "rfm_part")
DEFAULTS = {"event_names": [], "filters": [], "field": "", "field_type": ComputedTrait.FieldType.TEXT,
            "as_days_since": False, "window_days": None, "window_start": None, "window_end": None, "rfm_part": ""}


def _field_kind(field: str) -> str:
    """'timestamp', 'column' (a text column) or 'property'."""
    if field == "timestamp":
        return "timestamp"
    return "column" if field in TEXT_COLUMNS else "property"


def property_path(field: str) -> list[str]:
    """A property path's keys (``properties.`` is optional); raises ValueError when it is not a valid path."""
    path = field[len("properties."):] if field.startswith("properties.") else field
    keys = path.split(".")
    if not path or len(keys) > MAX_PATH_DEPTH or not all(PATH_SEGMENT.match(key) and key.strip() for key in keys):
        raise ValueError(f"'{field}' is not a property path: keys of letters, digits, _, - or spaces, joined by dots "
                         f"(at most {MAX_PATH_DEPTH}).")
    return keys


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_filter(index: int, item, errors: dict) -> dict | None:
    path = f"filters.{index}"
    if not isinstance(item, dict):
        errors[path] = ['A filter is an object: {"property", "op", "value"}.']
        return None
    unknown = sorted(set(item) - {"property", "op", "value"})
    if unknown:
        errors[f"{path}.{unknown[0]}"] = ["Unknown key; a filter has property, op and value."]
    prop, op, value = item.get("property"), item.get("op"), item.get("value")
    if not isinstance(prop, str) or not prop.strip():
        errors[f"{path}.property"] = ["Name the property (a path like revenue or product.sku, or channel, name, "
                                      "type, source)."]
    elif prop.strip() == "timestamp":
        errors[f"{path}.property"] = ["Filter the time with the window, not a property filter."]
    elif prop.strip() not in TEXT_COLUMNS:
        try:
            property_path(prop.strip())
        except ValueError as error:
            errors[f"{path}.property"] = [str(error)]
    if op not in FILTER_OPS:
        errors[f"{path}.op"] = [f"Unknown operator {op!r}; one of {', '.join(FILTER_OPS)}."]
    elif op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            errors[f"{path}.value"] = [f"'in' takes a list of 1 to {MAX_IN_VALUES} values."]
        elif not all(isinstance(v, str) or _is_number(v) for v in value):
            errors[f"{path}.value"] = ["The values of 'in' are text or numbers."]
    elif op in ("gt", "gte", "lt", "lte"):
        if not (_is_number(value) or isinstance(value, str) and value):
            errors[f"{path}.value"] = ["Compare with a number (or text, compared as text: ISO dates work)."]
    elif op == "contains":
        if not isinstance(value, str) or not value:
            errors[f"{path}.value"] = ["'contains' takes the text to look for."]
    elif op in ("equals", "not_equals") and not (isinstance(value, str | bool) or _is_number(value)):
        errors[f"{path}.value"] = ["Compare with text, a number, true or false."]
    return {"property": prop.strip() if isinstance(prop, str) else prop, "op": op, "value": value}


def _as_date(value, path: str, errors: dict):
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[path] = ["A day as YYYY-MM-DD."]
        return None


def value_type_for(definition: dict) -> str:
    """The value type a (checked) definition yields."""
    aggregation, field = definition["aggregation"], definition.get("field") or ""
    if aggregation == Aggregation.RFM:
        return ValueType.TEXT if definition.get("rfm_part") == RFMPart.SEGMENT else ValueType.NUMBER
    if aggregation in (Aggregation.COUNT, Aggregation.DISTINCT_COUNT, Aggregation.SUM, Aggregation.AVG):
        return ValueType.NUMBER
    kind = _field_kind(field)
    if kind == "timestamp":
        return ValueType.DAYS_SINCE if definition.get("as_days_since") else ValueType.DATETIME
    if aggregation in (Aggregation.MIN, Aggregation.MAX):
        return ValueType.NUMBER
    if kind == "property" and definition.get("field_type") == ComputedTrait.FieldType.NUMBER:
        return ValueType.NUMBER
    return ValueType.TEXT


def computed_trait_definition_check(definition: dict) -> dict:
    """Check and normalize a definition (the fields of DEFINITION_FIELDS; missing ones take their defaults).
    Returns them with ``value_type``; raises ComputedTraitInvalid naming each wrong field."""
    data = {**DEFAULTS, **{k: v for k, v in definition.items() if k in DEFINITION_FIELDS}}
    errors: dict[str, list[str]] = {}
    aggregation = data.get("aggregation")
    if aggregation == Aggregation.INSIGHT:
        errors["aggregation"] = ["Insight traits are installed with the insight models that fill them "
                                 "(profiles.insights); they cannot be defined."]
    elif aggregation not in Aggregation.values:
        errors["aggregation"] = [f"Unknown aggregation {aggregation!r}; one of {', '.join(DEFINABLE)}."]

    names = data["event_names"]
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        errors["event_names"] = ["A list of event names (empty: every event)."]
        names = []
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if len(names) > MAX_EVENT_NAMES:
        errors["event_names"] = [f"At most {MAX_EVENT_NAMES} event names."]
    elif any(len(n) > 200 for n in names):
        errors["event_names"] = ["An event name has at most 200 characters."]
    data["event_names"] = names

    filters = data["filters"] if data["filters"] is not None else []
    if not isinstance(filters, list):
        errors["filters"] = ['A list of filters: [{"property", "op", "value"}].']
        filters = []
    elif len(filters) > MAX_FILTERS:
        errors["filters"] = [f"At most {MAX_FILTERS} filters."]
    data["filters"] = [f for f in (_check_filter(i, item, errors) for i, item in enumerate(filters)) if f]

    field = (data["field"] or "").strip()
    data["field"] = field
    kind = _field_kind(field) if field else None
    if kind == "property":
        try:
            property_path(field)
        except ValueError as error:
            errors["field"] = [str(error)]
    if data["field_type"] not in ComputedTrait.FieldType.values:
        errors["field_type"] = [f"One of {', '.join(ComputedTrait.FieldType.values)}."]
    numeric = (Aggregation.SUM, Aggregation.AVG)
    if aggregation in numeric + (Aggregation.MIN, Aggregation.MAX, Aggregation.FIRST, Aggregation.LAST,
                                 Aggregation.MOST_FREQUENT, Aggregation.DISTINCT_COUNT) and not field:
        errors.setdefault("field", []).append(f"{aggregation} needs the field it aggregates.")
    elif aggregation in numeric and kind != "property":
        errors.setdefault("field", []).append(f"{aggregation} adds up a number property (such as revenue), "
                                              f"not {field}.")
    elif aggregation in (Aggregation.MIN, Aggregation.MAX) and kind == "column":
        errors.setdefault("field", []).append(f"{aggregation} takes a number property or timestamp, not {field}.")
    elif aggregation == Aggregation.MOST_FREQUENT and kind == "timestamp":
        errors.setdefault("field", []).append("most_frequent of a time is not meaningful; use min or max.")
    if aggregation == Aggregation.COUNT:
        data["field"] = ""

    if aggregation == Aggregation.RFM:
        if data["rfm_part"] not in RFMPart.values:
            errors["rfm_part"] = [f"RFM needs the part: one of {', '.join(RFMPart.values)}."]
        if not field or kind != "property":
            errors.setdefault("field", []).append("RFM needs the number property that holds the order's value "
                                                  "(such as revenue).")
    else:
        data["rfm_part"] = ""

    if data["as_days_since"] and not errors.get("field") and (
            kind != "timestamp" or aggregation in (Aggregation.COUNT, Aggregation.DISTINCT_COUNT, Aggregation.RFM)):
        errors["as_days_since"] = ["Days since needs min, max, first or last of timestamp."]
    data["as_days_since"] = bool(data["as_days_since"])

    days = data["window_days"]
    if days in ("", None):
        data["window_days"] = None
    elif isinstance(days, bool) or not isinstance(days, int | str) or not str(days).isdigit() \
            or not 1 <= int(days) <= MAX_WINDOW_DAYS:
        errors["window_days"] = [f"A whole number of days from 1 to {MAX_WINDOW_DAYS}."]
    else:
        data["window_days"] = int(days)
    data["window_start"] = _as_date(data["window_start"], "window_start", errors)
    data["window_end"] = _as_date(data["window_end"], "window_end", errors)
    if data["window_days"] and (data["window_start"] or data["window_end"]):
        errors["window_days"] = ["Either the last N days or a range of days, not both."]
    if data["window_start"] and data["window_end"] and data["window_end"] < data["window_start"]:
        errors["window_end"] = ["The end is before the start."]

    if errors:
        raise ComputedTraitInvalid(errors)
    data["value_type"] = value_type_for(data)
    return data


# --- SQL -----------------------------------------------------------------------------------------------------------

EVENT_TABLE = Event._meta.db_table
PROFILE_TABLE = Profile._meta.db_table
VALUE_TABLE = ComputedValue._meta.db_table


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Sql:
    """SQL text and its parameters, built in order."""

    def __init__(self):
        self.parts: list[str] = []
        self.params: list = []

    def add(self, sql: str, *params) -> "_Sql":
        self.parts.append(sql)
        self.params.extend(params)
        return self

    def extend(self, other: "_Sql") -> "_Sql":
        self.parts.extend(other.parts)
        self.params.extend(other.params)
        return self

    @property
    def sql(self) -> str:
        return "".join(self.parts)


def _db_time(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _text_expr(field: str) -> str:
    """SQL for the field as text (a scalar property's text; NULL for objects, arrays, missing and empty text)."""
    if field in TEXT_COLUMNS:
        return f"NULLIF(e.{field}, '')"
    keys = property_path(field)  # validated again: the keys are inlined as literals
    if _postgres():
        path = "ARRAY[" + ", ".join(_quote(k) for k in keys) + "]"
        return (f"(CASE WHEN jsonb_typeof(e.properties #> {path}) IN ('string', 'number', 'boolean') "
                f"THEN NULLIF(e.properties #>> {path}, '') END)")
    path = _quote("$" + "".join(f'."{k}"' for k in keys))
    return (f"(CASE json_type(e.properties, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"WHEN 'text' THEN NULLIF(json_extract(e.properties, {path}), '') "
            f"WHEN 'integer' THEN CAST(json_extract(e.properties, {path}) AS TEXT) "
            f"WHEN 'real' THEN CAST(json_extract(e.properties, {path}) AS TEXT) END)")


def _number_expr(field: str) -> str:
    """SQL for a property as a number: JSON numbers only (anything else is NULL and skipped)."""
    keys = property_path(field)
    if _postgres():
        path = "ARRAY[" + ", ".join(_quote(k) for k in keys) + "]"
        return (f"(CASE WHEN jsonb_typeof(e.properties #> {path}) = 'number' "
                f"THEN (e.properties #>> {path})::double precision END)")
    path = _quote("$" + "".join(f'."{k}"' for k in keys))
    return (f"(CASE WHEN json_type(e.properties, {path}) IN ('integer', 'real') "
            f"THEN json_extract(e.properties, {path}) END)")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_sql(item: dict) -> _Sql:
    prop, op, value = item["property"], item["op"], item["value"]
    out = _Sql()
    text = _text_expr(prop)
    number = None if prop in TEXT_COLUMNS else _number_expr(prop)
    distinct = "IS DISTINCT FROM" if _postgres() else "IS NOT"
    if isinstance(value, bool):
        value = "true" if value else "false"
    if op == "equals":
        return out.add(f"{number} = %s" if number and _is_number(value) else f"{text} = %s", value)
    if op == "not_equals":
        expr = number if number and _is_number(value) else text
        return out.add(f"{expr} {distinct} %s", value)
    if op in ("gt", "gte", "lt", "lte"):
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return out.add(f"{number} {sign} %s" if number and _is_number(value) else f"{text} {sign} %s", value)
    if op == "contains":
        return out.add(f"LOWER({text}) LIKE %s ESCAPE '\\'", f"%{_like_escape(value.lower())}%")
    # in: text values against the text, numbers against the number
    texts = [str(v) for v in value if not _is_number(v)] + ([] if number else [str(v) for v in value
                                                                              if _is_number(v)])
    numbers = [v for v in value if _is_number(v)] if number else []
    terms = []
    if texts:
        terms.append(_Sql().add(f"{text} IN ({', '.join(['%s'] * len(texts))})", *texts))
    if numbers:
        terms.append(_Sql().add(f"{number} IN ({', '.join(['%s'] * len(numbers))})", *numbers))
    out.add("(")
    for index, term in enumerate(terms):
        out.add(" OR " if index else "").extend(term)
    return out.add(")")


def _window(trait, now: datetime) -> tuple[datetime | None, datetime | None]:
    if trait.window_days:
        return now - timedelta(days=trait.window_days), None
    tz = timezone.get_current_timezone()
    start = datetime.combine(trait.window_start, time.min, tzinfo=tz) if trait.window_start else None
    end = datetime.combine(trait.window_end + timedelta(days=1), time.min, tzinfo=tz) if trait.window_end else None
    return start, end


def _profiles_clause(column: str, profile_ids) -> _Sql:
    if _postgres():
        return _Sql().add(f"{column} = ANY(%s::bigint[])", list(profile_ids))
    return _Sql().add(f"{column} IN (SELECT value FROM json_each(%s))", json.dumps(list(profile_ids)))


def _events_where(trait, *, now: datetime) -> _Sql:
    """The trait's event filter on events ``e``: names, window, property filters."""
    where = _Sql().add("1 = 1")
    if trait.event_names:
        where.add(f" AND e.name IN ({', '.join(['%s'] * len(trait.event_names))})", *trait.event_names)
    start, end = _window(trait, now)
    if start:
        where.add(" AND e.timestamp >= %s", _db_time(start))
    if end:
        where.add(" AND e.timestamp < %s", _db_time(end))
    for item in trait.filters:
        where.add(" AND ").extend(_filter_sql(item))
    return where


def _typed_null(kind: str) -> str:
    if not _postgres():
        return "NULL"
    return {"number": "NULL::double precision", "text": "NULL::varchar", "time": "NULL::timestamptz"}[kind]


def _value_kind(trait) -> str:
    return {ValueType.NUMBER: "number", ValueType.TEXT: "text"}.get(trait.value_type, "time")


def _columns(trait, expr: str) -> str:
    """value_number, value_text, value_time of the fresh rows, with ``expr`` in the trait's column."""
    kind = _value_kind(trait)
    number = f"CAST({expr} AS {'double precision' if _postgres() else 'REAL'})" if kind == "number" else None
    text = f"SUBSTR(CAST({expr} AS {'varchar' if _postgres() else 'TEXT'}), 1, {TEXT_MAX})" if kind == "text" \
        else None
    when = expr if kind == "time" else None
    return ", ".join(f"{sql or _typed_null(k)} AS value_{k}" for sql, k in ((number, "number"), (text, "text"),
                                                                         (when, "time")))


def _aggregate_sql(trait, where: _Sql, source: str) -> _Sql:
    """SELECT profile_id, v over the events of ``source`` (the table, or the profiles' events of a refresh): one
    row per profile with a value (v NOT NULL not yet enforced)."""
    aggregation, field = trait.aggregation, trait.field
    kind = _field_kind(field) if field else None
    base = f"FROM {source} e WHERE "
    simple = {Aggregation.SUM: "SUM", Aggregation.AVG: "AVG", Aggregation.MIN: "MIN", Aggregation.MAX: "MAX"}
    if aggregation == Aggregation.COUNT:
        return _Sql().add(f"SELECT e.profile_id, COUNT(*) AS v {base}").extend(where).add(" GROUP BY e.profile_id")
    if aggregation == Aggregation.DISTINCT_COUNT:
        expr = "e.timestamp" if kind == "timestamp" else _text_expr(field)
        return (_Sql().add(f"SELECT e.profile_id, COUNT(DISTINCT {expr}) AS v {base}").extend(where)
                .add(" GROUP BY e.profile_id"))
    if kind == "timestamp" and aggregation in (Aggregation.MIN, Aggregation.MAX, Aggregation.FIRST,
                                               Aggregation.LAST):
        function = "MIN" if aggregation in (Aggregation.MIN, Aggregation.FIRST) else "MAX"
        return (_Sql().add(f"SELECT e.profile_id, {function}(e.timestamp) AS v {base}").extend(where)
                .add(" GROUP BY e.profile_id"))
    if aggregation in simple:
        return (_Sql().add(f"SELECT e.profile_id, {simple[aggregation]}({_number_expr(field)}) AS v {base}")
                .extend(where).add(" GROUP BY e.profile_id"))
    expr = _number_expr(field) if trait.value_type == ValueType.NUMBER else _text_expr(field)
    if aggregation in (Aggregation.FIRST, Aggregation.LAST):
        order = "ASC" if aggregation == Aggregation.FIRST else "DESC"
        return (_Sql().add(f"SELECT profile_id, v FROM (SELECT e.profile_id, {expr} AS v, ROW_NUMBER() OVER "
                           f"(PARTITION BY e.profile_id ORDER BY e.timestamp {order}, e.id {order}) AS rn {base}")
                .extend(where).add(f" AND {expr} IS NOT NULL) picked WHERE rn = 1"))
    if aggregation == Aggregation.MOST_FREQUENT:
        return (_Sql().add("SELECT profile_id, v FROM (SELECT profile_id, v, ROW_NUMBER() OVER (PARTITION BY "
                           "profile_id ORDER BY n DESC, last_at DESC, v) AS rn FROM (SELECT e.profile_id, "
                           f"{expr} AS v, COUNT(*) AS n, MAX(e.timestamp) AS last_at {base}")
                .extend(where).add(f" AND {expr} IS NOT NULL GROUP BY 1, 2) counted) picked WHERE rn = 1"))
    raise ComputedTraitInvalid({"aggregation": [f"Cannot compute {aggregation}."]})


def _rfm_measures_sql(trait, where: _Sql, source: str) -> _Sql:
    """One row per profile with a matching event: r (last time), f (count), m (sum of the field, 0 without)."""
    return (_Sql().add(f"SELECT e.profile_id, MAX(e.timestamp) AS r, COUNT(*) AS f, "
                       f"COALESCE(SUM({_number_expr(trait.field)}), 0) AS m FROM {source} e WHERE ")
            .extend(where).add(" GROUP BY e.profile_id"))


def _score_sql(column: str, bounds: list) -> _Sql:
    """1 + how many of the four boundaries the measure exceeds."""
    out = _Sql().add("(CASE")
    for score, bound in zip((5, 4, 3, 2), reversed(bounds), strict=True):
        out.add(f" WHEN {column} > %s THEN {score}", bound)
    return out.add(" ELSE 1 END)")


def _rfm_bounds_params(trait) -> dict[str, list] | None:
    bounds = trait.boundaries or {}
    if not all(len(bounds.get(k) or []) == 4 for k in ("recency", "frequency", "monetary")):
        return None
    return {"recency": [_db_time(parse_datetime(v)) for v in bounds["recency"]],
            "frequency": [float(v) for v in bounds["frequency"]],
            "monetary": [float(v) for v in bounds["monetary"]]}


def _rfm_scores_sql(trait, where: _Sql, bounds: dict[str, list], source: str) -> _Sql:
    """profile_id, rs, fs, ms: the three scores of every profile with a matching event (shared by the RFM traits
    of one definition and one cut, as a CTE)."""
    out = _Sql().add("SELECT x.profile_id")
    for part, column in (("recency", "x.r"), ("frequency", "x.f"), ("monetary", "x.m")):
        out.add(", ").extend(_score_sql(column, bounds[part])).add(f" AS {part[0]}s")
    return out.add(" FROM (").extend(_rfm_measures_sql(trait, where, source)).add(") x")


def _rfm_pick_sql(trait, scores: str) -> _Sql:
    """SELECT profile_id, v of one RFM trait from the scores CTE ``scores``: its score, or the grid's name."""
    if trait.rfm_part != RFMPart.SEGMENT:
        return _Sql().add(f"SELECT profile_id, {trait.rfm_part[0]}s AS v FROM {scores}")
    cells = " ".join(f"WHEN {r * 10 + fm} THEN {_quote(name)}" for name, (rs, fms) in RFM_GRID.items()
                     for r in rs for fm in fms)
    return _Sql().add(f"SELECT profile_id, CASE rs * 10 + (fs + ms + 1) / 2 {cells} END AS v FROM {scores}")


def _rfm_signature(trait, *, cut: bool = True) -> str:
    """RFM traits with the same signature share their scores: the same definition (and the same cut)."""
    bounds = {k: (trait.boundaries or {}).get(k) for k in ("recency", "frequency", "monetary")} if cut else None
    return json.dumps([trait.event_names, trait.filters, trait.field, trait.window_days, str(trait.window_start),
                       str(trait.window_end), bounds], sort_keys=True, default=str)


REFRESH_EVENT_COLUMNS = "e.id, e.profile_id, e.name, e.channel, e.type, e.source, e.timestamp, e.properties"


def _fresh_sql(traits, *, now: datetime, profile_ids=None) -> tuple[list[tuple[str, _Sql]], _Sql]:
    """The CTEs and the SELECT of trait_id, profile_id, value_number, value_text, value_time of every live profile
    with a value. A refresh reads the profiles' events once (CTE ``ev``, through the profile index) for every
    trait; RFM traits of one definition share one scores CTE."""
    ctes: list[tuple[str, _Sql]] = []
    source = EVENT_TABLE
    if profile_ids is not None:
        ctes.append(("ev", _Sql().add(f"SELECT {REFRESH_EVENT_COLUMNS} FROM {EVENT_TABLE} e WHERE e.profile_id IN "
                                      f"(SELECT p.id FROM {PROFILE_TABLE} p WHERE p.merged_into_id IS NULL AND ")
                     .extend(_profiles_clause("p.id", profile_ids)).add(")")))
        source = "ev"  # live profiles only: no per-trait check below
    scores: dict[str, str] = {}
    fresh = _Sql()
    for trait in traits:
        where = _events_where(trait, now=now)
        if trait.aggregation == Aggregation.RFM:
            bounds = _rfm_bounds_params(trait)
            if bounds is None:  # before its first cut: no values
                continue
            signature = _rfm_signature(trait)
            if signature not in scores:
                scores[signature] = f"rfm{len(scores)}"
                ctes.append((scores[signature], _rfm_scores_sql(trait, where, bounds, source)))
            inner = _rfm_pick_sql(trait, scores[signature])
        else:
            inner = _aggregate_sql(trait, where, source)
        fresh.add(" UNION ALL " if fresh.parts else "")
        fresh.add(f"SELECT {int(trait.pk)} AS trait_id, agg.profile_id, {_columns(trait, 'agg.v')} FROM (")
        fresh.extend(inner).add(") agg WHERE agg.v IS NOT NULL")
        if source == EVENT_TABLE:
            fresh.add(f" AND EXISTS (SELECT 1 FROM {PROFILE_TABLE} p WHERE p.id = agg.profile_id AND "
                      "p.merged_into_id IS NULL)")
    if not fresh.parts:  # nothing computable: no values
        fresh.add(f"SELECT 0 AS trait_id, 0 AS profile_id, {_typed_null('number')} AS value_number, "
                  f"{_typed_null('text')} AS value_text, {_typed_null('time')} AS value_time WHERE 1 = 0")
    return ctes, fresh


def _with(ctes: list[tuple[str, _Sql]], *, more: bool = False) -> _Sql:
    """WITH name AS (MATERIALIZED on PostgreSQL) (...), ...; ``more``: further CTEs follow."""
    out = _Sql()
    for index, (name, sql) in enumerate(ctes):
        out.add("WITH " if index == 0 else ", ").add(f"{name} AS {'MATERIALIZED ' if _postgres() else ''}(")
        out.extend(sql).add(")")
    if ctes:
        out.add(", " if more else " ")
    elif more:
        out.add("WITH ")
    return out


def _sqlite_changes(cursor) -> int:
    """Rows the last statement wrote (sqlite3's rowcount is -1 for a statement that starts with WITH)."""
    cursor.execute("SELECT changes()")
    return cursor.fetchone()[0]


def _apply(traits, *, now: datetime, profile_ids=None) -> tuple[int, int]:
    """Upsert the fresh values of ``traits`` (for ``profile_ids``, or everyone) and delete the rows of profiles
    that have none. Returns (written, deleted)."""
    ctes, fresh = _fresh_sql(traits, now=now, profile_ids=profile_ids)
    trait_ids = ", ".join(str(int(trait.pk)) for trait in traits)
    scope = _Sql().add(f"cv.trait_id IN ({trait_ids})")
    if profile_ids is not None:
        scope.add(" AND ").extend(_profiles_clause("cv.profile_id", profile_ids))
    columns = "trait_id, profile_id, value_number, value_text, value_time"
    upsert = ("ON CONFLICT (trait_id, profile_id) DO UPDATE SET value_number = excluded.value_number, "
              "value_text = excluded.value_text, value_time = excluded.value_time, "
              "computed_at = excluded.computed_at WHERE ")
    with connection.cursor() as cursor:
        if _postgres():
            upsert += ("(cv.value_number, cv.value_text, cv.value_time) IS DISTINCT FROM "
                       "(excluded.value_number, excluded.value_text, excluded.value_time)")
            sql = (_with(ctes, more=True).add("fresh AS MATERIALIZED (").extend(fresh)
                   .add(f"), gone AS (DELETE FROM {VALUE_TABLE} cv WHERE ").extend(scope)
                   .add(" AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.trait_id = cv.trait_id AND "
                        "f.profile_id = cv.profile_id) RETURNING 1), ")
                   .add(f"written AS (INSERT INTO {VALUE_TABLE} AS cv ({columns}, computed_at) "
                        f"SELECT {columns}, %s FROM fresh ORDER BY trait_id, profile_id {upsert} RETURNING 1) "
                        "SELECT (SELECT COUNT(*) FROM written), (SELECT COUNT(*) FROM gone)", now))
            cursor.execute(sql.sql, sql.params)
            written, deleted = cursor.fetchone()
            return written, deleted
        upsert += ("cv.value_number IS NOT excluded.value_number OR cv.value_text IS NOT excluded.value_text "
                   "OR cv.value_time IS NOT excluded.value_time")
        insert = (_with(ctes).add(f"INSERT INTO {VALUE_TABLE} AS cv ({columns}, computed_at) SELECT {columns}, %s "
                                  "FROM (", _db_time(now))
                  .extend(fresh).add(f") fresh WHERE 1 ORDER BY trait_id, profile_id {upsert}"))
        cursor.execute(insert.sql, insert.params)
        written = _sqlite_changes(cursor)
        delete = (_with(ctes).add(f"DELETE FROM {VALUE_TABLE} AS cv WHERE ").extend(scope)
                  .add(" AND (cv.trait_id, cv.profile_id) NOT IN (SELECT trait_id, profile_id FROM (")
                  .extend(fresh).add(") fresh)"))
        cursor.execute(delete.sql, delete.params)
        return written, _sqlite_changes(cursor)


# --- RFM boundaries ------------------------------------------------------------------------------------------------


def _tile_offsets(n: int) -> list[int]:
    """0-based positions of the last row of tiles 1-4 when ``n`` sorted rows are cut as ntile(5) cuts them (the
    first n % 5 tiles get one row more; with fewer than 5 rows the empty tiles repeat the last row)."""
    q, r = divmod(n, 5)
    return [k * q + min(k, r) - 1 for k in range(1, 5)]


def _bounds_ntile(measures: _Sql) -> dict[str, list]:
    """PostgreSQL: the maximum of each quintile (ntile) of each measure, in one pass."""
    sql = (_Sql().add("WITH m AS (").extend(measures).add("), t AS (SELECT r, f, m, ntile(5) OVER (ORDER BY r) AS tr, "
                                                          "ntile(5) OVER (ORDER BY f) AS tf, ntile(5) OVER "
                                                          "(ORDER BY m) AS tm FROM m) "
                                                          "SELECT 'recency', tr, MAX(r)::text FROM t GROUP BY tr "
                                                          "UNION ALL SELECT 'frequency', tf, MAX(f)::text FROM t "
                                                          "GROUP BY tf UNION ALL SELECT 'monetary', tm, MAX(m)::text "
                                                          "FROM t GROUP BY tm UNION ALL SELECT 'customers', 0, "
                                                          "COUNT(*)::text FROM t"))
    with connection.cursor() as cursor:
        cursor.execute(sql.sql, sql.params)
        rows = cursor.fetchall()
    tiles: dict[str, dict[int, str]] = {"recency": {}, "frequency": {}, "monetary": {}, "customers": {}}
    for measure, tile, value in rows:
        tiles[measure][tile] = value
    customers = int(tiles.pop("customers").get(0) or 0)
    if not customers:
        return {}
    out: dict = {"customers": customers}
    for measure, by_tile in tiles.items():
        values, last = [], None
        for tile in range(1, 5):
            last = by_tile.get(tile, last)
            values.append(last)
        out[measure] = values
    return out


def _bounds_plain(measures: _Sql) -> dict[str, list]:
    """Any database: count, then pick the last row of each quintile by position (ORDER BY ... OFFSET)."""
    with connection.cursor() as cursor:
        count = _Sql().add("SELECT COUNT(*) FROM (").extend(measures).add(") m")
        cursor.execute(count.sql, count.params)
        n = cursor.fetchone()[0]
        if not n:
            return {}
        offsets = _tile_offsets(n)
        picks = _Sql().add("WITH m AS (").extend(measures).add(") SELECT ")
        for index, (column, offset) in enumerate((c, o) for c in ("r", "f", "m") for o in offsets):
            picks.add(", " if index else "").add(f"(SELECT {column} FROM m ORDER BY {column} LIMIT 1 OFFSET {offset})")
        cursor.execute(picks.sql, picks.params)
        row = cursor.fetchone()
    return {"recency": list(row[0:4]), "frequency": list(row[4:8]), "monetary": list(row[8:12]), "customers": n}


def _bounds_json(raw: dict, *, now: datetime) -> dict:
    """The boundaries as stored: four numbers or ISO times per measure, how many customers were cut and when."""
    if not raw or any(value is None for key in ("recency", "frequency", "monetary") for value in raw[key]):
        return {}
    out: dict = {"customers": raw["customers"], "cut_at": now.isoformat()}
    for measure in ("frequency", "monetary"):
        out[measure] = [float(v) for v in raw[measure]]
    recency = []
    for value in raw["recency"]:
        # SQLite's text of a stored time is naive UTC; PostgreSQL's text of a timestamptz carries "+00".
        when = value if isinstance(value, datetime) else parse_datetime(str(value))
        if timezone.is_naive(when):
            when = when.replace(tzinfo=UTC)
        recency.append(when.isoformat())
    out["recency"] = recency
    return out


def rfm_boundaries_compute(*, trait: ComputedTrait, now: datetime | None = None, method: str | None = None) -> dict:
    """The quintile boundaries of recency, frequency and monetary across the live profiles with at least one
    matching event: ntile on PostgreSQL, positions (the plain path) elsewhere; both cut the same rows."""
    now = now or timezone.now()
    where = _events_where(trait, now=now)
    measures = (_Sql().add("SELECT x.r, x.f, x.m FROM (").extend(_rfm_measures_sql(trait, where, EVENT_TABLE))
                .add(f") x WHERE EXISTS (SELECT 1 FROM {PROFILE_TABLE} p WHERE p.id = x.profile_id AND "
                     "p.merged_into_id IS NULL)"))
    method = method or ("ntile" if _postgres() else "plain")
    raw = _bounds_ntile(measures) if method == "ntile" else _bounds_plain(measures)
    return _bounds_json(raw, now=now)


# --- services ------------------------------------------------------------------------------------------------------


def _enabled_traits():
    """The enabled traits this module computes (insight traits are filled by profiles.services.insights)."""
    return list(ComputedTrait.objects.filter(enabled=True).exclude(aggregation=Aggregation.INSIGHT).order_by("pk"))


@transaction.atomic
def computed_values_refresh(*, profile_ids) -> int:
    """Recompute every enabled computed trait for these profiles (set-based: one statement on PostgreSQL).
    Values that changed are written, rows of profiles that no longer have a value are deleted (merged profiles
    have none). Returns how many rows were written or deleted. Does not send ``profile_changed``."""
    ids = sorted({int(pk) for pk in profile_ids})
    traits = _enabled_traits()
    if not ids or not traits:
        return 0
    now = timezone.now()
    cuts: dict[str, dict] = {}
    for trait in traits:
        if trait.aggregation != Aggregation.RFM:
            continue
        due = _rfm_cut_due(trait, now=now)
        if due == "inline":
            signature = _rfm_signature(trait, cut=False)  # one cut per definition, shared by its traits
            if signature not in cuts:
                cuts[signature] = rfm_boundaries_compute(trait=trait, now=now)
            trait.boundaries = cuts[signature]
            ComputedTrait.objects.filter(pk=trait.pk).update(boundaries=trait.boundaries)
        elif due == "task" and cache.add(f"profiles:rfm-cut-queued:{trait.pk}", True, RFM_CUT_QUEUED_SECONDS):
            computed_traits_recompute_enqueue(trait=trait)  # scored against the old cut until the task ran
    written, deleted = _apply(traits, now=now, profile_ids=ids)
    from profiles.services.insights import insight_values_refresh  # the insights build on this module

    insight_values_refresh(profile_ids=ids)  # scored against the newest churn and lifetime-value runs
    return written + deleted


def _rfm_cut_due(trait: ComputedTrait, *, now: datetime) -> str | None:
    """Whether a refresh needs a new RFM cut, and who makes it. "inline": a small shop (the last cut had fewer than
    RFM_RECUT_BELOW customers), where cutting is cheap and the early customers of a fresh install would otherwise
    set the scale for good. "task": no cut yet, or one older than RFM_CUT_MAX_AGE (no nightly run: the embedded
    default has no beat), on a shop of unknown or large size: the trait's full recompute is queued (at most once
    per RFM_CUT_QUEUED_SECONDS), because cutting a million customers does not belong in the profile_changed path.
    None: the last full run's cut scores everyone."""
    bounds = trait.boundaries or {}
    if _rfm_bounds_params(trait) is None:
        return "task"
    if bounds.get("customers") is not None and bounds["customers"] < RFM_RECUT_BELOW:
        return "inline"
    cut_at = parse_datetime(bounds.get("cut_at") or "")
    return "task" if cut_at is not None and now - cut_at > RFM_CUT_MAX_AGE else None


def computed_trait_recompute(*, trait: ComputedTrait, rfm_cut: dict | None = None) -> int:
    """The full population of one trait: one statement (RFM: the quintiles are cut first, unless ``rfm_cut`` hands
    over the cut another RFM trait of the same definition made in this run). Progress shows on the trait:
    ``run_started_at`` is committed first, ``last_run_at``/``last_run_rows``/``last_run_seconds`` at the end.
    Returns the number of profiles with a value. An insight trait runs its insight model instead."""
    if trait.aggregation == Aggregation.INSIGHT:
        from profiles.services.insights import insight_run  # the insights build on this module

        insight_run(kind=insight_kind(trait.insight))
        return ComputedValue.objects.filter(trait=trait).count()
    started, previous = timezone.now(), trait.run_started_at
    ComputedTrait.objects.filter(pk=trait.pk).update(run_started_at=started)
    trait.run_started_at = started
    begin = clock.monotonic()
    try:
        with transaction.atomic():
            if not trait.enabled:
                ComputedValue.objects.filter(trait=trait).delete()
            else:
                if trait.aggregation == Aggregation.RFM:
                    trait.boundaries = rfm_cut or rfm_boundaries_compute(trait=trait, now=started)
                    ComputedTrait.objects.filter(pk=trait.pk).update(boundaries=trait.boundaries)
                _apply([trait], now=started)
            rows = ComputedValue.objects.filter(trait=trait).count()
            finished = {"last_run_at": timezone.now(), "last_run_rows": rows,
                        "last_run_seconds": round(clock.monotonic() - begin, 3)}
            ComputedTrait.objects.filter(pk=trait.pk).update(**finished)
    except Exception:
        # The run failed (the task's retry or the log says why): it is not shown as running any more.
        ComputedTrait.objects.filter(pk=trait.pk, run_started_at=started).update(run_started_at=previous)
        trait.run_started_at = previous
        raise
    for name, value in finished.items():
        setattr(trait, name, value)
    return rows


def computed_traits_recompute_all(*, traits=None, done=None) -> dict[str, int]:
    """Recompute every enabled trait (or ``traits``) in full, one after another (each its own transaction): key ->
    profiles with a value; ``done(trait, rows)`` after each. The RFM traits of one definition share one cut, so a
    segment name and its scores agree."""
    rows, cuts, models_run = {}, {}, {}
    for trait in _enabled_traits() if traits is None else traits:
        if trait.aggregation == Aggregation.INSIGHT:  # one run of its model fills all of its traits
            kind = insight_kind(trait.insight)
            if kind not in models_run:
                models_run[kind] = computed_trait_recompute(trait=trait)
            rows[trait.key] = ComputedValue.objects.filter(trait=trait).count()
            if done:
                done(trait, rows[trait.key])
            continue
        signature = _rfm_signature(trait, cut=False) if trait.aggregation == Aggregation.RFM else None
        rows[trait.key] = computed_trait_recompute(trait=trait, rfm_cut=cuts.get(signature))
        if signature:
            cuts.setdefault(signature, trait.boundaries)
        if done:
            done(trait, rows[trait.key])
    return rows


def computed_traits_recompute_enqueue(*, trait: ComputedTrait | None = None) -> None:
    """Queue a full recompute ("Recompute now"): of one trait, or of every enabled trait; on commit. In the
    embedded default it runs in-process right away."""
    trait_id = trait.pk if trait is not None else None

    def enqueue():
        from profiles import tasks  # tasks import the services: imported when used

        if trait_id is None:
            tasks.computed_traits_recompute_all.delay()
        else:
            tasks.computed_trait_recompute.delay(trait_id=trait_id)

    transaction.on_commit(enqueue)


@transaction.atomic
def computed_trait_create(*, key: str, name: str, description: str = "", enabled: bool = True,
                          **definition) -> ComputedTrait:
    """A new computed trait; its values are computed by a full recompute enqueued on commit. Raises
    ComputedTraitInvalid naming each wrong field (the key too when it is taken)."""
    errors = {}
    if not isinstance(key, str) or not SLUG.match(key) or key in RESERVED_KEYS:
        errors["key"] = ["A key of lowercase letters, digits, _ and - (at most 64), such as lifetime_value; not "
                         f"{' or '.join(RESERVED_KEYS)}."]
    try:
        data = computed_trait_definition_check(definition)
    except ComputedTraitInvalid as error:
        errors = dict(error.errors)
        data = None
    if ComputedTrait.objects.filter(key=key).exists():
        errors["key"] = [f"A computed trait with the key '{key}' exists already."]
    if errors:
        raise ComputedTraitInvalid(errors)
    trait = ComputedTrait.objects.create(key=key, name=name, description=description, enabled=enabled, **data)
    if enabled:
        computed_traits_recompute_enqueue(trait=trait)
    return trait


@transaction.atomic
def computed_trait_update(*, trait: ComputedTrait, **fields) -> ComputedTrait:
    """Change a trait. A changed definition (or switching it on) enqueues a full recompute on commit; switching it
    off deletes its values (they would no longer be kept current). The key of a stock trait stays."""
    if trait.aggregation == Aggregation.INSIGHT and any(
            k in DEFINITION_FIELDS and fields[k] != getattr(trait, k) for k in fields):
        raise ComputedTraitInvalid({"aggregation": ["An insight trait is filled by its insight model; only its "
                                                    "name, description and switch can change."]})
    if "key" in fields and fields["key"] != trait.key:
        if not isinstance(fields["key"], str) or not SLUG.match(fields["key"]) or fields["key"] in RESERVED_KEYS:
            raise ComputedTraitInvalid({"key": ["A key of lowercase letters, digits, _ and - (at most 64)."]})
        if trait.stock:
            raise ComputedTraitInvalid({"key": ["The key of a stock trait is fixed (segments refer to it)."]})
        if ComputedTrait.objects.filter(key=fields["key"]).exclude(pk=trait.pk).exists():
            raise ComputedTraitInvalid({"key": [f"A computed trait with the key '{fields['key']}' exists already."]})
    if trait.aggregation == Aggregation.INSIGHT:
        for name in ("name", "description", "enabled"):
            if name in fields:
                setattr(trait, name, fields[name])
        trait.save()
        if not trait.enabled:
            ComputedValue.objects.filter(trait=trait).delete()  # filled again by the next run of its model
        return trait
    current = {name: getattr(trait, name) for name in DEFINITION_FIELDS}
    data = computed_trait_definition_check({**current, **{k: v for k, v in fields.items()
                                                         if k in DEFINITION_FIELDS}})
    changed = any(data[name] != current[name] for name in DEFINITION_FIELDS)
    switched_on = fields.get("enabled") is True and not trait.enabled
    for name in ("key", "name", "description", "enabled"):
        if name in fields:
            setattr(trait, name, fields[name])
    for name, value in data.items():
        setattr(trait, name, value)
    if changed and trait.aggregation == Aggregation.RFM:
        trait.boundaries = {}
    trait.save()
    if not trait.enabled:
        ComputedValue.objects.filter(trait=trait).delete()
    elif changed or switched_on:
        computed_traits_recompute_enqueue(trait=trait)
    return trait


@transaction.atomic
def computed_trait_delete(*, trait: ComputedTrait) -> None:
    """Delete a trait and its values. Segments whose rules name it will then fail validation (by design: a
    condition on a trait that does not exist is an error)."""
    trait.delete()


# --- the stock set -------------------------------------------------------------------------------------------------

_ORDERS = {"event_names": [ORDER_EVENT]}
_RFM = {"aggregation": "rfm", "field": "revenue", **_ORDERS}
STOCK_TRAITS: list[dict] = [
    {"key": "lifetime_value", "name": "Lifetime value", "aggregation": "sum", "field": "revenue", **_ORDERS,
     "description": "The sum of revenue of every completed order."},
    {"key": "order_count", "name": "Order count", "aggregation": "count", **_ORDERS,
     "description": "How many orders the person completed."},
    {"key": "average_order_value", "name": "Average order value", "aggregation": "avg", "field": "revenue",
     **_ORDERS, "description": "The mean revenue of the completed orders."},
    {"key": "days_since_last_order", "name": "Days since last order", "aggregation": "max", "field": "timestamp",
     "as_days_since": True, **_ORDERS, "description": "Days since the last completed order."},
    {"key": "days_since_last_seen", "name": "Days since last seen", "aggregation": "max", "field": "timestamp",
     "as_days_since": True, "description": "Days since the person's last event of any kind."},
    {"key": "rfm_recency", "name": "RFM recency", "rfm_part": "recency", **_RFM,
     "description": "1-5: quintile of the last order's time among customers (5: most recent)."},
    {"key": "rfm_frequency", "name": "RFM frequency", "rfm_part": "frequency", **_RFM,
     "description": "1-5: quintile of the number of orders among customers (5: most)."},
    {"key": "rfm_monetary", "name": "RFM monetary", "rfm_part": "monetary", **_RFM,
     "description": "1-5: quintile of the revenue among customers (5: most)."},
    {"key": "rfm_segment", "name": "RFM segment", "rfm_part": "segment", **_RFM,
     "description": "The R/FM grid: Champions, Loyal Customers, Potential Loyalists, New Customers, Promising, "
                    "Need Attention, About To Sleep, At Risk, Cannot Lose Them, Hibernating, Lost."},
    {"key": "preferred_channel", "name": "Preferred channel", "aggregation": "most_frequent", "field": "channel",
     "description": "The channel of most of the person's events."},
    {"key": "service_sentiment", "name": "Service sentiment", "aggregation": "avg", "field": "sentiment",
     "field_type": "number", "window_days": 365,
     "description": "-1 (negative) to 1 (positive): the mean sentiment of the person's service notes and free-text "
                    "feedback of the last 365 days (profiles.insights.sentiment scores each text as it arrives)."},
]
STOCK_KEYS = tuple(item["key"] for item in STOCK_TRAITS)


def computed_traits_install(*, model=None) -> int:
    """Create the stock traits that do not exist yet (existing ones are left as configured, so this is
    idempotent). Returns how many were created. ``model``: the class to use (the data migration passes its
    historical model). Their values come with the next full recompute (nightly, or "Recompute now")."""
    model = model or ComputedTrait
    have = set(model.objects.values_list("key", flat=True))
    created = []
    for item in STOCK_TRAITS:
        if item["key"] in have:
            continue
        definition = computed_trait_definition_check({k: v for k, v in item.items() if k in DEFINITION_FIELDS})
        created.append(model(key=item["key"], name=item["name"], description=item["description"], stock=True,
                             **definition))
    model.objects.bulk_create(created)
    return len(created)



# --- the insight traits --------------------------------------------------------------------------------------------

# Each output of an insight model (profiles.insights) that segments, the 360° page, activation and the API read as a
# computed trait: key (= the output's name) -> (kind of model, name, value type, description).
INSIGHT_TRAITS: dict[str, tuple[str, str, str, str]] = {
    "churn_risk": ("churn", "Churn risk", ValueType.NUMBER,
                   "0-1: the probability that a customer places no order in the coming churn horizon (90 days by "
                   "default), from the churn model trained on this installation's own history."),
    "churn_risk_level": ("churn", "Churn risk level", ValueType.TEXT,
                         "low, medium or high: the churn risk in three bands."),
    "predicted_clv_12m": ("clv", "Predicted lifetime value (12 months)", ValueType.NUMBER,
                          "The revenue expected from the customer in the next 12 months (BG/NBD with Gamma-Gamma)."),
    "predicted_orders_12m": ("clv", "Predicted orders (12 months)", ValueType.NUMBER,
                             "The number of orders expected in the next 12 months (BG/NBD)."),
    "top_recommendation": ("recommendations", "Top recommended product", ValueType.TEXT,
                           "The product id the person most probably buys next (item-to-item, popularity "
                           "fallback), leaving out what they bought."),
}


def insight_kind(insight: str) -> str:
    """The kind of insight model (InsightModel.Kind) that fills the output ``insight``."""
    return INSIGHT_TRAITS[insight][0]


def insight_traits_install(*, model=None) -> int:
    """Create the insight traits that do not exist yet (idempotent). Their values come with the next insight run."""
    model = model or ComputedTrait
    have = set(model.objects.values_list("key", flat=True))
    created = [model(key=key, name=name, description=description, stock=True, aggregation=Aggregation.INSIGHT,
                     insight=key, value_type=value_type)
               for key, (_kind, name, value_type, description) in INSIGHT_TRAITS.items() if key not in have]
    model.objects.bulk_create(created)
    return len(created)
