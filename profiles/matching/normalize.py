"""Normalization before comparing: every value is brought to the form two records are compared in.

Text goes to lower-case ASCII. German letters are transliterated (ä→ae, ö→oe, ü→ue, ß→ss) and also stripped
(ä→a): ``name_forms`` returns both, and ``name_key`` — the form the comparators use — folds the
transliteration digraphs back (ae→a, oe→o, ue→u), so "Müller", "Mueller" and "Muller" share one key. Names lose
titles and punctuation; first names map to nickname groups; addresses get their abbreviations expanded
(Str./Straße → strasse, Pl. → platz, St → street, Rd → road ...); phone numbers go to E.164 where a region is
known; dates are parsed from the common written forms.

Every function here is pure and returns ``None`` (or an empty string for text) for a value that is missing or
cannot be read, so the caller can keep the raw value and treat the field as missing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

import cologne_phonetics
import jellyfish
import phonenumbers

from profiles.matching.nicknames import NICKNAME_GROUPS

# Letters NFKD does not take apart, and the German transliterations.
_TRANSLIT = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue", "ß": "ss", "ẞ": "ss",
    "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d",
    "þ": "th", "Þ": "th", "ł": "l", "Ł": "l", "ı": "i",
})
_STRIP = str.maketrans({
    "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d",
    "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ł": "l", "Ł": "l", "ı": "i",
})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_DIGRAPHS = re.compile(r"(?<=[a-z])(ae|oe|ue)")
_NAME_NOISE = frozenset({
    "herr", "frau", "hr", "fr", "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "dipl", "ing", "mag",
    "sir", "dame", "jr", "sr", "jun", "sen", "ii", "iii", "phd", "md",
})


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _clean(text: str) -> str:
    return _NON_ALNUM.sub(" ", text.lower()).strip()


def transliterate(value) -> str:
    """Lower-case ASCII with German transliteration: "Müller-Lüdenscheidt" -> "mueller luedenscheidt"."""
    if value is None:
        return ""
    return _clean(_ascii(str(value).translate(_TRANSLIT)))


def strip_accents(value) -> str:
    """Lower-case ASCII with diacritics dropped: "Müller" -> "muller", "Straße" -> "strasse"."""
    if value is None:
        return ""
    return _clean(_ascii(str(value).translate(_STRIP)))


def fold_digraphs(text: str) -> str:
    """ae/oe/ue after a letter -> a/o/u, so the transliterated and the stripped form meet: mueller -> muller."""
    return _DIGRAPHS.sub(lambda m: m.group(1)[0], text)


@dataclass(frozen=True)
class NameForms:
    transliterated: str  # "mueller"
    stripped: str  # "muller"
    key: str  # "muller": the form comparators use; equal whenever either of the two others is


def name_forms(value) -> NameForms:
    transliterated = _drop_noise(transliterate(value))
    stripped = _drop_noise(strip_accents(value))
    return NameForms(transliterated, stripped, fold_digraphs(stripped))


def _drop_noise(text: str) -> str:
    tokens = text.split()
    kept = [t for t in tokens if t not in _NAME_NOISE]
    return " ".join(kept or tokens)


@lru_cache(maxsize=200_000)
def name_key(value) -> str:
    """The comparison key of a person's name: titles dropped, umlauts folded, single spaces."""
    return fold_digraphs(_drop_noise(strip_accents(value)))


# ---------------------------------------------------------------------------------------------- nicknames
def _build_nickname_index() -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for group_id, names in enumerate(NICKNAME_GROUPS):
        for name in names:
            groups = index.setdefault(name_key(name), [])
            if group_id not in groups:
                groups.append(group_id)
    return {name: tuple(groups) for name, groups in index.items()}


NICKNAME_INDEX: dict[str, tuple[int, ...]] = _build_nickname_index()
NICKNAME_SLOTS = max(len(groups) for groups in NICKNAME_INDEX.values())


def nickname_groups(first_name) -> tuple[int, ...]:
    """The nickname groups a first name belongs to (its first word decides: "Hans Peter" -> Johannes)."""
    key = name_key(first_name)
    if not key:
        return ()
    groups = NICKNAME_INDEX.get(key)
    if groups is None:
        groups = NICKNAME_INDEX.get(key.split()[0], ())
    return groups


