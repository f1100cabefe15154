"""Forms of the segment builder.

The rule tree (segments.rules) lives in the form itself: every node's fields are named by the node's path in the
tree (``rules.children.0.trait``, ``rules.children.1.where.0.value``), so a plain POST carries the whole tree,
with or without JavaScript. Buttons name an action on a path (``add:children.1``, ``remove:children.0``); the
view parses the tree (``rules_from_data``), applies the action (``rules_action``) and renders the builder again
from ``builder_nodes``, which gives each node and field its name, id, choices and the validation errors whose path
points at it.
"""

import re
from functools import cached_property

from django import forms
from django.utils.http import urlencode

from profiles.models import Identity
from segments import catalog
from segments.models import Segment

PREFIX = "rules"
CONDITION_TYPES = [
    ("trait", "Trait"),
    ("computed", "Computed trait"),
    ("identity", "Identity"),
    ("event", "Event"),
    ("sequence", "Sequence of events"),
    ("consent", "Consent"),
    ("segment", "Segment membership"),
]
# "not" is NOT (AND of the children): with one child "not this"; with several, not all of them at once.
GROUP_OPS = [("and", "All of"), ("or", "Any of"), ("not", "Not all of")]
VALUE_OPS = [
    ("equals", "is"), ("not_equals", "is not"), ("contains", "contains"), ("not_contains", "does not contain"),
    ("starts_with", "starts with"), ("in", "is one of"), ("not_in", "is none of"),
    ("gt", "is greater than"), ("gte", "is at least"), ("lt", "is less than"), ("lte", "is at most"),
    ("between", "is between"), ("exists", "has a value"), ("not_exists", "has no value"),
    ("is_true", "is true"), ("is_false", "is false"), ("before", "is before"), ("after", "is after"),
    ("within_last_days", "is within the last … days"), ("more_than_days_ago", "is more than … days ago"),
]
# The operators that fit a type of value: trait types as segments.catalog names them (dates are ISO text), and the
# value types of computed traits (segments.rules checks the same). A type not named here gets every operator.
_TEXT = ["equals", "not_equals", "contains", "not_contains", "starts_with", "in", "not_in", "exists", "not_exists"]
_NUMBER = ["equals", "not_equals", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"]
_DATE = ["before", "after", "within_last_days", "more_than_days_ago", "between", "exists", "not_exists"]
TRAIT_OPS_BY_TYPE = {
    "text": _TEXT + ["before", "after", "within_last_days", "more_than_days_ago", "between"],
    "number": _NUMBER,
    "boolean": ["is_true", "is_false", "exists", "not_exists"],
    "object": ["exists", "not_exists"],
    "array": ["exists", "not_exists"],
}
COMPUTED_OPS_BY_TYPE = {"number": _NUMBER, "days_since": _NUMBER, "text": _TEXT, "datetime": _DATE}
# Property filters of events know fewer operators than traits (segments.rules.PROPERTY_OPS).
PROPERTY_OPS = ["equals", "not_equals", "contains", "in", "gt", "gte", "lt", "lte", "between", "exists"]
NUMERIC_TYPES = {"number", "integer", "float", "days_since"}
NO_VALUE_OPS = {"exists", "not_exists", "is_true", "is_false"}
LIST_OPS = {"in", "not_in"}
DAYS_OPS = {"within_last_days", "more_than_days_ago"}
DATE_OPS = {"before", "after"}
NUMBER_OPS = {"gt", "gte", "lt", "lte", "between"}
IDENTITY_OPS = [("exists", "has"), ("not_exists", "has no")]
EVENT_OPS = [("performed", "performed"), ("not_performed", "did not perform"), ("at_least", "performed at least"),
             ("at_most", "performed at most")]
COUNT_OPS = {"at_least", "at_most"}
WINDOWS = [("", "at any time"), ("days", "in the last … days"), ("dates", "between dates")]
SEQUENCE_OPS = [("followed_by", "followed by"), ("not_followed_by", "not followed by")]
CONSENT_OPS = [("granted", "has granted"), ("not_granted", "has not granted")]
SEGMENT_OPS = [("member", "is in"), ("not_member", "is not in")]
ACTIONS = {"add", "group", "remove", "where", "save", "refresh", "preview"}
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def empty_condition() -> dict:
    return {"type": "trait", "trait": "", "op": "equals", "value": ""}


def empty_rules() -> dict:
    return {"type": "group", "op": "and", "children": [empty_condition()]}


def path_join(path: str, *parts) -> str:
    return ".".join([path, *map(str, parts)] if path else map(str, parts))


# --- POST data -> rule tree --------------------------------------------------------------------------------------


def _unflatten(data, prefix: str = PREFIX) -> dict:
    """{"rules.children.0.trait": "country", ...} as nested dicts ({"children": {"0": {"trait": ...}}})."""
    root: dict = {}
    start = prefix + "."
    for key in data:
        if not key.startswith(start):
            continue
        *parents, leaf = key[len(start):].split(".")
        node = root
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = data.get(key, "")
    return root


def _items(raw) -> list:
    """The list a dict keyed by index holds ({"0": ..., "1": ...} -> [..., ...]), in index order."""
    if not isinstance(raw, dict):
        return []
    return [raw[key] for key in sorted((k for k in raw if k.isdigit()), key=int)]


def _text(raw, key: str) -> str:
    value = raw.get(key, "") if isinstance(raw, dict) else ""
    return value.strip() if isinstance(value, str) else ""


def _number(text: str):
    """A number typed as text, as int or float; other text stays as it is (the validator names it)."""
    if _NUMBER_RE.match(text):
        return float(text) if "." in text else int(text)
    return text


def _value(raw, op: str, value_type: str | None):
    """The value of a trait condition or a property filter from its input(s), typed by operator and type."""
    if op in NO_VALUE_OPS:
        return None
    if op == "between":
        pair = raw.get("value") if isinstance(raw.get("value"), dict) else {}
        return [_number(_text(pair, "0")), _number(_text(pair, "1"))]
    text = _text(raw, "value") if not isinstance(raw.get("value"), dict) else ""
    if op in LIST_OPS:
        items = [item.strip() for item in text.split(",") if item.strip()]
        return [_number(item) for item in items] if value_type in NUMERIC_TYPES else items
    if op in DAYS_OPS or op in NUMBER_OPS or value_type in NUMERIC_TYPES:
        return _number(text)
    return text


def _with_value(node: dict, raw, value_type: str | None) -> dict:
    value = _value(raw, node["op"], value_type)
    if value is not None:
        node["value"] = value
    return node


def _where(raw, event: str, choices) -> list[dict]:
    items = []
    for item in _items(raw):
        prop = _text(item, "property")
        node = {"property": prop, "op": _text(item, "op") or "equals"}
        items.append(_with_value(node, item, choices.property_type(event, prop) if choices else None))
    return items


def _event_part(raw, choices) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    event = _text(raw, "event")
    return {"event": event, "where": _where(raw.get("where"), event, choices)}


def _condition(raw: dict, choices) -> dict:
    kind = _text(raw, "type") or "trait"
    op = _text(raw, "op")
    if kind == "group":
        return {"type": "group", "op": op or "and",
                "children": [_condition(child, choices) for child in _items(raw.get("children"))]}
    if kind in ("trait", "computed"):
        name = _text(raw, "trait")
        value_type = None
        if choices:
            value_type = choices.trait_type(name) if kind == "trait" else choices.computed_type(name)
        return _with_value({"type": kind, "trait": name, "op": op or "equals"}, raw, value_type)
    if kind == "identity":
        return {"type": "identity", "identity_type": _text(raw, "identity_type"), "op": op or "exists"}
    if kind == "event":
        event = _text(raw, "event")
        node = {"type": "event", "event": event, "op": op or "performed"}
        if node["op"] in COUNT_OPS:
            node["count"] = _number(_text(raw, "count"))
        window = _text(raw, "window")
        if window == "days":
            node["within_days"] = _number(_text(raw, "within_days"))
        elif window == "dates":
            node.update({key: _text(raw, key) for key in ("after", "before") if _text(raw, key)})
        node["where"] = _where(raw.get("where"), event, choices)
        return node
    if kind == "sequence":
        node = {"type": "sequence", "first": _event_part(raw.get("first"), choices),
                "then": _event_part(raw.get("then"), choices), "op": op or "followed_by",
                "within_hours": _number(_text(raw, "within_hours"))}
        if _text(raw, "first_within_days"):
            node["first_within_days"] = _number(_text(raw, "first_within_days"))
        return node
    if kind == "consent":
        return {"type": "consent", "purpose": _text(raw, "purpose"), "op": op or "granted"}
    if kind == "segment":
        return {"type": "segment", "segment": _text(raw, "segment"), "op": op or "member"}
    return {"type": kind}  # an unknown type: the validator names it


def rules_from_data(data, *, choices=None) -> dict:
    """The rule tree held by a builder form's data. ``choices`` (BuilderChoices) types the values: a number trait
    compared with "500" compares with 500."""
    raw = _unflatten(data)
    if not raw:
        return empty_rules()
    raw["type"] = "group"  # the root is always a group
    return _condition(raw, choices)


# --- actions on the tree -----------------------------------------------------------------------------------------


def _resolve(tree: dict, path: str):
    """(parent container, key) of the node at ``path``; ("", tree) resolves to (None, None)."""
    if not path:
        return None, None
    parts = path.split(".")
    container = tree
    for part in parts[:-1]:
        container = container[int(part)] if isinstance(container, list) else container[part]
    last = parts[-1]
    return container, int(last) if isinstance(container, list) else last


def _node_at(tree: dict, path: str):
    container, key = _resolve(tree, path)
    return tree if container is None else container[key]


def rules_action(tree: dict, action: str) -> dict:
    """Apply a builder button to the tree: ``add:<group path>`` (a condition), ``group:<group path>`` (a group
    with one condition), ``remove:<path>``, ``where:<event path>`` (a property filter). A path that does not fit
    the tree (a stale page) leaves the tree as it was."""
    verb, _, path = action.partition(":")
    try:
        if verb in ("add", "group"):
            child = empty_condition() if verb == "add" else {"type": "group", "op": "and",
                                                              "children": [empty_condition()]}
            _node_at(tree, path).setdefault("children", []).append(child)
        elif verb == "where":
            _node_at(tree, path).setdefault("where", []).append({"property": "", "op": "equals", "value": ""})
        elif verb == "remove" and path:
            container, key = _resolve(tree, path)
            if isinstance(container, list):
                del container[key]
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        pass
    return tree


def action_verb(action: str) -> str:
    verb = action.partition(":")[0]
    return verb if verb in ACTIONS else "refresh"


# --- rule tree -> what the builder shows -------------------------------------------------------------------------


class _Builder:
    def __init__(self, choices):
        self.choices = choices
        self.slots: set[str] = {""}
        self.aliases: dict[str, str] = {}  # error paths shown at another slot (a between's value at its "to")
        self.fields: list[dict] = []
        self.places: list[dict] = []  # nodes, sequence steps, property filters: where their own errors show

    def place(self, path: str, **view) -> dict:
        """A node or part of one that shows its own errors (those no field of it takes)."""
        self.slots.add(path)
        place = {"path": path, "id": "n-" + (path.replace(".", "-") or "root"), "errors": [], **view}
        self.places.append(place)
        return place

    def field(self, path: str, key: str, *, value="", options=None, label: str = "", kind: str = "text",
              choose: bool = False, **extra) -> dict:
        """One input: its name in the form, its id, value, choices (a select) or input type, and label. ``choose``:
        a select of names from the data, which starts empty ("Choose …") and keeps a name the data lost."""
        slot = path_join(path, key)
        self.slots.add(slot)
        value = "" if value is None else value
        if kind == "date" and value and not _DAY_RE.match(str(value)):
            kind = "text"  # a date-time (from the API) stays as typed; a date input would drop it
        if choose:
            options = _with_current(options, value)
        name = path_join(PREFIX, slot)
        field = {"slot": slot, "name": name, "id": "r-" + slot.replace(".", "-"), "value": value,
                 "options": options, "label": label, "kind": kind, "choose": choose, "errors": [], **extra}
        if extra.get("suggest"):  # the query of the <datalist> suggestions (segments:values)
            field["suggest_query"] = urlencode({**extra["suggest"], "field": name})
        self.fields.append(field)
        return field

    def node(self, node: dict, path: str, depth: int = 0) -> dict:
        kind = node.get("type") or "trait"
        view = self.place(path, kind=kind, depth=depth, remove=f"remove:{path}")
        if kind == "group":
            op = node.get("op", "and")
            self.aliases[path_join(path, "children")] = path  # "a group needs a condition" shows at the group
            view.update(type=self.field(path, "type", value="group", kind="hidden"),
                        op=self.field(path, "op", value=op, options=GROUP_OPS, label="Match"),
                        joiner="or" if op == "or" else "and", add=f"add:{path}", add_group=f"group:{path}",
                        children=[self.node(child, path_join(path, "children", i), depth + 1)
                                  for i, child in enumerate(node.get("children") or [])])
            self.slots.add(path_join(path, "children"))
            return view
        view["type"] = self.field(path, "type", value=kind, options=CONDITION_TYPES, label="Condition")
        view["fields"] = getattr(self, f"_{kind}", self._unknown)(node, path)
        if kind == "event":
            view["where"] = self.where(node, path)
        elif kind == "sequence":
            view["parts"] = [self.part(node.get(key) or {}, path_join(path, key), label)
                             for key, label in (("first", "First"), ("then", "Then"))]
        return view

    def _values(self, path: str, node: dict, ops: list[str] | None, suggest: dict | None,
                unit: str = "") -> list[dict]:
        """The operator and the value input(s) the operator needs."""
        op = node.get("op", "equals")
        value = node.get("value", "")
        options = [(key, label) for key, label in VALUE_OPS if ops is None or key in ops or key == op]
        fields = [self.field(path, "op", value=op, options=options, label="Operator")]
        if op in NO_VALUE_OPS:
            return fields
        if op == "between":
            pair = (list(value) + ["", ""])[:2] if isinstance(value, list) else ["", ""]
            self.aliases[path_join(path, "value")] = path_join(path, "value.1")
            empty = "" in pair
            return fields + [self.field(path, "value.0", value=pair[0], label="From", unit=unit, pair_empty=empty),
                             self.field(path, "value.1", value=pair[1], label="To", unit=unit, pair_empty=empty)]
        if op in DAYS_OPS:
            return fields + [self.field(path, "value", value=value, label="Days", kind="number", unit="days")]
        if op in DATE_OPS:
            return fields + [self.field(path, "value", value=value, label="Date", kind="date")]
        if op in LIST_OPS:
            text = ", ".join(map(str, value)) if isinstance(value, list) else value
            return fields + [self.field(path, "value", value=text, label="Values, comma-separated", suggest=suggest,
                                        unit=unit)]
        return fields + [self.field(path, "value", value=value, label="Value", suggest=suggest, unit=unit)]

    # One method per condition type: the fields of its row, in order.

    def _trait(self, node, path):
        name = node.get("trait", "")
        value_type = self.choices.trait_type(name)
        return [self.field(path, "trait", value=name, options=self.choices.traits(), label="Trait", choose=True),
                *self._values(path, node, TRAIT_OPS_BY_TYPE.get(value_type) if name else None,
                              {"kind": "trait", "name": name} if name else None)]

    def _computed(self, node, path):
        key = node.get("trait", "")
        value_type = self.choices.computed_type(key)
        suggest = {"kind": "computed", "name": key} if value_type == "text" else None
        return [self.field(path, "trait", value=key, options=self.choices.computed(), label="Computed trait",
                           choose=True),
                *self._values(path, node, COMPUTED_OPS_BY_TYPE.get(value_type), suggest,
                              unit="days" if value_type == "days_since" else "")]

    def _identity(self, node, path):
        return [self.field(path, "op", value=node.get("op", "exists"), options=IDENTITY_OPS, label="Operator"),
                self.field(path, "identity_type", value=node.get("identity_type", ""),
                           options=self.choices.identity_types(), label="Identity", choose=True)]

    def _event(self, node, path):
        op = node.get("op", "performed")
        fields = [self.field(path, "op", value=op, options=EVENT_OPS, label="Operator"),
                  self.field(path, "event", value=node.get("event", ""), options=self.choices.events(),
                             label="Event", choose=True)]
        if op in COUNT_OPS:
            fields.append(self.field(path, "count", value=node.get("count", ""), label="Times", kind="number",
                                     unit="times"))
        window = "days" if "within_days" in node else "dates" if ("after" in node or "before" in node) else ""
        fields.append(self.field(path, "window", value=window, options=WINDOWS, label="When"))
        if window == "days":
            fields.append(self.field(path, "within_days", value=node.get("within_days", ""), label="Days",
                                     kind="number", unit="days"))
        elif window == "dates":
            fields += [self.field(path, "after", value=node.get("after", ""), label="From", kind="date"),
                       self.field(path, "before", value=node.get("before", ""), label="To", kind="date")]
        return fields

    def _sequence(self, node, path):
        return [self.field(path, "op", value=node.get("op", "followed_by"), options=SEQUENCE_OPS, label="Then"),
                self.field(path, "within_hours", value=node.get("within_hours", ""), label="Within",
                           kind="number", unit="hours"),
                self.field(path, "first_within_days", value=node.get("first_within_days", ""),
                           label="First event in the last (optional)", kind="number", unit="days")]

    def _consent(self, node, path):
        return [self.field(path, "op", value=node.get("op", "granted"), options=CONSENT_OPS, label="Operator"),
                self.field(path, "purpose", value=node.get("purpose", ""), options=self.choices.purposes(),
                           label="Purpose", choose=True)]

    def _segment(self, node, path):
        return [self.field(path, "op", value=node.get("op", "member"), options=SEGMENT_OPS, label="Operator"),
                self.field(path, "segment", value=node.get("segment", ""), options=self.choices.segments(),
                           label="Segment", choose=True)]

    def _unknown(self, node, path):
        return []

    def part(self, part: dict, path: str, label: str) -> dict:
        """The first or the then event of a sequence, with its property filters."""
        view = self.place(path, label=label)
        view.update(event=self.field(path, "event", value=part.get("event", ""), options=self.choices.events(),
                                     label=f"{label} event", choose=True),
                    where=self.where(part, path))
        return view

    def where(self, node: dict, path: str) -> dict:
        """The property filters of an event (or of a sequence's step)."""
        event = node.get("event", "")
        properties = self.choices.event_properties(event) if event else []
        items = []
        for i, item in enumerate(node.get("where") or []):
            item_path = path_join(path, "where", i)
            view = self.place(item_path, remove=f"remove:{item_path}")
            prop = item.get("property", "")
            value_type = self.choices.property_type(event, prop) if event and prop else None
            ops = [op for op in TRAIT_OPS_BY_TYPE.get(value_type, PROPERTY_OPS) if op in PROPERTY_OPS]
            suggest = {"kind": "event_property", "name": f"{event}.{prop}"} if event and prop else None
            fields = [self.field(item_path, "property", value=prop, options=properties, label="Property",
                                 choose=True),
                      *self._values(item_path, item, ops, suggest)]
            view["fields"] = fields
            items.append(view)
        return self.place(path_join(path, "where"), items=items, add=f"where:{path}", enabled=bool(event))


def _with_current(options: list[tuple[str, str]], current) -> list[tuple[str, str]]:
    """The choices, with the current value kept (marked) when the data does not have it, so that the validator's
    error shows beside it instead of the value silently changing."""
    if current and current not in {key for key, _ in options}:
        return [(current, f"{current} (not in the data)"), *options]
    return options


def _error_slot(path: str, slots: set[str], aliases: dict[str, str]) -> str:
    """The nearest shown place for an error path: the path itself, or the closest enclosing field or node."""
    parts = path.split(".") if path else []
    while parts:
        slot = ".".join(parts)
        if slot in aliases:
            return aliases[slot]
        if slot in slots:
            return slot
        parts.pop()
    return ""


def builder_nodes(rules: dict, *, choices, errors: dict[str, list[str]] | None = None,
                  show_missing: bool = True) -> dict:
    """The tree as the builder template shows it: nodes with their fields (name, id, value, options, label,
    errors). Each error lands on the field or node its path names, or on the nearest enclosing one; ``places``
    lists every place that can show errors (with its id), so that an answer can update them all.

    An error about an empty field is only shown with ``show_missing`` (when saving): while the tree is being
    edited, what is not filled in yet is not a mistake."""
    builder = _Builder(choices)
    if rules.get("type") != "group":
        rules = {"type": "group", "op": "and", "children": [rules] if rules else []}
    root = builder.node(rules, "")
    by_slot: dict[str, list[str]] = {}
    for path, messages in (errors or {}).items():
        by_slot.setdefault(_error_slot(path, builder.slots, builder.aliases), []).extend(messages)
    for field in builder.fields:
        messages = by_slot.pop(field["slot"], [])
        if messages and (field["value"] in ("", None) or field.get("pair_empty")):
            # The validator's words for an empty field are technical ("'' is not of type 'number'").
            messages = (["Choose one." if field["options"] is not None else "Fill this in."]
                        if show_missing else [])
        field["errors"] = messages
    for place in builder.places:
        place["errors"] = by_slot.pop(place["path"], [])
    root["errors"] += [message for messages in by_slot.values() for message in messages]  # anything left over
    root["places"] = [field for field in builder.fields if field["kind"] != "hidden"] + builder.places
    return root


class BuilderChoices:
    """What the builder offers to choose from: what the data contains (segments.catalog), read once per request.
    Also types the values typed into the form (``trait_type`` ...), so that a number trait compares with a number."""

    def __init__(self, *, segment: Segment | None = None):
        self.segment = segment
        self._properties: dict[str, dict[str, str]] = {}

    @cached_property
    def _traits(self) -> dict[str, str]:
        return {item["name"]: item["type"] for item in catalog.catalog_traits()}

    @cached_property
    def _computed(self) -> dict:
        return {trait.key: trait for trait in catalog.catalog_computed()}

    def traits(self) -> list[tuple[str, str]]:
        return [(name, name) for name in self._traits]

    def trait_type(self, name: str) -> str | None:
        return self._traits.get(name)

    def computed(self) -> list[tuple[str, str]]:
        return [(key, trait.name) for key, trait in self._computed.items()]

    def computed_type(self, key: str) -> str | None:
        trait = self._computed.get(key)
        return trait.value_type if trait else None

    @cached_property
    def _events(self) -> list[tuple[str, str]]:
        return [(item["name"], item["name"]) for item in catalog.catalog_events()]

    def events(self) -> list[tuple[str, str]]:
        return self._events

    def _event_properties(self, event: str) -> dict[str, str]:
        if event not in self._properties:
            self._properties[event] = ({item["name"]: item["type"] for item in catalog.catalog_event_properties(event)}
                                       if event else {})
        return self._properties[event]

    def event_properties(self, event: str) -> list[tuple[str, str]]:
        return [(name, name) for name in self._event_properties(event)]

    def property_type(self, event: str, prop: str) -> str | None:
        return self._event_properties(event).get(prop)

    def identity_types(self) -> list[tuple[str, str]]:
        return list(Identity.Type.choices)

    @cached_property
    def _purposes(self) -> list[tuple[str, str]]:
        return [(purpose.key, purpose.name) for purpose in catalog.catalog_purposes()]

    def purposes(self) -> list[tuple[str, str]]:
        return self._purposes

    @cached_property
    def _segments(self) -> list[tuple[str, str]]:
        exclude = self.segment.pk if self.segment else None
        return [(segment.slug, segment.name) for segment in catalog.catalog_segments() if segment.pk != exclude]

    def segments(self) -> list[tuple[str, str]]:
        return self._segments


# --- the segment's own fields ------------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description",
                                  help_text="What the segment is for, for your colleagues.")
    kind = forms.ChoiceField(choices=Segment.Kind.choices, initial=Segment.Kind.DYNAMIC, label="Kind",
                             help_text="Dynamic segments stay current as profiles change; a static segment keeps the "
                                       "profiles that match when it is saved.")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["kind"]


class QuickSegmentForm(forms.Form):
    """"Save as segment" on the filtered profile list: a static snapshot of the profiles the filters find."""

    name = forms.CharField(max_length=120, label="Segment name")


class OverlapForm(forms.Form):
    other = forms.ModelChoiceField(queryset=Segment.objects.none(), label="Compare with",
                                   empty_label="Choose a segment")

    def __init__(self, *args, segment: Segment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["other"].queryset = Segment.objects.exclude(pk=segment.pk).order_by("name")


class ExplainForm(forms.Form):
    profile = forms.IntegerField(min_value=1, label="Profile id")
