"""A source's declarative transformations, applied to Segment messages before unification.

A source has one ordered list of steps (JSON, ingestion.models.SourceTransformation). Each step is an object with
an ``op`` and its own keys; every step may also have ``types`` (message types it applies to) and ``events``
(track event names it applies to). Paths name a place in the message: ``traits.email``, ``properties.total``,
``context.page.url``, ``userId``; ``traits.<x>`` means ``traits`` for identify and group messages and
``context.traits`` for the others (as in ingestion.mapping). ``traits.*`` / ``properties.*`` mean every field
there.

Ops (see STEP_DOCS for one-line help, shown in the UI):
  map              {"fields": [{"from": path, "to": target, "type": ...}], "move": false}  (targets of mapping)
  trim             {"fields": [paths], "collapse": false}
  email            {"fields": [paths]}                 lowercase + validate (email-validator, no DNS)
  phone            {"fields": [paths], "region": "DE"} to E.164; region defaults to source.settings.default_region
  name             {"fields": [paths]}                 whitespace, capitalization ("van der", McDonald, hyphens)
  country          {"fields": [paths]}                 ISO 3166 alpha-2 from names (en, de, fr, ...) / alpha-3
  age_band         {"field": path, "to": path, "bounds": [18, 25, 35, 45, 55, 65], "format": null}
  postcode_region  {"field": path, "to": path, "table": {"0": "...", ...} or null (German PLZ), "length": 5}
  band             {"field": path, "to": path, "bounds": [20000, 40000], "labels": null}
  derive           {"to": path, "fn": "concat|coalesce|email_domain|lower|upper|copy|constant|year",
                    "args": [paths], "sep": " ", "value": ..., "overwrite": false}
Generalizing steps (age_band, postcode_region, band) take ``"replace": true`` to remove the precise value once
the general one is set.

A value that fails a normalization is kept as it was and flagged: its path is added to
``context.cdp.invalid`` (and the reason, without the value, to ``context.cdp.invalid_reasons``). Nothing is
dropped.
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import phonenumbers
import pycountry
from django.db import transaction
from django.utils import timezone
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from cdp.core.services import audit_record
from ingestion import mapping
from ingestion.models import SourceTransformation

MAX_STEPS = 100
MISSING = mapping.MISSING
DEFAULT_AGE_BOUNDS = [18, 25, 35, 45, 55, 65]

# German postcodes (PLZ) by their leading digit (Leitzone): a coarse region, fine as a generalized location.
GERMAN_PLZ_REGIONS = {
    "0": "Ost (Sachsen, Thüringen, Sachsen-Anhalt)",
    "1": "Nordost (Berlin, Brandenburg, Mecklenburg-Vorpommern)",
    "2": "Nord (Hamburg, Bremen, Schleswig-Holstein, Nord-Niedersachsen)",
    "3": "Mitte-Nord (Niedersachsen, Nordhessen, Ostwestfalen)",
    "4": "West (Ruhrgebiet, Düsseldorf, Münsterland)",
    "5": "West (Köln, Bonn, Aachen, Nord-Rheinland-Pfalz)",
    "6": "Südwest (Hessen, Saarland, Rheinland-Pfalz, Rhein-Neckar)",
    "7": "Süd (Baden-Württemberg)",
    "8": "Süd (Südbayern, Oberschwaben)",
    "9": "Südost (Nordbayern, Südthüringen)",
}

STEP_DOCS = {
    "map": "Copy (or move) fields to identities, traits or properties, with type coercion.",
    "trim": "Remove surrounding whitespace (and collapse inner runs with collapse: true).",
    "email": "Lowercase and validate email addresses.",
    "phone": "Phone numbers to E.164, with a default region.",
    "name": "Tidy personal names: whitespace and capitalization.",
    "country": "Country names and alpha-3 codes to ISO 3166 alpha-2.",
    "age_band": "Birth date to an age band.",
    "postcode_region": "Postcode to region (German PLZ by default, or your table).",
    "band": "A number (e.g. income) to a band.",
    "derive": "A derived attribute from a small vocabulary (concat, coalesce, email_domain, ...).",
}
DERIVE_FNS = ("concat", "coalesce", "email_domain", "lower", "upper", "copy", "constant", "year")
NAME_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "das", "dos", "du", "la",
                            "le", "ten", "ter", "zu", "zum", "zur", "af", "av", "bin", "ibn", "al", "y"})
COMMON_KEYS = {"op", "types", "events", "note"}
STEP_KEYS = {
    "map": {"fields", "move"},
    "trim": {"fields", "collapse"},
    "email": {"fields"},
    "phone": {"fields", "region"},
    "name": {"fields"},
    "country": {"fields"},
    "age_band": {"field", "to", "bounds", "format", "replace"},
    "postcode_region": {"field", "to", "table", "length", "replace"},
    "band": {"field", "to", "bounds", "labels", "replace"},
    "derive": {"to", "fn", "args", "sep", "value", "overwrite"},
}


class TransformError(ValueError):
    """A step list that cannot be saved; ``field`` names the place ("steps.2.bounds")."""

    def __init__(self, message: str, *, field: str = ""):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


# --- normalizers: value -> (ok, normalized value or reason) ----------------------------------------------------------

class Invalid(Exception):  # noqa: N818 - a flag, not an error
    """A value that fails a normalization; the message says why, never the value."""


# Plain ASCII addresses that email-validator accepts unchanged (checked against it by a property test): a dot-atom
# local part of letters, digits and ._%+- without empty atoms, and a domain of LDH labels without "--" whose top
# level is letters only. Anything else goes to email-validator itself.
_PLAIN_EMAIL = re.compile(r"^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*"
                          r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(text: str) -> bool:
    if len(text) > 254 or not _PLAIN_EMAIL.match(text):
        return False
    local, _, domain = text.rpartition("@")
    return (len(local) <= 64 and len(domain) <= 253 and "--" not in domain
            and not any(domain == d or domain.endswith("." + d) for d in _SPECIAL_USE))


@lru_cache(maxsize=32768)
def normalize_email(value: str) -> str:
    text = value.strip().lower()
    if not text:
        raise Invalid("empty")
    if _plain_email(text):
        return text
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise Invalid(f"not a valid email address: {_without(str(exc), text)}") from None


def _without(reason: str, value: str) -> str:
    return reason.replace(value, "the value")[:200]


@lru_cache(maxsize=32768)
def normalize_phone(value: str, region: str | None) -> str:
    text = value.strip()
    if not text:
        raise Invalid("empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise Invalid("no country code, and no default region for this source") from None
        raise Invalid("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid("not a valid phone number" + (f" for region {region}" if region else ""))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _name_word(word: str, first: bool, only: bool) -> str:
    if not word:
        return word
    if not (word.islower() or word.isupper()):
        return word  # mixed case as typed (DeSantis, d'Alembert, McDonald): kept
    lower = word.lower()
    if lower in NAME_PARTICLES and not only:
        return lower
    if "-" in word:
        return "-".join(_name_word(part, first, True) for part in word.split("-"))
    if "'" in lower and len(lower) > 2:  # o'brien -> O'Brien, d'angelo -> D'Angelo
        head, _, tail = lower.partition("'")
        return f"{head.capitalize()}'{tail.capitalize()}" if len(head) <= 1 else lower.capitalize()
    if lower.startswith("mc") and len(lower) > 3:
        return "Mc" + lower[2:].capitalize()
    return lower.capitalize()


@lru_cache(maxsize=32768)
def normalize_name(value: str) -> str:
    words = value.split()
    if not words:
        raise Invalid("empty")
    if any(ch.isdigit() for ch in value):
        raise Invalid("a name with digits")
    return " ".join(_name_word(word, index == 0, len(words) == 1) for index, word in enumerate(words))


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(word for word in text.split() if word not in ("the", "of"))


COUNTRY_ALIASES = {
    "uk": "GB", "u k": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "britain": "GB", "usa": "US", "u s a": "US", "u s": "US", "america": "US",
    "united states america": "US", "holland": "NL", "russia": "RU", "turkey": "TR", "czech republic": "CZ",
    "south korea": "KR", "north korea": "KP", "ivory coast": "CI", "vatican": "VA", "macedonia": "MK",
    "swaziland": "SZ", "burma": "MM", "cape verde": "CV", "moldova": "MD", "laos": "LA", "syria": "SY",
    "tanzania": "TZ", "venezuela": "VE", "taiwan": "TW", "bolivia": "BO", "iran": "IR",
}
COUNTRY_LANGUAGES = ("de", "fr", "es", "it", "nl", "pl", "pt", "da", "sv")


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    translations = []
    for language in COUNTRY_LANGUAGES:
        try:
            translations.append(gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language]))
        except OSError:
            continue
    for country in pycountry.countries:
        code = country.alpha_2
        names = [country.name, getattr(country, "official_name", None), getattr(country, "common_name", None)]
        for name in list(names):
            if name:
                names.extend(t.gettext(name) for t in translations)
        for name in names:
            if name:
                index.setdefault(_fold(name), code)
        index[country.alpha_2.lower()] = code
        index[country.alpha_3.lower()] = code
        index[country.numeric] = code
    for alias, code in COUNTRY_ALIASES.items():
        index.setdefault(alias, code)
    return index


@lru_cache(maxsize=16384)
def normalize_country(value: str) -> str:
    text = value.strip()
    if not text:
        raise Invalid("empty")
    code = _country_index().get(_fold(text)) or (_country_index().get(text.zfill(3)) if text.isdigit() else None)
    if code is None:
        raise Invalid("not a known country name or ISO 3166 code")
    return code


def age_band(birth: date, today: date, bounds: list[int]) -> str:
    if birth > today:
        raise Invalid("a birth date in the future")
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    if age > 130:
        raise Invalid("a birth date more than 130 years ago")
    return band_label(age, bounds, None, integer=True)


def band_label(value: float, bounds: list, labels: list | None, *, integer: bool = False) -> str:
    index = 0
    while index < len(bounds) and value >= bounds[index]:
        index += 1
    if labels:
        return labels[index]
    if index == 0:
        return f"<{_num(bounds[0])}"
    if index == len(bounds):
        return f"{_num(bounds[-1])}+"
    upper = bounds[index] - 1 if integer else bounds[index]
    return f"{_num(bounds[index - 1])}-{_num(upper)}"


def _num(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- paths in a message --------------------------------------------------------------------------------------------

_TRAITS_AT_TOP = frozenset({"identify", "group"})


def _parts(message: dict, path: str) -> tuple[str, ...]:
    return _split(path, message.get("type") in _TRAITS_AT_TOP)


@lru_cache(maxsize=4096)
def _split(path: str, traits_at_top: bool) -> tuple[str, ...]:
    head, _, rest = path.partition(".")
    if head == "traits" and not traits_at_top:
        return ("context", "traits", *rest.split(".")) if rest else ("context", "traits")
    return tuple(path.split("."))


def _get(message: dict, parts: tuple[str, ...]) -> Any:
    current: Any = message
    for part in parts:
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def _remove(message: dict, parts: tuple[str, ...]) -> None:
    parent = _get(message, parts[:-1]) if len(parts) > 1 else message
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)


def _expand(message: dict, path: str) -> list[tuple[str, tuple[str, ...]]]:
    """(path as named, its parts) for a path, or for each field of ``traits.*`` / ``properties.*``."""
    if path.endswith(".*"):
        base = path[:-2]
        parts = _parts(message, base)
        container = _get(message, parts)
        if not isinstance(container, dict):
            return []
        return [(f"{base}.{key}", (*parts, key)) for key in container]
    return [(path, _parts(message, path))]


def _flag(message: dict, path: str, reason: str) -> None:
    context = message.get("context")
    if not isinstance(context, dict):
        context = message["context"] = {}
    cdp = context.get("cdp")
    if not isinstance(cdp, dict):
        cdp = context["cdp"] = {}
    invalid = cdp.setdefault("invalid", [])
    if path not in invalid:
        invalid.append(path)
    cdp.setdefault("invalid_reasons", {})[path] = reason


def _reason(exc: Exception) -> str:
    """The reason of a failed coercion without the value itself (it may be personal data)."""
    return str(exc).split(", got ")[0][:200]


def _clone(value):
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


# --- compiling steps -----------------------------------------------------------------------------------------------

Step = Callable[[dict], None]


@dataclass
class _Ctx:
    source_slug: str
    default_region: str | None
    today: date


def _field_steps(paths: list[str], normalize: Callable[[str], str], *, numbers_as_text: bool = False,
                 text_only: bool = False) -> Step:
    """A step that normalizes each path's text value in place, flagging failures. The paths are split once, for
    both homes of traits; the hot loop only walks dicts."""
    specs = []
    for path in paths:
        wildcard = path.endswith(".*")
        base = path[:-2] if wildcard else path
        specs.append((base, wildcard, _split(base, True), _split(base, False)))

    def targets(message: dict, top: bool):
        for base, wildcard, at_top, elsewhere in specs:
            parts = at_top if top else elsewhere
            container: Any = message
            for part in parts if wildcard else parts[:-1]:
                container = container.get(part) if isinstance(container, dict) else None
            if not isinstance(container, dict):
                continue
            if wildcard:
                for key in list(container):
                    yield f"{base}.{key}", container, key
            elif parts[-1] in container:
                yield base, container, parts[-1]

    def run(message: dict) -> None:
        for named, container, key in targets(message, message.get("type") in _TRAITS_AT_TOP):
            value = container[key]
            if value is None or value == "":
                continue
            if numbers_as_text and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                if not text_only:
                    _flag(message, named, "not a text value")
                continue
            try:
                result = normalize(value)
            except Invalid as exc:
                _flag(message, named, str(exc))
                continue
            if result != container[key]:
                container[key] = result
    return run


def _generalize(step: dict, convert: Callable[[Any], Any]) -> Step:
    source, target, replace = step["field"], step["to"], bool(step.get("replace"))

    def run(message: dict) -> None:
        parts = _parts(message, source)
        value = _get(message, parts)
        if value is MISSING or value is None or value == "":
            return
        try:
            result = convert(value)
        except (Invalid, ValueError) as exc:
            _flag(message, source, _reason(exc))
            return
        mapping.set_path(message, _parts(message, target), result)
        if replace:
            _remove(message, parts)
    return run


def _compile_map(step: dict, ctx: _Ctx) -> Step:
    fields, move = step["fields"], bool(step.get("move"))

    def run(message: dict) -> None:
        for item in fields:
            parts = _parts(message, item["from"])
            value = _get(message, parts)
            if value is MISSING or value is None or (isinstance(value, str) and not value.strip()):
                continue
            try:
                value = mapping.coerce(value, item.get("type"), item.get("format"))
            except ValueError as exc:
                _flag(message, item["from"], _reason(exc))
                continue
            target = item["to"]
            if target == "externalId":
                context = message.setdefault("context", {})
                context.setdefault("externalIds", []).append(
                    {"id": mapping.to_string(value), "type": ctx.source_slug, "collection": "", "encoding": "none"})
            elif target == "event":
                message["name" if message.get("type") in ("page", "screen") else "event"] = mapping.to_string(value)
            elif target in mapping.ROOT_TARGETS:
                message[target] = value if target == "timestamp" and item.get("type") else mapping.to_string(value)
            else:
                mapping.set_path(message, _parts(message, target), value)
            if move and item["from"] != target:
                _remove(message, parts)
    return run


def _compile_derive(step: dict) -> Step:
    fn, target, args = step["fn"], step["to"], step.get("args") or []
    sep, overwrite, constant = step.get("sep", " "), bool(step.get("overwrite")), step.get("value")

    def text(value) -> str:
        return "" if value is MISSING or value is None else mapping.to_string(value).strip()

    def run(message: dict) -> None:
        target_parts = _parts(message, target)
        if not overwrite and _get(message, target_parts) not in (MISSING, None, ""):
            return
        values = [_get(message, _parts(message, arg)) for arg in args]
        try:
            if fn == "concat":
                result = sep.join(t for t in (text(v) for v in values) if t)
            elif fn == "coalesce":
                result = next((v for v in values if v not in (MISSING, None, "")), None)
            elif fn == "email_domain":
                address = text(values[0])
                result = address.rpartition("@")[2].lower() if "@" in address else None
            elif fn == "lower":
                result = text(values[0]).lower()
            elif fn == "upper":
                result = text(values[0]).upper()
            elif fn == "copy":
                result = None if values[0] is MISSING else values[0]
            elif fn == "constant":
                result = constant
            else:  # year
                result = mapping.parse_date(values[0]).year if values[0] not in (MISSING, None, "") else None
        except (ValueError, TypeError, AttributeError):
            _flag(message, target, f"cannot derive with {fn}")
            return
        if result not in (None, ""):
            mapping.set_path(message, target_parts, result)
    return run


def _compile(step: dict, ctx: _Ctx) -> Step:
    op = step["op"]
    fields = step.get("fields") or []
    if op == "map":
        return _compile_map(step, ctx)
    if op == "trim":
        if step.get("collapse"):
            return _field_steps(fields, lambda v: " ".join(v.split()), text_only=True)
        return _field_steps(fields, str.strip, text_only=True)
    if op == "email":
        return _field_steps(fields, normalize_email)
    if op == "phone":
        region = (step.get("region") or ctx.default_region or "").upper() or None
        return _field_steps(fields, lambda v: normalize_phone(v, region), numbers_as_text=True)
    if op == "name":
        return _field_steps(fields, normalize_name)
    if op == "country":
        return _field_steps(fields, normalize_country, numbers_as_text=True)
    if op == "age_band":
        bounds, fmt, today = step.get("bounds") or DEFAULT_AGE_BOUNDS, step.get("format"), ctx.today
        return _generalize(step, lambda v: age_band(mapping.parse_date(v, fmt), today, bounds))
    if op == "postcode_region":
        table = step.get("table") or GERMAN_PLZ_REGIONS
        length = step.get("length", 5 if not step.get("table") else None)
        prefixes = sorted(table, key=len, reverse=True)

        def region_of(value) -> str:
            code = mapping.to_string(value).replace(" ", "").upper()
            if length and (len(code) != length or not code.isdigit()):
                raise Invalid(f"a postcode of {length} digits is expected")
            for prefix in prefixes:
                if code.startswith(prefix.upper()):
                    return table[prefix]
            raise Invalid("a postcode the region table does not cover")
        return _generalize(step, region_of)
    if op == "band":
        bounds, labels = step["bounds"], step.get("labels")
        integer = all(float(bound).is_integer() for bound in bounds)
        return _generalize(step, lambda v: band_label(mapping.to_float(v), bounds, labels, integer=integer))
    return _compile_derive(step)


def _guarded(step: dict, run: Step) -> Step:
    types, events = step.get("types"), step.get("events")
    if not types and not events:
        return run
    types, events = set(types or ()), set(events or ())

    def guarded(message: dict) -> None:
        if types and message.get("type") not in types:
            return
        if events and message.get("event") not in events:
            return
        run(message)
    return guarded


def transforms_compile(steps: list[dict], *, source) -> list[Step]:
    ctx = _Ctx(source_slug=source.slug, default_region=(source.settings or {}).get("default_region") or None,
               today=timezone.now().date())
    return [_guarded(step, _compile(step, ctx)) for step in steps]


def _run(compiled: list[Step], messages: list[dict]) -> list[dict]:
    out = []
    for message in messages:
        message = _clone(message)
        for step in compiled:
            step(message)
        out.append(message)
    return out


# --- validation ----------------------------------------------------------------------------------------------------

def _path_valid(path: Any, where: str, *, wildcard: bool = False, target: bool = False) -> None:
    if not isinstance(path, str) or not path.strip():
        raise TransformError("a path in the message, e.g. traits.email", field=where)
    if wildcard and path in ("traits.*", "properties.*", "context.traits.*"):
        return
    problem = mapping.target_valid(path)
    if problem and not (not target and path.startswith("context.")):
        raise TransformError(problem, field=where)
    if target and path in ("userId", "anonymousId", "messageId", "event", "externalId", "previousId", "groupId"):
        raise TransformError("a transformation step writes to traits, properties or context only", field=where)


def _paths(step: dict, where: str) -> None:
    fields = step.get("fields")
    if not isinstance(fields, list) or not fields:
        raise TransformError("a list of paths, e.g. [\"traits.email\"]", field=f"{where}.fields")
    for index, path in enumerate(fields):
        _path_valid(path, f"{where}.fields.{index}", wildcard=True)


def _bounds(value: Any, where: str) -> None:
    if (not isinstance(value, list) or not value
            or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in value)):
        raise TransformError("a non-empty list of numbers", field=where)
    if any(later <= earlier for earlier, later in zip(value, value[1:], strict=False)):
        raise TransformError("the bounds must increase", field=where)


def _step_validate(step: Any, where: str) -> None:
    if not isinstance(step, dict):
        raise TransformError('a step is an object with an "op"', field=where)
    op = step.get("op")
    if op not in STEP_KEYS:
        raise TransformError(f"unknown op {op!r}; one of {', '.join(STEP_KEYS)}", field=f"{where}.op")
    unknown = set(step) - COMMON_KEYS - STEP_KEYS[op]
    if unknown:
        raise TransformError(f"unknown key(s) for {op}: {', '.join(sorted(unknown))}",
                             field=f"{where}.{sorted(unknown)[0]}")
    for key in ("types", "events"):
        value = step.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise TransformError("a list of names", field=f"{where}.{key}")
    if step.get("types") and set(step["types"]) - set(mapping.MESSAGE_TYPES):
        raise TransformError(f"message types are {', '.join(mapping.MESSAGE_TYPES)}", field=f"{where}.types")
    if op == "map":
        fields = step.get("fields")
        if not isinstance(fields, list) or not fields:
            raise TransformError("a list of field mappings", field=f"{where}.fields")
        for index, item in enumerate(fields):
            at = f"{where}.fields.{index}"
            if not isinstance(item, dict) or set(item) - mapping.FIELD_KEYS:
                raise TransformError('a field mapping {"from": path, "to": target, "type": ...}', field=at)
            _path_valid(item.get("from"), f"{at}.from")
            problem = mapping.target_valid(item.get("to"))
            if problem:
                raise TransformError(problem, field=f"{at}.to")
            if item.get("type") is not None and item["type"] not in mapping.TYPES:
                raise TransformError(f"unknown type {item['type']!r}; one of {', '.join(mapping.TYPES)}",
                                     field=f"{at}.type")
            if item.get("format") is not None and (item.get("type") not in ("date", "datetime")
                                                   or not isinstance(item["format"], str)):
                raise TransformError("a strptime format, for the types date and datetime", field=f"{at}.format")
    elif op in ("trim", "email", "phone", "name", "country"):
        _paths(step, where)
        if op == "phone" and step.get("region") is not None:
            region = step["region"]
            if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
                raise TransformError("an ISO 3166 alpha-2 region that phonenumbers knows, e.g. DE",
                                     field=f"{where}.region")
    elif op in ("age_band", "postcode_region", "band"):
        _path_valid(step.get("field"), f"{where}.field")
        _path_valid(step.get("to"), f"{where}.to", target=True)
        if op == "age_band":
            if step.get("bounds") is not None:
                _bounds(step["bounds"], f"{where}.bounds")
            if step.get("format") is not None and (not isinstance(step["format"], str) or "%" not in step["format"]):
                raise TransformError("a strptime format such as %d.%m.%Y", field=f"{where}.format")
        elif op == "band":
            _bounds(step.get("bounds"), f"{where}.bounds")
            labels = step.get("labels")
            if labels is not None and (not isinstance(labels, list) or len(labels) != len(step["bounds"]) + 1
                                       or not all(isinstance(label, str) and label for label in labels)):
                raise TransformError(f"{len(step['bounds']) + 1} labels (one more than bounds)",
                                     field=f"{where}.labels")
        else:
            table = step.get("table")
            if table is not None and (not isinstance(table, dict) or not table
                                      or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                                 for k, v in table.items())):
                raise TransformError('an object of postcode prefix to region, e.g. {"1": "Nordost"}',
                                     field=f"{where}.table")
            length = step.get("length")
            if length is not None and (not isinstance(length, int) or isinstance(length, bool)
                                       or not 2 <= length <= 10):
                raise TransformError("a postcode length between 2 and 10, or null", field=f"{where}.length")
    else:  # derive
        _path_valid(step.get("to"), f"{where}.to", target=True)
        fn = step.get("fn")
        if fn not in DERIVE_FNS:
            raise TransformError(f"unknown function {fn!r}; one of {', '.join(DERIVE_FNS)}", field=f"{where}.fn")
        args = step.get("args") or []
        if not isinstance(args, list):
            raise TransformError("a list of paths", field=f"{where}.args")
        wanted = {"concat": (1, 10), "coalesce": (1, 10), "constant": (0, 0)}.get(fn, (1, 1))
        if not wanted[0] <= len(args) <= wanted[1]:
            count = f"{wanted[0]}" if wanted[0] == wanted[1] else f"{wanted[0]} to {wanted[1]}"
            raise TransformError(f"{fn} takes {count} path(s)", field=f"{where}.args")
        for index, path in enumerate(args):
            _path_valid(path, f"{where}.args.{index}")
        if fn == "constant" and (step.get("value") is None or isinstance(step.get("value"), dict | list)):
            raise TransformError("constant needs a text, number or boolean value", field=f"{where}.value")
        if step.get("sep") is not None and not isinstance(step["sep"], str):
            raise TransformError("a text separator", field=f"{where}.sep")


def transforms_validate(steps: Any) -> None:
    """Raises TransformError naming the wrong place ("steps.2.bounds")."""
    if not isinstance(steps, list):
        raise TransformError("a list of steps", field="steps")
    if len(steps) > MAX_STEPS:
        raise TransformError(f"at most {MAX_STEPS} steps", field="steps")
    for index, step in enumerate(steps):
        _step_validate(step, f"steps.{index}")


# --- services ------------------------------------------------------------------------------------------------------

def transforms_apply(*, source, messages: list[dict]) -> list[dict]:
    """The messages after the source's transformations, in the same order (new dicts; the given ones are not
    changed). Without transformations they are returned unchanged."""
    row = SourceTransformation.objects.filter(source=source, enabled=True).values_list("steps", flat=True).first()
    if not row or not messages:
        return messages
    return _run(transforms_compile(row, source=source), messages)


def transforms_preview(*, source, steps: list[dict], message: dict) -> dict:
    """``message`` after ``steps`` (saved or not): for the editor's live preview. Raises TransformError."""
    transforms_validate(steps)
    if not isinstance(message, dict):
        raise TransformError("a message is a JSON object", field="message")
    return _run(transforms_compile(steps, source=source), [message])[0]


@transaction.atomic
def transformation_save(*, source, steps: list[dict], enabled: bool = True, actor=None) -> SourceTransformation:
    """Create or replace the source's steps. Raises TransformError naming the wrong step."""
    transforms_validate(steps)
    row = SourceTransformation.objects.select_for_update().filter(source=source).first()
    created = row is None
    if row is None:
        row = SourceTransformation(source=source, version=0)
    row.steps, row.enabled = steps, enabled
    row.version += 1
    row.save()
    audit_record(actor=actor, action="create" if created else "change", object_type="ingestion.sourcetransformation",
                 object_id=row.pk, summary=f"{source.slug}: {len(steps)} step(s), "
                                           f"{'enabled' if enabled else 'disabled'}, version {row.version}")
    return row


@transaction.atomic
def transformation_delete(*, transformation: SourceTransformation, actor=None) -> None:
    audit_record(actor=actor, action="delete", object_type="ingestion.sourcetransformation",
                 object_id=transformation.pk, summary=transformation.source.slug)
    transformation.delete()
