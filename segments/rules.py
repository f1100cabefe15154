"""The segment rule tree: its JSON format, validation with the path of each wrong node, the compiler to one SQL
query through the ORM, and the explanation of which conditions a profile meets.

A tree is a JSON object. Groups combine children with AND, OR or NOT (NOT is "not all of the children"); leaves
are conditions on traits, computed traits, identities, events, sequences of events, consent and membership of
another segment (see ``NODE_SCHEMAS`` and docs/segments.md). Paths name nodes the way the API reports errors:
``children.0.children.2.value``.

The compiler never loops over profiles: every condition becomes a filter on the profile row or a subquery
(``EXISTS``, or ``IN`` over events grouped by profile for "at least N times"), so the database answers the whole
tree with one statement. Two shapes of the same tree:

- population (default): for counting and refreshing a whole segment. Counted event conditions are
  ``id IN (SELECT profile_id ... GROUP BY profile_id HAVING count(*) >= n)``, which PostgreSQL runs as one
  hash semi-join over the events in the window.
- correlated: for re-checking a few profiles (real time) and explaining one. Counted event conditions become a
  correlated count per profile, which reads only that profile's events through the (profile, timestamp) index.

The real-time re-check compiles each segment once per process (``recheck_condition``): the correlated shape as SQL
over the outer profile row, with every time bound ("in the last 30 days", "days since", "then no B within 24 h")
computed by the database from its own clock when the statement runs, so the cached SQL never goes stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone
from jsonschema import Draft202012Validator

from consent import selectors as consent_selectors
from profiles.models import ComputedTrait, ComputedValue, Event, Identity, Profile

MAX_DEPTH = 8
MAX_NODES = 200

TRAIT_OPS = ("equals", "not_equals", "contains", "not_contains", "starts_with", "in", "not_in", "gt", "gte", "lt",
             "lte", "between", "exists", "not_exists", "is_true", "is_false", "before", "after", "within_last_days",
             "more_than_days_ago")
PROPERTY_OPS = ("equals", "not_equals", "contains", "in", "gt", "gte", "lt", "lte", "between", "exists")
EVENT_OPS = ("performed", "not_performed", "at_least", "at_most")
SEQUENCE_OPS = ("followed_by", "not_followed_by")

# A trait, property or computed-trait name: letters, digits, space, underscore, hyphen and dot (a dot walks into
# nested objects). No double underscore, which the ORM would read as a lookup.
NAME_PATTERN = r"^(?!.*__)[A-Za-z0-9_$][A-Za-z0-9_ .$-]{0,199}$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$"

_value = {"type": ["string", "number", "boolean", "array", "null"]}
_where = {
    "type": "array", "maxItems": 10,
    "items": {"type": "object", "additionalProperties": False, "required": ["property", "op"],
              "properties": {"property": {"type": "string", "pattern": NAME_PATTERN},
                             "op": {"enum": list(PROPERTY_OPS)}, "value": _value}},
}
_window = {
    "within_days": {"type": "integer", "minimum": 1, "maximum": 36500},
    "after": {"type": "string", "pattern": _ISO_DATE},
    "before": {"type": "string", "pattern": _ISO_DATE},
}
_step = {"type": "object", "additionalProperties": False, "required": ["event"],
         "properties": {"event": {"type": "string", "minLength": 1, "maxLength": 200}, "where": _where}}


def _node(required: list[str], properties: dict) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["type", *required],
            "properties": {"type": {"type": "string"}, **properties}}


NODE_SCHEMAS = {
    "group": _node(["op", "children"], {"op": {"enum": ["and", "or", "not"]}, "children": {"type": "array"}}),
    "trait": _node(["trait", "op"], {"trait": {"type": "string", "pattern": NAME_PATTERN},
                                     "op": {"enum": list(TRAIT_OPS)}, "value": _value}),
    "computed": _node(["trait", "op"], {"trait": {"type": "string", "minLength": 1, "maxLength": 100},
                                        "op": {"enum": list(TRAIT_OPS)}, "value": _value}),
    "identity": _node(["identity_type", "op"], {"identity_type": {"type": "string"},
                                                "op": {"enum": ["exists", "not_exists"]}}),
    "event": _node(["event", "op"], {"event": {"type": "string", "minLength": 1, "maxLength": 200},
                                     "op": {"enum": list(EVENT_OPS)},
                                     "count": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                                     "where": _where, **_window}),
    "sequence": _node(["first", "then", "op", "within_hours"], {
        "first": _step, "then": _step, "op": {"enum": list(SEQUENCE_OPS)},
        "within_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24 * 365},
        "first_within_days": {"type": "integer", "minimum": 1, "maximum": 36500}}),
    "consent": _node(["purpose", "op"], {"purpose": {"type": "string", "minLength": 1},
                                         "op": {"enum": ["granted", "not_granted"]}}),
    "segment": _node(["segment", "op"], {"segment": {"type": "string", "minLength": 1},
                                         "op": {"enum": ["member", "not_member"]}}),
}
_VALIDATORS = {kind: Draft202012Validator(schema) for kind, schema in NODE_SCHEMAS.items()}

# The JSON Schema of a whole tree, for the API documentation and for clients that check before they send.
RULES_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$ref": "#/$defs/node",
    "$defs": {
        "node": {"oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in NODE_SCHEMAS]},
        **{kind: {**schema, "properties": {**schema["properties"], "type": {"const": kind}}}
           for kind, schema in NODE_SCHEMAS.items()},
    },
}
RULES_SCHEMA["$defs"]["group"]["properties"]["children"] = {"type": "array", "items": {"$ref": "#/$defs/node"}}


DATE_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


class JSONIsNumber(Func):
    """True when the JSON value at a path of a JSON column is a number (``jsonb_typeof`` / ``json_type``)."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, field: str, path: str):
        super().__init__(F(field))
        self.path = path.split(".")

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(jsonb_typeof({sql} #> %s::text[]) = 'number')", (*params, self.path)

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        json_path = "$" + "".join(f'."{part}"' for part in self.path)
        return f"(json_type({sql}, %s) IN ('integer', 'real'))", (*params, json_path)


class DatabaseNowMinus(Func):
    """The database's clock minus a number of seconds: a time bound computed when the statement runs, so that a
    compiled statement can be kept and run again later (``recheck_condition``). PostgreSQL: the statement's
    timestamp; SQLite: 'now' in UTC, in the text form Django stores date-times in (to the millisecond)."""

    output_field = DateTimeField()

    def __init__(self, seconds: float):
        super().__init__(Value(float(seconds)))

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(STATEMENT_TIMESTAMP() - make_interval(secs => {sql}))", params

    def as_sqlite(self, compiler, connection, **extra):
        seconds = self.source_expressions[0].value
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s)", (f"{-seconds:+f} seconds",)


class RuleError(ValueError):
    """An invalid rule tree. ``errors`` maps the path of each wrong node or field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        first = next(iter(errors.items()))
        super().__init__(f"{first[0] or 'rules'}: {first[1][0]}")


def _join(*parts) -> str:
    return ".".join(str(p) for p in parts if p not in ("", None))


# --- validation -------------------------------------------------------------------------------------------------

@dataclass
class _Check:
    """What validation learns while it walks, so that it asks the database about each name once."""

    errors: dict
    segment_id: int | None
    nodes: int = 0

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)


def rules_validate(rules, *, segment_id: int | None = None) -> dict:
    """Check a tree: its shape against the schema, every name against what exists (traits, computed traits,
    events, identity types, purposes, segments), values against their operator, and no segment that refers to
    itself through others. Returns the tree; raises ``RuleError`` with every problem and its path."""
    check = _Check(errors={}, segment_id=segment_id)
    if not isinstance(rules, dict):
        raise RuleError({"": ["A rule tree is a JSON object (a group or a condition)."]})
    _validate_node(rules, "", 0, check)
    if check.errors:
        raise RuleError(check.errors)
    return rules


def _validate_node(node, path: str, depth: int, check: _Check) -> None:
    check.nodes += 1
    if check.nodes > MAX_NODES:
        if check.nodes == MAX_NODES + 1:
            check.add(path, f"A tree may hold at most {MAX_NODES} nodes.")
        return
    if not isinstance(node, dict):
        check.add(path, "Each node is a JSON object with a type.")
        return
    kind = node.get("type")
    if kind not in NODE_SCHEMAS:
        check.add(_join(path, "type"), f"Unknown node type {kind!r}; one of: {', '.join(NODE_SCHEMAS)}.")
        return
    shape_ok = True
    for error in _VALIDATORS[kind].iter_errors(node):
        where = list(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(node) - set(NODE_SCHEMAS[kind]["properties"]))
            for name in extra:
                check.add(_join(path, name), f"Unknown field {name!r} for a {kind} node.")
            continue
        shape_ok = False
        if error.validator == "required":
            missing = error.message.split("'")[1]
            check.add(_join(path, *where, missing), "This field is required.")
            continue
        check.add(_join(path, *where), error.message)
    if kind == "group":
        if depth >= MAX_DEPTH:
            check.add(path, f"Groups nest at most {MAX_DEPTH} deep.")
            return
        children = node.get("children")
        if isinstance(children, list):
            if not children:
                check.add(_join(path, "children"), "A group needs at least one condition.")
            for index, child in enumerate(children):
                _validate_node(child, _join(path, "children", index), depth + 1, check)
        return
    if shape_ok:
        _SEMANTIC_CHECKS[kind](node, path, check)


def _check_value(op: str, value, path: str, check: _Check, *, numeric_only: bool = False) -> None:
    """The value each operator needs."""
    where = _join(path, "value")
    if op in ("exists", "not_exists", "is_true", "is_false"):
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or any(isinstance(v, (list, dict)) for v in value):
            check.add(where, f"'{op}' needs a non-empty list of values.")
        return
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_comparable(v) for v in value)):
            check.add(where, "'between' needs a list of two numbers or two dates: [low, high].")
        return
    if op in ("within_last_days", "more_than_days_ago"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            check.add(where, f"'{op}' needs a whole number of days.")
        return
    if op in ("before", "after"):
        if not _is_date(value):
            check.add(where, f"'{op}' needs a date (YYYY-MM-DD).")
        return
    if value is None or isinstance(value, (list, dict)):
        check.add(where, f"'{op}' needs a single value.")
        return
    if op in ("gt", "gte", "lt", "lte") and not _comparable(value):
        check.add(where, f"'{op}' needs a number or a date.")
    elif op in ("contains", "not_contains", "starts_with") and not isinstance(value, str):
        check.add(where, f"'{op}' needs text.")
    elif numeric_only and op in ("equals", "not_equals") and not isinstance(value, (int, float)):
        check.add(where, f"'{op}' on a number needs a number.")


def _comparable(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or _is_date(value)


def _is_date(value) -> bool:
    if not isinstance(value, str) or not re.match(_ISO_DATE, value):
        return False
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def _check_trait(node, path, check):
    from profiles.selectors import trait_is_sensitive
    from segments import catalog

    if not catalog.trait_exists(node["trait"]):
        check.add(_join(path, "trait"), f"No profile has a trait {node['trait']!r}.")
    if node["op"] not in ("exists", "not_exists") and trait_is_sensitive(node["trait"]):
        # Encrypted at rest (profiles.services.sensitive): only whether it is set can be tested.
        check.add(_join(path, "op"), f"{node['trait']!r} is a sensitive trait, encrypted at rest: a segment may "
                                     "only test whether it is set or not set, never its value.")
        return
    _check_value(node["op"], node.get("value"), path, check)


def _check_computed(node, path, check):
    trait = ComputedTrait.objects.filter(key=node["trait"]).first()
    if trait is None:
        check.add(_join(path, "trait"), f"There is no computed trait {node['trait']!r}.")
        return
    op = node["op"]
    allowed = _COMPUTED_OPS[trait.value_type]
    if op not in allowed:
        check.add(_join(path, "op"), f"'{op}' does not apply to {trait.value_type} values; use one of: "
                                     f"{', '.join(allowed)}.")
        return
    _check_value(op, node.get("value"), path, check,
                 numeric_only=trait.value_type in ("number", "days_since"))


def _check_identity(node, path, check):
    if node["identity_type"] not in Identity.Type.values:
        check.add(_join(path, "identity_type"),
                  f"Unknown identity type {node['identity_type']!r}; one of: {', '.join(Identity.Type.values)}.")


def _check_event(node, path, check):
    from segments import catalog

    if not catalog.event_exists(node["event"]):
        check.add(_join(path, "event"), f"No event {node['event']!r} has been received.")
    if node["op"] in ("at_least", "at_most") and "count" not in node:
        check.add(_join(path, "count"), f"'{node['op']}' needs a count.")
    if "within_days" in node and ("after" in node or "before" in node):
        check.add(_join(path, "within_days"), "Give either within_days or after/before, not both.")
    _check_where(node.get("where", []), _join(path, "where"), check)


def _check_where(where, path, check):
    for index, item in enumerate(where):
        _check_value(item["op"], item.get("value"), _join(path, index), check)


def _check_sequence(node, path, check):
    from segments import catalog

    for step in ("first", "then"):
        if not catalog.event_exists(node[step]["event"]):
            check.add(_join(path, step, "event"), f"No event {node[step]['event']!r} has been received.")
        _check_where(node[step].get("where", []), _join(path, step, "where"), check)


def _check_consent(node, path, check):
    if not consent_selectors.purpose_exists(node["purpose"]):
        check.add(_join(path, "purpose"), f"There is no consent purpose {node['purpose']!r}.")


def _check_segment(node, path, check):
    from segments.models import Segment

    target = Segment.objects.filter(slug=node["segment"]).first()
    if target is None:
        check.add(_join(path, "segment"), f"There is no segment {node['segment']!r}.")
        return
    if check.segment_id is not None and (target.pk == check.segment_id
                                         or check.segment_id in segment_dependencies(target)):
        check.add(_join(path, "segment"), "A segment cannot depend on itself (directly or through others).")


_SEMANTIC_CHECKS = {"trait": _check_trait, "computed": _check_computed, "identity": _check_identity,
                    "event": _check_event, "sequence": _check_sequence, "consent": _check_consent,
                    "segment": _check_segment}

_NUMBER_OPS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists")
_COMPUTED_OPS = {
    "number": _NUMBER_OPS,
    "days_since": _NUMBER_OPS,
    "text": ("equals", "not_equals", "contains", "not_contains", "starts_with", "in", "not_in", "exists",
             "not_exists"),
    "datetime": ("before", "after", "within_last_days", "more_than_days_ago", "between", "exists", "not_exists"),
}


def segment_dependencies(segment, _seen=None) -> set[int]:
    """The ids of every segment this one refers to, directly or through others."""
    from segments.models import Segment

    seen = set() if _seen is None else _seen
    for slug in referenced_segments(segment.rules):
        target = Segment.objects.filter(slug=slug).only("pk", "rules").first()
        if target is not None and target.pk not in seen:
            seen.add(target.pk)
            segment_dependencies(target, seen)
    return seen


def referenced_segments(node) -> list[str]:
    if not isinstance(node, dict):
        return []
    if node.get("type") == "segment":
        return [node.get("segment")]
    return [slug for child in node.get("children") or [] for slug in referenced_segments(child)]


# --- compiling --------------------------------------------------------------------------------------------------

class _Compiler:
    """``database_now``: time bounds are computed by the database when the statement runs (``DatabaseNowMinus``)
    instead of from ``now``; only conditions on dates in traits still use today's date (``uses_today``)."""

    def __init__(self, *, correlated: bool, now: datetime | None = None, database_now: bool = False):
        self.correlated = correlated
        self.now = now or timezone.now()
        self.today = timezone.localdate(self.now)
        self.database_now = database_now
        self.uses_today = False
        self._computed: dict[str, ComputedTrait] = {}

    def ago(self, delta: timedelta):
        """The moment ``delta`` before now: a value, or an expression over the database's clock."""
        return DatabaseNowMinus(delta.total_seconds()) if self.database_now else self.now - delta

    def node(self, node) -> Q:
        kind = node["type"]
        if kind == "group":
            children = [self.node(child) for child in node["children"]]
            combined = children[0]
            for child in children[1:]:
                combined = (combined | child) if node["op"] == "or" else (combined & child)
            return ~combined if node["op"] == "not" else combined
        return getattr(self, kind)(node)

    # Values compared inside a JSON column (traits, event properties): PostgreSQL compares jsonb by type, so a
    # number never equals a string and "gt 30" never fails on text; SQLite's JSON_EXTRACT does the same.
    def json_value(self, field: str, name: str, op: str, value) -> Q:
        key = f"{field}__{name.replace('.', '__')}"
        if op in ("exists", "not_exists"):
            q = Q(**{f"{field}__has_key": name}) if "." not in name else Q(**{f"{key}__isnull": False})
            return q if op == "exists" else ~q
        present = Q(**{f"{key}__isnull": False})
        if op in ("within_last_days", "more_than_days_ago"):
            self.uses_today = True
            bound = (self.today - timedelta(days=value)).isoformat()
            lookup = "gte" if op == "within_last_days" else "lt"
            return Q(**{f"{key}__regex": DATE_REGEX}) & Q(**{f"{key}__{lookup}": bound})
        q = self.compare(key, op, value, present=present)
        if op in ("gt", "gte", "lt", "lte", "between", "before", "after"):
            # An ordering only means something between values of one kind: "age > 30" never matches the text
            # "unknown", and "born before 1980" only matches dates (SQLite would order any text above numbers).
            sample = value[0] if op == "between" else value
            if isinstance(sample, str):
                q &= Q(**{f"{key}__regex": DATE_REGEX})
            else:
                q &= Q(JSONIsNumber(field, name))
        return q

    def compare(self, key: str, op: str, value, *, present: Q) -> Q:
        if op == "equals":
            return Q(**{key: value})
        if op == "not_equals":
            return present & ~Q(**{key: value})
        if op in ("is_true", "is_false"):
            return Q(**{key: op == "is_true"})
        if op == "contains":
            return Q(**{f"{key}__icontains": value})
        if op == "not_contains":
            return present & ~Q(**{f"{key}__icontains": value})
        if op == "starts_with":
            return Q(**{f"{key}__istartswith": value})
        if op == "in":
            return Q(**{f"{key}__in": value})
        if op == "not_in":
            return present & ~Q(**{f"{key}__in": value})
        if op == "between":
            low, high = value
            return Q(**{f"{key}__gte": low, f"{key}__lte": high})
        if op in ("gt", "gte", "lt", "lte"):
            return Q(**{f"{key}__{op}": value})
        if op == "before":
            return Q(**{f"{key}__lt": value})
        if op == "after":
            return Q(**{f"{key}__gt": value})
        raise ValueError(f"unknown operator {op}")

    def trait(self, node) -> Q:
        return self.json_value("traits", node["trait"], node["op"], node.get("value"))

    def computed(self, node) -> Q:
        key = node["trait"]
        if key not in self._computed:
            self._computed[key] = computed_trait_definition(key)
        trait = self._computed[key]
        op, value = node["op"], node.get("value")
        values = ComputedValue.objects.filter(trait=trait, profile=OuterRef("pk"))
        if op == "not_exists":
            return ~Exists(values)
        if op != "exists":
            values = values.filter(self._computed_value(trait, op, value))
        return Q(Exists(values))

    def _computed_value(self, trait, op: str, value) -> Q:
        kind = trait.value_type
        if kind == "days_since":
            # "n days since the last order" is exact at any moment: compare the stored time with now minus n days.
            # More days since means an earlier time, so the comparison turns round.
            def at(days):
                return self.ago(timedelta(days=float(days)))

            flip = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}
            if op in flip:
                return Q(**{f"value_time__{flip[op]}": at(value)})
            if op == "between":
                low, high = sorted(value)
                return Q(value_time__gte=at(high), value_time__lte=at(low))
            if op in ("equals", "not_equals"):
                day = Q(value_time__gt=at(value + 1), value_time__lte=at(value))
                return day if op == "equals" else ~day
            if op in ("in", "not_in"):
                days = Q()
                for v in value:
                    days |= Q(value_time__gt=at(v + 1), value_time__lte=at(v))
                return days if op == "in" else ~days
        if kind == "datetime":
            if op in ("within_last_days", "more_than_days_ago"):
                bound = self.ago(timedelta(days=value))
                return Q(value_time__gte=bound) if op == "within_last_days" else Q(value_time__lt=bound)
            if op == "between":
                return Q(value_time__gte=_aware(value[0]), value_time__lte=_aware(value[1], end=True))
            return Q(value_time__lt=_aware(value)) if op == "before" else Q(value_time__gt=_aware(value, end=True))
        column = "value_number" if kind == "number" else "value_text"
        if kind == "text" and op in ("equals", "not_equals", "in", "not_in"):
            # Text computed values compare case-insensitively, as people type them ("web" finds "Web").
            if op in ("equals", "not_equals"):
                q = Q(value_text__iexact=value)
                return q if op == "equals" else ~q
            q = Q()
            for v in value:
                q |= Q(value_text__iexact=v)
            return q if op == "in" else ~q
        return self.compare(column, op, value, present=Q(**{f"{column}__isnull": False}))

    def identity(self, node) -> Q:
        exists = Exists(Identity.objects.filter(profile=OuterRef("pk"), type=node["identity_type"]))
        return Q(exists) if node["op"] == "exists" else ~exists

    def events(self, step: dict, *, window: dict | None = None):
        events = Event.objects.filter(name=step["event"])
        for item in step.get("where", []):
            events = events.filter(self.json_value("properties", item["property"], item["op"], item.get("value")))
        window = window or {}
        if "within_days" in window:
            events = events.filter(timestamp__gte=self.ago(timedelta(days=window["within_days"])))
        if "after" in window:
            events = events.filter(timestamp__gte=_aware(window["after"]))
        if "before" in window:
            events = events.filter(timestamp__lte=_aware(window["before"], end=True))
        return events

    def event(self, node) -> Q:
        events = self.events(node, window=node)
        op, count = node["op"], node.get("count", 1)
        if op == "at_least" and count <= 0:
            return Q(pk__isnull=False)
        if op == "performed" or (op == "at_least" and count == 1):
            return Q(Exists(events.filter(profile=OuterRef("pk"))))
        if op == "not_performed" or (op == "at_most" and count == 0):
            return ~Exists(events.filter(profile=OuterRef("pk")))
        # at least n (n > 1), or at most n (= not at least n + 1).
        threshold = count if op == "at_least" else count + 1
        if self.correlated:
            counted = Coalesce(Subquery(events.filter(profile=OuterRef("pk")).order_by().values("profile")
                                        .annotate(n=Count("*")).values("n"), output_field=IntegerField()),
                               Value(0))
            at_least = Q(GreaterThanOrEqual(counted, threshold))
        else:
            at_least = Q(pk__in=events.order_by().values("profile").annotate(n=Count("*"))
                         .filter(n__gte=threshold).values("profile"))
        return at_least if op == "at_least" else ~at_least

    def sequence(self, node) -> Q:
        first = self.events(node["first"], window={"within_days": node["first_within_days"]}
                            if "first_within_days" in node else None)
        hours = timedelta(hours=node["within_hours"])
        then = self.events(node["then"]).filter(profile=OuterRef("profile"), timestamp__gt=OuterRef("timestamp"),
                                                 timestamp__lte=OuterRef("timestamp") + hours)
        if node["op"] == "followed_by":
            firsts = first.filter(Exists(then))
        else:
            # "A, then no B within h": decided only once h has passed since A.
            firsts = first.filter(timestamp__lte=self.ago(hours)).exclude(Exists(then))
        return Q(Exists(firsts.filter(profile=OuterRef("pk"))))

    def consent(self, node) -> Q:
        granted = consent_selectors.consent_granted_exists(purpose_key=node["purpose"], profile_ref=OuterRef("pk"))
        return Q(granted) if node["op"] == "granted" else ~granted

    def segment(self, node) -> Q:
        from segments.models import Membership

        member = Exists(Membership.objects.filter(segment__slug=node["segment"], profile=OuterRef("pk"),
                                                  exited_at__isnull=True))
        return Q(member) if node["op"] == "member" else ~member


