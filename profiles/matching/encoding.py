"""Records to arrays, once: every field is normalized and factorized into integer codes.

A field of n records becomes ``codes`` (n int32, -1 where the value is missing or unreadable) into a vocabulary of
distinct normalized keys. Everything the comparators and blocking keys need beyond the key itself (phonetic
codes, nickname groups, date parts, the email's local part ...) is a *feature* computed once per distinct key and
looked up through the codes. Scoring then works on integer arrays and on the distinct strings only, which is
what makes bulk scoring fast.

For linking, both sides are encoded together (``encode_link``) so they share one vocabulary; the records of
side B follow those of side A (``n_a`` tells where B starts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from profiles.matching import normalize as nz

# Field kinds: how a raw value is read and which key it is compared by.
KINDS = ("name", "given_name", "text", "city", "address", "house_number", "postcode", "identifier", "email",
         "phone", "date", "number")
NAME_LIKE = frozenset({"name", "given_name", "text", "city", "address"})
STRING_KINDS = frozenset(KINDS) - {"date", "number"}


def _is_missing(raw) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and math.isnan(raw):
        return True
    return isinstance(raw, str) and not raw.strip()


class _Reader:
    """Reads one raw value into (key, value) for a kind; ``None`` when there is nothing usable."""

    def __init__(self, kind: str, options: Mapping):
        self.kind = kind
        self.region = options.get("default_region")
        self.date_order = options.get("date_order", "dmy")

    def __call__(self, raw):
        if _is_missing(raw):
            return None
        kind = self.kind
        if kind in ("name", "given_name"):
            key = nz.name_key(str(raw))
            return (key, key) if key else None
        if kind in ("text", "city"):
            key = nz.normalize_text(str(raw))
            return (key, key) if key else None
        if kind == "address":
            key = nz.address_key(str(raw))
            return (key, key) if key else None
        if kind == "house_number":
            key = nz.normalize_house_number(str(raw))
            return (key, key) if key else None
        if kind in ("postcode", "identifier"):
            key = nz.normalize_postcode(str(raw))
            return (key, key) if key else None
        if kind == "email":
            email = nz.normalize_email(raw)
            return (email.address, email) if email else None
        if kind == "phone":
            phone = nz.normalize_phone(raw, self.region)
            return (phone, phone) if phone else None
        if kind == "date":
            parts = nz.parse_date(raw, self.date_order)
            return (f"{parts.as_int:08d}", parts) if parts else None
        if kind == "number":
            number = nz.parse_number(raw)
            return (repr(number), number) if number is not None and math.isfinite(number) else None
        raise ValueError(f"unknown field kind {kind!r}")


PROFILE_WIDTH = 64
# Letters, digits, and one bucket for everything else (so no character is left out of the counts).
_BUCKET = np.full(256, 36, dtype=np.uint8)
_BUCKET[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.arange(26)
_BUCKET[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)] = np.arange(26)
_BUCKET[np.frombuffer(b"0123456789", np.uint8)] = np.arange(26, 36)
BUCKETS = 37
INCOMPLETE = 0xFF


def _profile(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Per key, words for exact bounds on string similarity, so most clearly different pairs never reach the
    string metric. Characters are counted in 37 buckets (a-z, 0-9, everything else); bit c of set k is on when
    the key has more than k characters in bucket c, so two keys share at most popcount(set_k & set_k') summed
    over k, plus the smaller count of characters beyond the last set.

    "head" (two words per key, the quick first test): set 0, and a word packing the first four characters
    (bits 0-31), the length (32-39; INCOMPLETE for a key longer than PROFILE_WIDTH, which is never filtered),
    the characters beyond set 0 (40-47) and beyond set 2 (48-55). "tail": sets 1 and 2, for the closer test."""
    raw = [k.encode("ascii", "replace") for k in keys]  # one byte per character
    count = len(raw)
    length = np.fromiter(map(len, raw), dtype=np.int64, count=count)
    width = PROFILE_WIDTH
    buffer = np.frombuffer(b"".join(r[:width].ljust(width, b"\0") for r in raw), dtype=np.uint8)
    buffer = buffer.reshape(count, width)
    used = np.arange(width)[None, :] < length[:, None]
    rows = np.broadcast_to(np.arange(count, dtype=np.int64)[:, None], buffer.shape)
    hist = np.bincount((rows * BUCKETS + _BUCKET[buffer])[used], minlength=count * BUCKETS).reshape(count, BUCKETS)
    powers = np.left_shift(np.uint64(1), np.arange(BUCKETS, dtype=np.uint64))
    sets = [((hist > layer).astype(np.uint64) * powers).sum(axis=1, dtype=np.uint64) for layer in range(3)]
    beyond_first = np.maximum(hist - 1, 0).sum(axis=1)
    beyond_third = np.maximum(hist - 3, 0).sum(axis=1)
    prefix = np.ascontiguousarray(buffer[:, :4]).view("<u4").ravel().astype(np.uint64)
    length = np.where(length <= width, length, INCOMPLETE).astype(np.uint64)
    meta = (prefix | (length << np.uint64(32)) | (np.minimum(beyond_first, 0xFF).astype(np.uint64) << np.uint64(40))
            | (np.minimum(beyond_third, 0xFF).astype(np.uint64) << np.uint64(48)))
    return {"head": np.stack([sets[0], meta], axis=1), "tail": np.stack([sets[1], sets[2]], axis=1)}


