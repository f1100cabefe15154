"""Match rules as plain data (a dict, or its JSON), validated into a ``MatchRules`` the engine runs.

Shape (every key but ``fields`` has a default)::

    {
      "name": "people",
      "prior": 0.01,                      # P(match) for a candidate pair, before looking at its fields
      "thresholds": {"auto_merge": 0.99, "review": 0.8},   # on the match probability
      "options": {"default_region": "DE", "date_order": "dmy"},
      "fields": [
        {"name": "last_name", "kind": "name", "source": "last_name",
         "comparator": {"type": "name", "thresholds": [0.92, 0.8]},
         "m": [...], "u": [...],          # one per comparator level (best first), each list sums to 1
         "missing": "ignore"},            # or "disagree", or a weight (log2 Bayes factor) to add
        ...
      ],
      "swaps": [["first_name", "last_name"]],   # also compared crosswise, for names entered the wrong way round
      "blocking": {"max_block_size": 1000,
                   "keys": [{"name": "surname_year", "on": ["last_name:cologne", "birth_date:year"]}, ...]}
    }

Each field's evidence is Fellegi–Sunter: a pair at level k of a field adds ``log2(m[k] / u[k])`` to the match
weight, where m is P(level | same person) and u is P(level | different people); ``weights`` may be given instead
of m and u. The match probability of a pair is ``1 / (1 + 2**-(log2(prior / (1 - prior)) + Σ weights))``. m, u and
the prior can be estimated from unlabelled data with ``estimate.expectation_maximisation``.

``load_rules`` raises ``RuleError`` naming the path of the first thing wrong (``fields[1].m[2]``).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from profiles.matching.comparators import Comparator, build_comparator
from profiles.matching.encoding import KINDS, NAME_LIKE
from profiles.matching.errors import RuleError

MISSING_POLICIES = ("ignore", "disagree")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROBABILITY_FLOOR = 1e-6


@dataclass(frozen=True)
class FieldRule:
    name: str
    source: str
    kind: str
    comparator: Comparator
    m: tuple[float, ...] | None
    u: tuple[float, ...] | None
    weights: tuple[float, ...]  # log2(m/u) per level
    missing: str | float

    @property
    def levels(self) -> tuple[str, ...]:
        return self.comparator.levels

    def weight_table(self) -> np.ndarray:
        """Weight per level, with one more slot at the end for a missing value (level -1 indexes it)."""
        if self.missing == "ignore":
            missing = 0.0
        elif self.missing == "disagree":
            missing = self.weights[-1]
        else:
            missing = float(self.missing)
        return np.asarray([*self.weights, missing], dtype=np.float64)


@dataclass(frozen=True)
class BlockingKey:
    name: str
    parts: tuple[tuple[str, str], ...]  # (field name, feature): feature "" is the field's key itself


@dataclass(frozen=True)
class MatchRules:
    name: str
    prior: float
    auto_merge: float
    review: float
    fields: tuple[FieldRule, ...]
    blocking: tuple[BlockingKey, ...]
    max_block_size: int
    swaps: tuple[tuple[str, str], ...] = ()  # name fields that may have been entered the wrong way round
    options: Mapping = field(default_factory=dict)
    data: Mapping = field(default_factory=dict, repr=False)  # the validated plain data

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1.0 - self.prior))

    def field(self, name: str) -> FieldRule:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict:
        return copy.deepcopy(dict(self.data))

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=False)

    def with_parameters(self, *, prior: float, m: Mapping[str, list], u: Mapping[str, list]) -> MatchRules:
        """The same rules with new m/u probabilities (per field name) and prior, e.g. from an EM estimate.
        Thresholds are kept."""
        data = self.to_dict()
        data["prior"] = float(prior)
        for spec in data["fields"]:
            if spec["name"] in m:
                spec.pop("weights", None)
                spec["m"] = [float(x) for x in m[spec["name"]]]
                spec["u"] = [float(x) for x in u[spec["name"]]]
        return load_rules(data)


# ------------------------------------------------------------------------------------------------ validation
def _probabilities(values, path: str, count: int) -> tuple[float, ...]:
    if not isinstance(values, list | tuple) or len(values) != count:
        raise RuleError(path, f"must be a list of {count} probabilities, one per comparator level")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
            raise RuleError(f"{path}[{i}]", f"must be a probability strictly between 0 and 1, got {v!r}")
        out.append(float(v))
    total = sum(out)
    if not 0.99 <= total <= 1.01:
        raise RuleError(path, f"must sum to 1 over the levels, sums to {total:.4f}")
    return tuple(p / total for p in out)


def _parse_field(spec, path: str, options: Mapping) -> tuple[FieldRule, dict]:
    if not isinstance(spec, Mapping):
        raise RuleError(path, "must be an object")
    allowed = {"name", "kind", "source", "comparator", "m", "u", "weights", "missing"}
    unknown = set(spec) - allowed
    if unknown:
        raise RuleError(f"{path}.{sorted(unknown)[0]}", f"unknown key; allowed: {sorted(allowed)}")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(f"{path}.name", "must be an identifier (letters, digits, underscore)")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise RuleError(f"{path}.kind", f"must be one of {list(KINDS)}, got {kind!r}")
    source = spec.get("source", name)
    if not isinstance(source, str) or not source:
        raise RuleError(f"{path}.source", "must be the name of a record attribute")
    if "comparator" not in spec:
        raise RuleError(f"{path}.comparator", "is required")
    comparator = build_comparator(spec["comparator"], kind, f"{path}.comparator")
    count = len(comparator.levels)
    if "weights" in spec:
        if "m" in spec or "u" in spec:
            raise RuleError(f"{path}.weights", "give either weights or m and u, not both")
        weights = spec["weights"]
        if not isinstance(weights, list | tuple) or len(weights) != count:
            raise RuleError(f"{path}.weights", f"must be a list of {count} numbers, one per level "
                                               f"{list(comparator.levels)}")
        for i, w in enumerate(weights):
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
                raise RuleError(f"{path}.weights[{i}]", f"must be a finite number, got {w!r}")
        m = u = None
        weights = tuple(float(w) for w in weights)
    else:
        for key in ("m", "u"):
            if key not in spec:
                raise RuleError(f"{path}.{key}", f"is required (one probability per level {list(comparator.levels)})"
                                                 " unless 'weights' are given")
        m = _probabilities(spec["m"], f"{path}.m", count)
        u = _probabilities(spec["u"], f"{path}.u", count)
        weights = tuple(math.log2(a / b) for a, b in zip(m, u, strict=True))
    missing = spec.get("missing", "ignore")
    if not (missing in MISSING_POLICIES or (isinstance(missing, int | float) and not isinstance(missing, bool)
                                            and math.isfinite(missing))):
        raise RuleError(f"{path}.missing", f"must be one of {list(MISSING_POLICIES)} or a weight (a number)")
    rule = FieldRule(name=name, source=source, kind=kind, comparator=comparator, m=m, u=u, weights=weights,
                     missing=missing)
    data = {"name": name, "kind": kind, "source": source, "comparator": comparator.spec()}
    if m is None:
        data["weights"] = list(weights)
    else:
        data["m"], data["u"] = list(m), list(u)
    data["missing"] = missing
    return rule, data


# Which features a blocking key part may use, per field kind ("" is the field's own normalized key).
def _features_for(kind: str) -> tuple[str, ...]:
    common = ("", "initial", "prefixN")
    if kind in ("name", "given_name"):
        return (*common, "cologne", "nysiis", "metaphone")
    if kind in NAME_LIKE:
        return (*common, "cologne", "nysiis")
    if kind == "email":
        return ("", "local", "domain")
    if kind == "phone":
        return ("", "suffixN")
    if kind == "date":
        return ("", "year", "month_day")
    if kind == "number":
        return ("",)
    return (*common, "suffixN")


def _parse_blocking(spec, path: str, fields: Mapping[str, FieldRule]) -> tuple[tuple[BlockingKey, ...], int, dict]:
    if not isinstance(spec, Mapping):
        raise RuleError(path, "must be an object with 'keys'")
    unknown = set(spec) - {"keys", "max_block_size"}
    if unknown:
        raise RuleError(f"{path}.{sorted(unknown)[0]}", "unknown key; allowed: ['keys', 'max_block_size']")
    size = spec.get("max_block_size", 1000)
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise RuleError(f"{path}.max_block_size", "must be an integer of at least 2")
    keys_spec = spec.get("keys")
    if not isinstance(keys_spec, list) or not keys_spec:
        raise RuleError(f"{path}.keys", "must be a non-empty list of blocking keys")
    keys, names = [], set()
    for i, key in enumerate(keys_spec):
        kpath = f"{path}.keys[{i}]"
        if not isinstance(key, Mapping) or set(key) - {"name", "on"}:
            raise RuleError(kpath, "must be an object with 'name' and 'on'")
        name = key.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise RuleError(f"{kpath}.name", "must be an identifier (letters, digits, underscore)")
        if name in names:
            raise RuleError(f"{kpath}.name", f"duplicate blocking key name {name!r}")
        names.add(name)
        on = key.get("on")
        if not isinstance(on, list) or not on:
            raise RuleError(f"{kpath}.on", "must be a non-empty list like ['last_name:cologne', 'birth_date:year']")
        parts = []
        for j, part in enumerate(on):
            ppath = f"{kpath}.on[{j}]"
            if not isinstance(part, str):
                raise RuleError(ppath, "must be 'field' or 'field:feature'")
            field_name, _, feature = part.partition(":")
            if field_name not in fields:
                raise RuleError(ppath, f"unknown field {field_name!r}; fields are {sorted(fields)}")
            kind = fields[field_name].kind
            allowed = _features_for(kind)
            generic = re.sub(r"^(prefix|suffix)\d+$", r"\1N", feature)
            if generic not in allowed or generic != feature and not 1 <= int(feature[6:]) <= 20:
                shown = [a or "(the value itself)" for a in allowed]
                raise RuleError(ppath, f"feature {feature!r} does not apply to a field of kind {kind!r}; "
                                       f"use one of {shown} (N from 1 to 20)")
            parts.append((field_name, feature))
        keys.append(BlockingKey(name=name, parts=tuple(parts)))
    data = {"max_block_size": size, "keys": [{"name": k.name, "on": [f"{f}:{x}" if x else f for f, x in k.parts]}
                                             for k in keys]}
    return tuple(keys), size, data


def _threshold(value, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise RuleError(path, f"must be a probability in (0, 1], got {value!r}")
    return float(value)


def load_rules(data) -> MatchRules:
    """Validate plain-data rules (a dict or a JSON string) into MatchRules; RuleError names what is wrong."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise RuleError("", f"not valid JSON: {exc}") from exc
    if isinstance(data, MatchRules):
        return data
    if not isinstance(data, Mapping):
        raise RuleError("", "match rules must be an object")
    allowed = {"name", "prior", "thresholds", "options", "fields", "swaps", "blocking"}
    unknown = set(data) - allowed
    if unknown:
        raise RuleError(sorted(unknown)[0], f"unknown key; allowed: {sorted(allowed)}")
    name = data.get("name", "rules")
    if not isinstance(name, str) or not name.strip():
        raise RuleError("name", "must be a non-empty string")
    prior = data.get("prior", 0.01)
    if isinstance(prior, bool) or not isinstance(prior, int | float) or not 0 < prior < 1:
        raise RuleError("prior", f"must be a probability strictly between 0 and 1, got {prior!r}")
    thresholds = data.get("thresholds", {})
    if not isinstance(thresholds, Mapping) or set(thresholds) - {"auto_merge", "review"}:
        raise RuleError("thresholds", "must be an object with 'auto_merge' and 'review'")
    auto_merge = _threshold(thresholds.get("auto_merge", 0.99), "thresholds.auto_merge")
    review = _threshold(thresholds.get("review", 0.8), "thresholds.review")
    if review > auto_merge:
        raise RuleError("thresholds.review", f"must not be above auto_merge ({auto_merge:g}), got {review:g}")
    options = data.get("options", {})
    if not isinstance(options, Mapping) or set(options) - {"default_region", "date_order"}:
        raise RuleError("options", "allowed options: 'default_region' (e.g. 'DE'), 'date_order' ('dmy' or 'mdy')")
    region = options.get("default_region")
    if region is not None and not (isinstance(region, str) and len(region) == 2 and region.isalpha()):
        raise RuleError("options.default_region", "must be a two-letter country code such as 'DE'")
    if options.get("date_order", "dmy") not in ("dmy", "mdy"):
        raise RuleError("options.date_order", "must be 'dmy' or 'mdy'")
    options = {"default_region": region.upper() if region else None, "date_order": options.get("date_order", "dmy")}
    fields_spec = data.get("fields")
    if not isinstance(fields_spec, list) or not fields_spec:
        raise RuleError("fields", "must be a non-empty list of fields")
    fields, fields_data = [], []
    for i, spec in enumerate(fields_spec):
        rule, fdata = _parse_field(spec, f"fields[{i}]", options)
        if any(f.name == rule.name for f in fields):
            raise RuleError(f"fields[{i}].name", f"duplicate field name {rule.name!r}")
        fields.append(rule)
        fields_data.append(fdata)
    by_name = {f.name: f for f in fields}
    swaps = _parse_swaps(data.get("swaps", []), "swaps", by_name)
    blocking, max_block_size, blocking_data = _parse_blocking(data.get("blocking"), "blocking", by_name)
    normalized = {"name": name, "prior": float(prior), "thresholds": {"auto_merge": auto_merge, "review": review},
                  "options": options, "fields": fields_data, "swaps": [list(s) for s in swaps],
                  "blocking": blocking_data}
    return MatchRules(name=name, prior=float(prior), auto_merge=auto_merge, review=review, fields=tuple(fields),
                      blocking=blocking, max_block_size=max_block_size, swaps=swaps, options=options,
                      data=normalized)