def computed_trait_definition(key: str) -> ComputedTrait:
    """What the compiler needs of a computed trait: its id and value type."""
    return ComputedTrait.objects.only("pk", "key", "value_type").get(key=key)


def _aware(value: str, *, end: bool = False) -> datetime:
    """An ISO date or date-time as an aware datetime (a bare date: its start, or its end with ``end``)."""
    if len(value) <= 10:
        day = date.fromisoformat(value)
        moment = datetime.combine(day + timedelta(days=1) if end else day, datetime.min.time())
        if end:
            moment -= timedelta(microseconds=1)
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def rules_compile(rules: dict, *, correlated: bool = False, now: datetime | None = None) -> Q:
    """The tree as one Q over Profile (a validated tree: see ``rules_validate``)."""
    return _Compiler(correlated=correlated, now=now).node(rules)


def profiles_matching(rules: dict, *, correlated: bool = False, now: datetime | None = None):
    """Live (not merged) profiles that meet the tree: one SQL query."""
    return Profile.objects.filter(merged_into__isnull=True).filter(
        rules_compile(rules, correlated=correlated, now=now))


@dataclass(frozen=True)
class RecheckCondition:
    """A tree compiled once for the real-time re-check: ``sql`` is a boolean over the outer row of
    ``profiles_profile`` (true when that live profile meets the tree), with its ``params``. Time bounds are
    computed by the database when the statement runs; ``day`` is the local date the SQL was compiled on when the
    tree compares dates in traits with today (it must be compiled again on another day), else None."""

    sql: str
    params: tuple
    day: date | None