def same_person_name(a, b) -> bool:
    """Whether two first names are the same name or nicknames of one another (Sepp/Josef, Bill/William)."""
    key_a, key_b = name_key(a), name_key(b)
    if key_a and key_a == key_b:
        return True
    return bool(set(nickname_groups(a)) & set(nickname_groups(b)))


# ----------------------------------------------------------------------------------------------- phonetic
@lru_cache(maxsize=200_000)
def cologne(text: str) -> str:
    """Kölner Phonetik of a folded name, one code per word joined by spaces ("" for no letters)."""
    if not text:
        return ""
    return " ".join(code for _, code in cologne_phonetics.encode(text) if code)


@lru_cache(maxsize=200_000)
def nysiis(text: str) -> str:
    """NYSIIS of a folded name, one code per word."""
    return " ".join(jellyfish.nysiis(word) for word in text.split() if word.isalpha())


@lru_cache(maxsize=200_000)
def metaphone(text: str) -> str:
    return " ".join(jellyfish.metaphone(word) for word in text.split() if word.isalpha())


# ----------------------------------------------------------------------------------------------- addresses
# Whole tokens. One canonical word per meaning: German and English words for the same thing meet
# ("platz", "place" and "pl" are all one).
_ADDRESS_WORDS = {
    "str": "strasse", "strasse": "strasse", "strase": "strasse", "strabe": "strasse",
    "pl": "platz", "plz": "platz", "platz": "platz", "place": "platz",
    "rd": "road", "road": "road",
    "ave": "avenue", "av": "avenue", "avenue": "avenue", "avn": "avenue",
    "blvd": "boulevard", "bvd": "boulevard", "boul": "boulevard",
    "ln": "lane", "la": "lane",
    "ct": "court", "crt": "court",
    "cres": "crescent", "cr": "crescent", "crs": "crescent",
    "pde": "parade", "hwy": "highway", "fwy": "freeway",
    "tce": "terrace", "terr": "terrace", "ter": "terrace",
    "cl": "close", "sq": "square", "cct": "circuit", "cir": "circle", "esp": "esplanade",
    "gr": "grove", "gdns": "gardens", "gdn": "garden", "pkwy": "parkway", "pwy": "parkway",
    "mt": "mount", "apt": "apartment", "ste": "suite", "bldg": "building", "fl": "floor",
    "g": "gasse", "al": "allee", "ch": "chaussee",
    "n": "north", "s": "south", "e": "east", "w": "west",
}
# Tokens that mean nothing for matching ("Nr." is the German "No.").
_ADDRESS_NOISE = frozenset({"nr", "no", "number", "hausnummer"})
# German compounds: "Hauptstr." / "Hauptstraße" -> "hauptstrasse", "Marktpl." -> "marktplatz".
_COMPOUND_SUFFIXES = (("strasse", "strasse"), ("str", "strasse"), ("platz", "platz"), ("pl", "platz"))


# Abbreviations that are also ordinary first words ("La Trobe St", "Al Nahda Rd"): only after the first word.
_NOT_FIRST = frozenset({"la", "al", "ch", "g", "cl", "cr", "gr", "pl", "ct", "ln", "rd", "ave", "av", "sq", "fl"})


def _address_token(word: str, position: int, count: int) -> str:
    """One word in its canonical form; other words get their umlaut digraphs folded like names."""
    if position == 0 and count > 1 and word in _NOT_FIRST:
        return fold_digraphs(word)
    if word in ("st", "ste") and count > 1:
        return "saint" if position == 0 else ("street" if word == "st" else "suite")
    if word == "dr" and count > 1:
        return "doctor" if position == 0 else "drive"
    if word in ("st", "street"):
        return "street"
    if word == "drive":
        return word
    mapped = _ADDRESS_WORDS.get(word)
    if mapped:
        return mapped
    if len(word) > 5 and word.isalpha():
        for suffix, replacement in _COMPOUND_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return fold_digraphs(word[: -len(suffix)]) + replacement
    return fold_digraphs(word)