def _parse_swaps(spec, path: str, fields: Mapping[str, FieldRule]) -> tuple[tuple[str, str], ...]:
    """Pairs of name fields that are also compared crosswise (first name of one record against the last name of
    the other), for records where the two were entered the wrong way round."""
    if not isinstance(spec, list):
        raise RuleError(path, "must be a list of [field, field] pairs")
    seen: set[str] = set()
    out = []
    for i, pair in enumerate(spec):
        ppath = f"{path}[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise RuleError(ppath, "must be a pair of field names like ['first_name', 'last_name']")
        for j, name in enumerate(pair):
            if name not in fields:
                raise RuleError(f"{ppath}[{j}]", f"unknown field {name!r}; fields are {sorted(fields)}")
            if fields[name].kind not in ("name", "given_name"):
                raise RuleError(f"{ppath}[{j}]", f"only name fields can be swapped; {name!r} is {fields[name].kind!r}")
            if name in seen:
                raise RuleError(f"{ppath}[{j}]", f"field {name!r} is already in a swap pair")
            seen.add(name)
        if pair[0] == pair[1]:
            raise RuleError(ppath, "needs two different fields")
        out.append((pair[0], pair[1]))
    return tuple(out)


# ------------------------------------------------------------------------------------------- the default set
# People records (CRM, shop, call centre). The m/u values are set by judgement: m says how often the same person's
# two records reach a level (typos, nicknames, moves), u how often two *different* people among the candidate
# pairs do (blocking already makes them share something). Two of those judgements matter most:
# - a household shares street, house number, postcode, city, last name and often a landline: the address fields
#   say the same thing four times, so each carries little on its own (postcode and city hardly add to a street);
# - the same person's records rarely disagree completely on the first name or the birth date once typos,
#   nicknames, swaps and swapped names have their own levels: that disagreement weighs heavily.
# So a parent and a child at one address stay apart while a typo'd duplicate merges. An EM estimate on the data
# at hand (``estimate.expectation_maximisation``) replaces the values without labels. The thresholds are fixed:
# merge without asking at P(match) ≥ 0.99, ask a person at ≥ 0.8.
DEFAULT_PEOPLE_RULES: dict = {
    "name": "people",
    "prior": 0.01,
    "thresholds": {"auto_merge": 0.99, "review": 0.8},
    "options": {"default_region": "DE", "date_order": "dmy"},
    "fields": [
        {"name": "first_name", "kind": "given_name",
         "comparator": {"type": "name", "thresholds": [0.92, 0.8], "nicknames": True},
         # exact, nickname, phonetic, jw>=0.92, jw>=0.8, different
         "m": [0.845, 0.03, 0.03, 0.05, 0.03, 0.015], "u": [0.02, 0.004, 0.01, 0.01, 0.05, 0.906]},
        {"name": "last_name", "kind": "name", "comparator": {"type": "name", "thresholds": [0.92, 0.8]},
         # exact, phonetic, jw>=0.92, jw>=0.8, different
         "m": [0.86, 0.05, 0.04, 0.02, 0.03], "u": [0.05, 0.02, 0.02, 0.05, 0.86]},
        {"name": "birth_date", "kind": "date", "comparator": {"type": "date", "tolerance_days": 7},
         # exact, day/month swapped, one typo, within 7 days, same year, different
         "m": [0.86, 0.02, 0.07, 0.015, 0.02, 0.015], "u": [0.002, 0.0005, 0.004, 0.0025, 0.05, 0.941]},
        {"name": "street", "kind": "address", "comparator": {"type": "jaro_winkler", "thresholds": [0.9, 0.8]},
         # exact, jw>=0.9, jw>=0.8, different (people move: the "different" m is not small)
         "m": [0.75, 0.1, 0.03, 0.12], "u": [0.02, 0.01, 0.03, 0.94]},
        {"name": "house_number", "kind": "house_number", "comparator": {"type": "exact"},
         "m": [0.85, 0.15], "u": [0.3, 0.7]},
        {"name": "postcode", "kind": "postcode", "comparator": {"type": "levenshtein", "distances": [1]},
         # exact, one edit, different
         "m": [0.85, 0.05, 0.1], "u": [0.2, 0.1, 0.7]},
        {"name": "city", "kind": "city", "comparator": {"type": "jaro_winkler", "thresholds": [0.9]},
         # exact, jw>=0.9, different
         "m": [0.85, 0.05, 0.1], "u": [0.5, 0.02, 0.48]},
        {"name": "email", "kind": "email", "comparator": {"type": "email", "threshold": 0.9},
         # exact, same local part, similar, different
         "m": [0.7, 0.1, 0.05, 0.15], "u": [0.0005, 0.002, 0.0005, 0.997]},
        {"name": "phone", "kind": "phone", "comparator": {"type": "phone", "suffix_digits": 7},
         # exact, same last 7 digits, one edit, different (a landline is shared by a household)
         "m": [0.7, 0.05, 0.05, 0.2], "u": [0.01, 0.002, 0.002, 0.986]},
    ],
    # A first and a last name entered the wrong way round ("Müller" / "Hans") still agree, crosswise.
    "swaps": [["first_name", "last_name"]],
    "blocking": {
        "max_block_size": 1000,
        "keys": [
            {"name": "last_name_phonetic_birth_year", "on": ["last_name:cologne", "birth_date:year"]},
            {"name": "first_name_phonetic_birth_date", "on": ["first_name:cologne", "birth_date"]},
            {"name": "postcode_initials", "on": ["postcode", "first_name:initial", "last_name:initial"]},
            {"name": "address", "on": ["postcode", "street", "house_number"]},
            # A changed or swapped name (marriage, data entry) with the same birthday in the same postcode.
            {"name": "birth_date_postcode", "on": ["birth_date", "postcode"]},
            {"name": "email", "on": ["email"]},
            {"name": "email_local_part", "on": ["email:local"]},
            {"name": "phone_suffix", "on": ["phone:suffix7"]},
        ],
    },
}


def default_rules() -> MatchRules:
    return load_rules(DEFAULT_PEOPLE_RULES)