def recheck_condition(rules: dict) -> RecheckCondition:
    """The correlated shape of a (validated) tree as SQL that can be kept and run again (see ``RecheckCondition``)."""
    compiler = _Compiler(correlated=True, database_now=True)
    meets = ExpressionWrapper(Q(merged_into__isnull=True) & compiler.node(rules), output_field=BooleanField())
    query = Profile.objects.annotate(meets=meets).query
    sql, params = query.get_compiler(using=Profile.objects.db).compile(query.annotations["meets"])
    return RecheckCondition(sql=sql, params=tuple(params), day=compiler.today if compiler.uses_today else None)


# --- explaining -------------------------------------------------------------------------------------------------

def rules_explain(rules: dict, profile, *, now: datetime | None = None) -> list[dict]:
    """Which conditions this profile meets: one entry per node, in tree order, with its path, depth, a sentence
    and ``matched``. The leaves are evaluated by the database in one query; groups follow from their children."""
    compiler = _Compiler(correlated=True, now=now)
    leaves: list[tuple[str, dict]] = []
    _collect_leaves(rules, "", leaves)
    annotations = {f"c{i}": Exists(Profile.objects.filter(pk=OuterRef("pk")).filter(compiler.node(node)))
                   for i, (_, node) in enumerate(leaves)}
    row = Profile.objects.filter(pk=profile.pk).values(**annotations).first() if annotations else {}
    results = {path: bool(row and row[f"c{i}"]) for i, (path, _) in enumerate(leaves)}
    out: list[dict] = []
    _explain_node(rules, "", 0, results, out)
    return out