def _factorize(strings: Sequence[str]) -> np.ndarray:
    """int32 code per string, -1 for the empty string."""
    vocab: dict[str, int] = {"": -1}
    return np.fromiter((vocab.setdefault(s, len(vocab) - 1) for s in strings), dtype=np.int32, count=len(strings))


CATEGORICAL = frozenset({"", "cologne", "nysiis", "metaphone", "initial", "local", "domain", "year", "month_day"})


def feature_text(feature: str, key: str, value) -> str:
    """A derived key of one normalized value, as text ("" when there is none): what blocking keys are made of.
    ``feature`` is "" (the key itself), "cologne", "nysiis", "metaphone", "initial", "prefixN", "suffixN", and
    for emails "local" / "domain", for dates "year" / "month_day"."""
    if feature == "":
        return key
    if feature == "cologne":
        return nz.cologne(key)
    if feature == "nysiis":
        return nz.nysiis(key)
    if feature == "metaphone":
        return nz.metaphone(key)
    if feature == "initial":
        return key[:1]
    if feature.startswith("prefix"):
        return key[: int(feature[6:])]
    if feature.startswith("suffix"):
        n = int(feature[6:])
        return key[-n:] if len(key) >= n else ""
    if feature == "local":
        return value.local
    if feature == "domain":
        return value.domain
    if feature == "year":
        return f"{value.year:04d}"
    if feature == "month_day":
        return f"{value.month:02d}{value.day:02d}"
    raise ValueError(f"unknown feature {feature!r}")


