"""Profile search: the folded search text of a profile and the normalization of a search query.

``Profile.search_text`` is a generated column (computed by the database from the traits on every write, so bulk
loaders, raw SQL and the pipeline all keep it current): the name, email and phone traits, lowercased, with German
umlauts and common accents folded to ASCII ("Müller" -> "mueller"). The query is folded the same way before
searching. This module imports no model, so profiles.models can use it.
"""

import re
import unicodedata

from django.db.models import Func, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Lower, Replace

# Traits whose values are searched as text (identifiers are searched in profiles_identity.value).
SEARCH_TRAITS = ("first_name", "last_name", "name", "email", "phone", "company")

# Folded in the database after lowering (and in Python). The capital umlauts are listed because SQLite's lower()
# folds ASCII only; SQLite's parser also limits how deeply the REPLACE calls may nest, so the list stays short.
FOLDS = (
    ("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("Ä", "ae"), ("Ö", "oe"), ("Ü", "ue"),
    ("é", "e"), ("è", "e"), ("ê", "e"), ("á", "a"), ("à", "a"), ("â", "a"), ("ó", "o"), ("ô", "o"),
    ("í", "i"), ("ñ", "n"), ("ç", "c"),
)

MIN_FUZZY_LENGTH = 3
DEFAULT_PHONE_REGION = "DE"
_PHONE = re.compile(r"^\+?[\d\s()./-]{6,}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class _JoinText(Func):
    """``(a || b || c)``: flat (Concat nests a pair per argument, too deep for SQLite's parser) and immutable on
    PostgreSQL (so usable in a generated column). Every argument must be text and never NULL."""

    template = "(%(expressions)s)"
    arg_joiner = " || "
    output_field = TextField()


def search_text_expression():
    """The database expression of Profile.search_text (immutable: usable in a generated column)."""
    parts = []
    for name in SEARCH_TRAITS:
        parts += [Coalesce(KeyTextTransform(name, "traits"), Value(""), output_field=TextField()), Value(" ")]
    expression = Lower(_JoinText(*parts[:-1]), output_field=TextField())
    for char, ascii_text in FOLDS:
        expression = Replace(expression, Value(char), Value(ascii_text), output_field=TextField())
    return expression


def fold(text: str) -> str:
    """Python's side of search_text_expression: lowercase ASCII with umlauts as "ae", "oe", "ue" and other
    accents dropped."""
    text = text.lower()
    for char, ascii_text in FOLDS:
        text = text.replace(char, ascii_text)
    text = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).split())


def _phone_e164(text: str, region: str = DEFAULT_PHONE_REGION) -> str | None:
    import phonenumbers

    candidate = "+" + text[2:] if text.startswith("00") else text
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def query_normalize(raw: str) -> tuple[str, str]:
    """A search query as (text, identifier): ``text`` to search the folded search text with, ``identifier`` to
    search identity values with. An email is lowercased; a phone number becomes E.164 ("+49 30 1234567" and
    "030 1234567" -> "+49301234567"); anything else is folded for the text and kept as typed for identifiers."""
    query = " ".join(str(raw or "").split())
    if not query:
        return "", ""
    if _EMAIL.match(query):
        email = query.lower()
        return fold(email), email
    if _PHONE.match(query) and sum(ch.isdigit() for ch in query) >= 6:
        e164 = _phone_e164(query)
        if e164:
            return e164, e164
    return fold(query), query


def identifier_candidates(identity_type: str, value: str) -> list[str]:
    """The values an identifier of ``identity_type`` may be stored under, most likely first: the normalized
    form (emails lowercased, phones in E.164), then the value as sent (identities that failed normalization keep
    it)."""
    text = str(value or "").strip()
    if not text:
        return []
    candidates = []
    if identity_type == "email":
        candidates.append(text.lower())
    elif identity_type == "phone":
        e164 = _phone_e164(text)
        if e164:
            candidates.append(e164)
        digits = "".join(ch for ch in text if ch.isdigit() or ch == "+")
        candidates.append(digits)
    candidates.append(text)
    return list(dict.fromkeys(candidates))