@lru_cache(maxsize=200_000)
def normalize_address(value) -> str:
    """Street line with abbreviations expanded: "Hauptstr. 5" -> "hauptstrasse 5", "12 Main St" -> "12 main street"."""
    tokens = [t for t in strip_accents(value).split() if t not in _ADDRESS_NOISE]
    return " ".join(_address_token(t, i, len(tokens)) for i, t in enumerate(tokens))


def address_key(value) -> str:
    """``normalize_address`` without spaces, so "pridham street" and "pridhamstreet" meet."""
    return normalize_address(value).replace(" ", "")


def normalize_house_number(value) -> str:
    """"12 a" / "12A" / "Nr. 12a" -> "12a"."""
    return "".join(t for t in strip_accents(value).split() if t not in _ADDRESS_NOISE)


def normalize_postcode(value) -> str:
    """Upper-case letters and digits only: "sw1a 1aa" -> "SW1A1AA", "D-80331" -> "D80331"."""
    if value is None:
        return ""
    text = str(value)
    if text.isascii() and text.isalnum():  # the common case, quickly
        return text.upper()
    return "".join(ch for ch in _ascii(text).upper() if ch.isalnum())


def normalize_identifier(value) -> str:
    """Customer numbers and other keys: upper-case letters and digits only."""
    return normalize_postcode(value)


def normalize_text(value) -> str:
    return fold_digraphs(strip_accents(value))


# ---------------------------------------------------------------------------------------------- email/phone
_GMAIL = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True)
class Email:
    address: str
    local: str
    domain: str


def normalize_email(value) -> Email | None:
    """Lower-case, "+tag" dropped; gmail addresses also lose the dots of the local part. None if no email."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.startswith("mailto:"):
        text = text[7:]
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    local = local.split("+", 1)[0]
    domain = domain.strip(".")
    if not local or "." not in domain or any(ch.isspace() for ch in text):
        return None
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return Email(f"{local}@{domain}", local, domain)


def normalize_phone(value, region: str | None = None) -> str | None:
    """E.164 ("+4930123456") when the number parses (with ``region`` for national numbers); otherwise its
    digits when there are at least six (a number kept raw rather than lost); None for no number."""
    if value is None:
        return None
    text = str(value).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 6:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return digits


# ----------------------------------------------------------------------------------------------------- dates
@dataclass(frozen=True)
class DateParts:
    """A written date as its parts. ``valid`` is False for a date that does not exist on the calendar
    (e.g. a typo'd "1975-02-30"): its parts still take part in the day/month-swap and digit comparisons."""

    year: int
    month: int
    day: int
    valid: bool

    @property
    def ordinal(self) -> int:
        return date(self.year, self.month, self.day).toordinal() if self.valid else -1

    @property
    def as_int(self) -> int:
        return self.year * 10000 + self.month * 100 + self.day


_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_WRITTEN = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{2}|\d{4})$")


def _parts(year: int, month: int, day: int) -> DateParts | None:
    if not (1000 <= year <= 2999 and 1 <= month <= 31 and 1 <= day <= 31 and min(month, day) <= 12):
        return None
    try:
        date(year, month, day)
        valid = True
    except ValueError:
        valid = False
    return DateParts(year, month, day, valid)


def parse_date(value, order: str = "dmy", pivot_year: int | None = None) -> DateParts | None:
    """A date from a date/datetime or a written form: 1975-04-09, 19750409, 09.04.1975, 9/4/75. ``order`` says
    how to read "a/b/yyyy" ("dmy" — Europe — or "mdy"); the ISO and compact forms are always year first.
    Two-digit years above ``pivot_year`` (default: this year) belong to the previous century."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return DateParts(value.year, value.month, value.day, True)
    text = str(value).strip()
    if not text:
        return None
    match = _ISO.match(text) or _COMPACT.match(text)
    if match:
        return _parts(int(match[1]), int(match[2]), int(match[3]))
    match = _WRITTEN.match(text)
    if match:
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        if len(match[3]) == 2:
            pivot = (pivot_year if pivot_year is not None else date.today().year) % 100
            year += 2000 if year <= pivot else 1900
        day, month = (first, second) if order == "dmy" else (second, first)
        return _parts(year, month, day)
    return None


def parse_number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value else None
    text = str(value).strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None