def _collect_leaves(node, path, leaves):
    if node["type"] == "group":
        for index, child in enumerate(node["children"]):
            _collect_leaves(child, _join(path, "children", index), leaves)
    else:
        leaves.append((path, node))


def _explain_node(node, path, depth, results, out) -> bool:
    entry = {"path": path, "depth": depth, "type": node["type"], "label": rules_describe(node), "matched": False}
    out.append(entry)
    if node["type"] == "group":
        children = [_explain_node(child, _join(path, "children", i), depth + 1, results, out)
                    for i, child in enumerate(node["children"])]
        matched = any(children) if node["op"] == "or" else all(children)
        entry["matched"] = not matched if node["op"] == "not" else matched
    else:
        entry["matched"] = results[path]
    return entry["matched"]


# --- describing -------------------------------------------------------------------------------------------------

_OP_WORDS = {
    "equals": "is", "not_equals": "is not", "contains": "contains", "not_contains": "does not contain",
    "starts_with": "starts with", "in": "is one of", "not_in": "is none of", "gt": "is more than",
    "gte": "is at least", "lt": "is less than", "lte": "is at most", "between": "is between",
    "exists": "is set", "not_exists": "is not set", "is_true": "is true", "is_false": "is false",
    "before": "is before", "after": "is after", "within_last_days": "is within the last",
    "more_than_days_ago": "is more than",
}