@dataclass
class EncodedField:
    name: str
    kind: str
    codes: np.ndarray  # int32 per record, -1 = missing
    keys: np.ndarray  # object array: normalized key per code
    values: list  # normalized value per code (DateParts, Email, float, or the key)
    _features: dict = field(default_factory=dict, repr=False)

    @property
    def missing(self) -> np.ndarray:
        return self.codes < 0

    def feature(self, name: str) -> np.ndarray:
        """A per-code feature (computed once): int32 codes of a derived key (-1 when empty), or for
        "nickname" an (V, slots) array of group ids, for "parts" a dict of date-part arrays, for "value" floats."""
        cached = self._features.get(name)
        if cached is None:
            cached = self._features[name] = self._compute(name)
        return cached

    def _compute(self, name: str):
        keys = self.keys
        if name in CATEGORICAL or name.startswith(("prefix", "suffix")):
            return _factorize([feature_text(name, k, v) for k, v in zip(keys, self.values, strict=True)])
        if name == "nickname":
            slots = np.full((len(keys), nz.NICKNAME_SLOTS), -1, dtype=np.int32)
            for i, k in enumerate(keys):
                groups = (nz.NICKNAME_INDEX.get(k) or nz.NICKNAME_INDEX.get(k.split()[0], ())) if k else ()
                slots[i, : len(groups)] = groups
            return slots
        if name == "parts":
            v = self.values
            return {
                "year": np.fromiter((p.year for p in v), np.int32, len(v)),
                "month": np.fromiter((p.month for p in v), np.int32, len(v)),
                "day": np.fromiter((p.day for p in v), np.int32, len(v)),
                "ymd": np.fromiter((p.as_int for p in v), np.int64, len(v)),
                "ordinal": np.fromiter((p.ordinal for p in v), np.int64, len(v)),
            }
        if name == "value":
            return np.asarray(self.values, dtype=np.float64)
        if name == "datepack":
            # Word 0: the eight digits of YYYYMMDD as bytes, the first digit in the highest byte (so the year is
            # the upper half, the month the next two bytes, the day the lowest two); word 1: the ordinal (-1 for a
            # date not on the calendar).
            parts = self.feature("parts")
            ymd = parts["ymd"]
            digits = np.zeros(ymd.shape, dtype=np.uint64)
            for k in range(8):
                digits |= ((ymd // 10**k) % 10).astype(np.uint64) << np.uint64(8 * k)
            return np.stack([digits, parts["ordinal"].astype(np.int64).view(np.uint64)], axis=1)
        if name == "profile":
            return _profile(keys)
        raise ValueError(f"unknown feature {name!r}")


@dataclass
class EncodedRecords:
    n: int
    fields: dict[str, EncodedField]
    n_a: int | None = None  # linking: records [0, n_a) are side A, [n_a, n) side B

    _matrices: dict = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> EncodedField:
        return self.fields[name]

    def code_matrix(self, names: Sequence[str]) -> np.ndarray:
        """(n, len(names)) int32: the codes of those fields, one row per record (built once)."""
        key = tuple(names)
        matrices = self.__dict__.setdefault("_matrices", {})
        matrix = matrices.get(key)
        if matrix is None:
            matrix = matrices[key] = np.ascontiguousarray(np.stack([self.fields[n].codes for n in names],
                                                                         axis=1))
        return matrix


def _encode_column(name: str, kind: str, column: Sequence, options: Mapping) -> EncodedField:
    read = _Reader(kind, options)
    memo: dict = {}
    vocab: dict[str, int] = {}
    values: list = []
    keys: list[str] = []

    def code_of(raw) -> int:
        result = read(raw)
        if result is None:
            return -1
        key, value = result
        code = vocab.get(key)
        if code is None:
            code = vocab[key] = len(keys)
            keys.append(key)
            values.append(value)
        return code

    codes = np.empty(len(column), dtype=np.int32)
    for i, raw in enumerate(column):
        try:
            code = memo.get(raw)
            if code is None:
                code = memo[raw] = code_of(raw)
        except TypeError:  # unhashable raw value (a list, a dict): read it as text
            code = code_of(str(raw))
        codes[i] = code
    key_array = np.empty(len(keys), dtype=object)
    key_array[:] = keys
    return EncodedField(name=name, kind=kind, codes=codes, keys=key_array, values=values)


def _columns_of(records, sources: list[str]) -> tuple[int, dict[str, Sequence]]:
    if isinstance(records, Mapping):  # columns: {"first_name": [...], ...}
        lengths = {len(records[s]) for s in sources if s in records}
        if len(lengths) > 1:
            raise ValueError("All columns must have the same length.")
        n = lengths.pop() if lengths else 0
        return n, {s: (records[s] if s in records else [None] * n) for s in sources}
    records = records if isinstance(records, Sequence) else list(records)
    return len(records), {s: [r.get(s) for r in records] for s in sources}


def _encode_fields(rules, columns: Mapping[str, Sequence], n: int) -> dict[str, EncodedField]:
    """Encode every field; the fields of a swap group (first and last name) share one vocabulary, so a value of
    one can be compared with a value of the other."""
    fields: dict[str, EncodedField] = {}
    for group in rules.swaps:
        first = rules.field(group[0])
        joined = []
        for name in group:
            joined.extend(columns[rules.field(name).source])
        shared = _encode_column(first.name, first.kind, joined, rules.options)
        for i, name in enumerate(group):
            f = rules.field(name)
            fields[name] = EncodedField(name=name, kind=f.kind, codes=shared.codes[i * n:(i + 1) * n],
                                        keys=shared.keys, values=shared.values, _features=shared._features)
    for f in rules.fields:
        if f.name not in fields:
            fields[f.name] = _encode_column(f.name, f.kind, columns[f.source], rules.options)
    return fields


def precompute(fields: dict[str, EncodedField], rules) -> None:
    """Compute every feature the comparators, swaps and blocking keys will read, now rather than while scoring."""
    wanted: dict[str, set[str]] = {f.name: set(f.comparator.features()) for f in rules.fields}
    for group in rules.swaps:
        for name in group:
            wanted[name].add("cologne")
    for key in rules.blocking:
        for name, feature in key.parts:
            if feature:
                wanted[name].add(feature)
    for name, features in wanted.items():
        for feature in sorted(features):
            fields[name].feature(feature)


def encode(records, rules) -> EncodedRecords:
    """Encode records (a sequence of mappings, or a mapping of equal-length columns) for ``rules``."""
    sources = [f.source for f in rules.fields]
    n, columns = _columns_of(records, sources)
    fields = _encode_fields(rules, columns, n)
    precompute(fields, rules)
    return EncodedRecords(n=n, fields=fields)


def encode_link(records_a, records_b, rules) -> EncodedRecords:
    """Encode two sides into one vocabulary; side B's records are numbered after side A's."""
    sources = [f.source for f in rules.fields]
    n_a, columns_a = _columns_of(records_a, sources)
    n_b, columns_b = _columns_of(records_b, sources)
    columns = {s: list(columns_a[s]) + list(columns_b[s]) for s in sources}
    fields = _encode_fields(rules, columns, n_a + n_b)
    precompute(fields, rules)
    return EncodedRecords(n=n_a + n_b, fields=fields, n_a=n_a)