def _value_words(op: str, value) -> str:
    if op in ("exists", "not_exists", "is_true", "is_false"):
        return ""
    if op in ("in", "not_in") and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"{value[0]} and {value[1]}"
    if op == "within_last_days":
        return f"{value} days"
    if op == "more_than_days_ago":
        return f"{value} days ago"
    return str(value)


def _condition_words(subject: str, op: str, value) -> str:
    return " ".join(part for part in (subject, _OP_WORDS.get(op, op), _value_words(op, value)) if part)


def _where_words(where) -> str:
    if not where:
        return ""
    return " with " + " and ".join(_condition_words(w["property"], w["op"], w.get("value")) for w in where)


def _window_words(node) -> str:
    if "within_days" in node:
        return f" in the last {node['within_days']} days"
    parts = []
    if "after" in node:
        parts.append(f"after {node['after']}")
    if "before" in node:
        parts.append(f"before {node['before']}")
    return (" " + " and ".join(parts)) if parts else ""


def rules_describe(node) -> str:
    """A node in words: "country is DE", "Order Completed at least 2 times in the last 30 days"."""
    kind = node.get("type")
    if kind == "group":
        return {"and": "All of", "or": "Any of", "not": "Not all of"}.get(node.get("op"), "Group")
    if kind == "trait":
        return _condition_words(node.get("trait", "?"), node.get("op"), node.get("value"))
    if kind == "computed":
        return _condition_words(f"{node.get('trait', '?')} (computed)", node.get("op"), node.get("value"))
    if kind == "identity":
        return f"has {'an' if node.get('op') == 'exists' else 'no'} {node.get('identity_type', '?')} identity"
    if kind == "event":
        op, count = node.get("op"), node.get("count")
        how = {"performed": "performed", "not_performed": "not performed",
               "at_least": f"at least {count} times", "at_most": f"at most {count} times"}.get(op, op)
        return f"{node.get('event', '?')}{_where_words(node.get('where'))} {how}{_window_words(node)}"
    if kind == "sequence":
        first, then = node.get("first") or {}, node.get("then") or {}
        joiner = "then" if node.get("op") == "followed_by" else "then no"
        text = (f"{first.get('event', '?')}{_where_words(first.get('where'))} {joiner} "
                f"{then.get('event', '?')}{_where_words(then.get('where'))} within {node.get('within_hours')} h")
        if "first_within_days" in node:
            text += f" (first in the last {node['first_within_days']} days)"
        return text
    if kind == "consent":
        return f"consent for {node.get('purpose', '?')} {'granted' if node.get('op') == 'granted' else 'not granted'}"
    if kind == "segment":
        return f"{'in' if node.get('op') == 'member' else 'not in'} segment {node.get('segment', '?')}"
    return str(kind)
