"""Comparators: for many pairs at once, which agreement *level* each pair reaches on one field.

A comparator has an ordered list of levels, best first and "different" last (e.g. ``exact``,
``jaro_winkler>=0.92``, ``jaro_winkler>=0.8``, ``different``); a pair gets the first level it satisfies, or -1
when either side is missing. Levels, not raw similarities, carry the Fellegi–Sunter weights, so every comparator
works on integer codes and only the pairs that are neither missing nor exactly equal reach the (C, multi-threaded)
string metrics of rapidfuzz.

``compare`` is the bulk path (int8 levels); ``similarity`` gives the number behind a level for the evidence of a
few pairs. Both take the codes of the two records of each pair (``codes[ia]``, ``codes[ib]``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from profiles.matching.encoding import INCOMPLETE, NAME_LIKE, STRING_KINDS, EncodedField
from profiles.matching.errors import RuleError

MISSING = -1


def _split(ca: np.ndarray, cb: np.ndarray, n_levels: int):
    """Levels with missing (-1), exact (0) and different (last) filled in, and the indices still undecided."""
    missing = (ca < 0) | (cb < 0)
    exact = (ca == cb) & ~missing
    levels = np.full(ca.shape, n_levels - 1, dtype=np.int8)
    levels[missing] = MISSING
    levels[exact] = 0
    return levels, np.flatnonzero(~(missing | exact))


_local = threading.local()  # ``workers`` for rapidfuzz: 1 inside a thread of our own pool, else all cores


def set_string_workers(workers: int) -> None:
    """How many threads rapidfuzz may use for the string metrics called from this thread."""
    _local.workers = workers


# Similarities are compared with their thresholds with this much slack, so that a score that is exactly a
# threshold in decimal (a Jaro-Winkler of 0.8) but a hair below it in binary still reaches it.
EPSILON = 1e-9
BOUND_SLACK = 1e-6  # more than EPSILON: a bound or a cutoff must never drop a pair that reaches a threshold


def pair_scores(keys: np.ndarray, ca: np.ndarray, cb: np.ndarray, scorer, score_cutoff=None) -> np.ndarray:
    """``scorer`` of keys[ca[i]] against keys[cb[i]] for every i, in C on all cores. Similarities below
    ``score_cutoff`` (distances above it) come back as 0 (as cutoff + 1)."""
    distance = scorer in (Levenshtein.distance, OSA.distance)
    if ca.size == 0:
        return np.empty(0, dtype=np.int32 if distance else np.float64)
    if score_cutoff is not None and not distance:
        # rapidfuzz drops scores at the cutoff's edge in its own arithmetic: ask for a little more, judge here.
        score_cutoff = max(score_cutoff - BOUND_SLACK, 0.0)
    return process.cpdist(keys[ca], keys[cb], scorer=scorer, score_cutoff=score_cutoff,
                          workers=getattr(_local, "workers", -1), dtype=np.int32 if distance else np.float64)


def similarity_levels(sims: np.ndarray, thresholds: tuple[float, ...]) -> np.ndarray:
    """0 for sims reaching thresholds[0], 1 for thresholds[1] ..., len(thresholds) below the last (thresholds
    descend)."""
    reached = np.zeros(sims.shape, dtype=np.int8)
    for threshold in thresholds:
        reached += sims >= threshold - EPSILON
    return (len(thresholds) - reached).astype(np.int8)


# ------------------------------------------------------------------------------------ exact bounds, used as filters
# A pair whose best possible score (from character counts, lengths and the common prefix) stays below the lowest
# threshold is "different" without running the metric. The bounds are exact, so the levels are the same as if
# every pair had been scored; only the work is less.


_BYTE = np.uint64(0xFF)
_U32 = np.uint64(32)


def _bounded(f: EncodedField, ca: np.ndarray, cb: np.ndarray, may_reach, *, prefix: bool = True) -> np.ndarray:
    """``may_reach(prefix, common, la, lb)`` on an upper bound of the characters each pair shares: first from the
    distinct characters (cheap), then, for the pairs that pass, from the closer count. Pairs with a key too long
    to be profiled always pass."""
    profile = f.feature("profile")
    head = profile["head"]
    pa, pb = np.take(head, ca, axis=0), np.take(head, cb, axis=0)  # (take is much faster than [] on rows)
    ma, mb = pa[:, 1], pb[:, 1]
    la = ((ma >> _U32) & _BYTE).astype(np.int32)
    lb = ((mb >> _U32) & _BYTE).astype(np.int32)
    common = np.bitwise_count(pa[:, 0] & pb[:, 0]).astype(np.int32)
    common += np.minimum((ma >> np.uint64(40)) & _BYTE, (mb >> np.uint64(40)) & _BYTE).astype(np.int32)
    if prefix:  # the common prefix, up to four characters (Jaro-Winkler's bonus)
        x = (ma ^ mb) & np.uint64(0xFFFFFFFF)
        prefix = ((x & _BYTE) == 0).astype(np.int32)
        prefix += (x & np.uint64(0xFFFF)) == 0
        prefix += (x & np.uint64(0xFFFFFF)) == 0
        prefix += x == 0
    else:
        prefix = np.zeros(ca.size, dtype=np.int32)
    complete = (la != INCOMPLETE) & (lb != INCOMPLETE)
    passed = ~complete | may_reach(prefix, common, la, lb)
    closer = np.flatnonzero(passed & complete)
    if closer.size:
        tail = profile["tail"]
        ta, tb = np.take(tail, ca[closer], axis=0), np.take(tail, cb[closer], axis=0)
        pa, pb = pa[closer], pb[closer]
        exact = np.bitwise_count(pa[:, 0] & pb[:, 0]).astype(np.int32)
        exact += np.bitwise_count(ta[:, 0] & tb[:, 0])
        exact += np.bitwise_count(ta[:, 1] & tb[:, 1])
        exact += np.minimum(pa[:, 1] >> np.uint64(48), pb[:, 1] >> np.uint64(48)).astype(np.int32)
        passed[closer] = may_reach(prefix[closer], exact, la[closer], lb[closer])
    return passed


def may_reach_jaro_winkler(f: EncodedField, ca: np.ndarray, cb: np.ndarray, cutoff: float) -> np.ndarray:
    """False where Jaro-Winkler cannot reach ``cutoff``: Jaro needs matching characters, at most the common
    character count C, so J <= (C/|a| + C/|b| + 1) / 3; Winkler adds at most prefix * 0.1 * (1 - J)."""

    def test(prefix, common, la, lb):
        jaro = (common / np.maximum(la, 1) + common / np.maximum(lb, 1) + 1.0) / 3.0
        jaro[common == 0] = 0.0
        return jaro + prefix * 0.1 * (1.0 - jaro) >= cutoff - BOUND_SLACK

    return _bounded(f, ca, cb, test)


def _edit_lower_bound(common, la, lb) -> np.ndarray:
    """Edits needed at least: the length difference, and half the characters the two do not share."""
    return np.maximum(np.abs(la - lb), (la + lb - 2 * common + 1) // 2)


def may_reach_distance(f: EncodedField, ca: np.ndarray, cb: np.ndarray, limit: int) -> np.ndarray:
    """False where the (Levenshtein or OSA) distance must exceed ``limit``."""
    return _bounded(f, ca, cb, lambda prefix, common, la, lb: _edit_lower_bound(common, la, lb) <= limit,
                    prefix=False)


def may_reach_similarity(f: EncodedField, ca: np.ndarray, cb: np.ndarray, cutoff: float) -> np.ndarray:
    """False where the normalized Levenshtein similarity 1 - d / max(|a|, |b|) must stay below ``cutoff``."""

    def test(prefix, common, la, lb):
        return 1.0 - _edit_lower_bound(common, la, lb) / np.maximum(np.maximum(la, lb), 1) >= cutoff - BOUND_SLACK

    return _bounded(f, ca, cb, test, prefix=False)


def _number(value, path: str, low: float, high: float, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise RuleError(path, f"must be {'an integer' if integer else 'a number'} between {low:g} and {high:g}")
    if not low <= value <= high:
        raise RuleError(path, f"must be between {low:g} and {high:g}, got {value!r}")
    return value


def _descending(values, path: str, low: float, high: float, *, integer: bool = False, ascending: bool = False):
    if not isinstance(values, list | tuple) or not values:
        raise RuleError(path, "must be a non-empty list")
    out = [_number(v, f"{path}[{i}]", low, high, integer=integer) for i, v in enumerate(values)]
    ordered = sorted(set(out), reverse=not ascending)
    if out != ordered:
        raise RuleError(path, f"must be strictly {'increasing' if ascending else 'decreasing'}, got {list(values)}")
    return tuple(out)


def _fmt(value: float) -> str:
    return f"{value:g}"


class Comparator:
    type: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    allowed: ClassVar[frozenset[str]] = frozenset()
    # What ``similarity`` returns, as the evidence names it.
    measure: ClassVar[str] = "similarity"
    levels: tuple[str, ...]

    def __init__(self, params: Mapping, path: str):
        unknown = set(params) - self.allowed - {"type"}
        if unknown:
            raise RuleError(f"{path}.{sorted(unknown)[0]}", f"unknown option for comparator {self.type!r}; "
                                                             f"allowed: {sorted(self.allowed) or 'none'}")

    def spec(self) -> dict:
        return {"type": self.type}

    def features(self) -> tuple[str, ...]:
        """The per-value features this comparator reads (computed when the records are encoded)."""
        return ()

    def compare(self, f: EncodedField, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def similarity(self, f: EncodedField, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
        """1.0 for equal, 0.0 for different, nan for missing; fuzzy comparators give their metric."""
        missing = (ca < 0) | (cb < 0)
        return np.where(missing, np.nan, (ca == cb).astype(np.float64))


class Exact(Comparator):
    type = "exact"
    kinds = frozenset(STRING_KINDS | {"date", "number"})
    levels = ("exact", "different")

    def compare(self, f, ca, cb):
        return _split(ca, cb, 2)[0]


class _Fuzzy(Comparator):
    """Exact, then similarity thresholds (descending) or edit distances (ascending), then different."""

    allowed = frozenset({"thresholds", "distances"})
    kinds = STRING_KINDS
    metric: ClassVar[str]

    def __init__(self, params, path):
        super().__init__(params, path)
        if ("thresholds" in params) == ("distances" in params) and self.type != "jaro_winkler":
            raise RuleError(path, "give either 'thresholds' (similarities 0..1) or 'distances' (edit counts)")
        if "distances" in params:
            self.distances = _descending(params["distances"], f"{path}.distances", 1, 50, integer=True,
                                         ascending=True)
            self.thresholds = None
            self.measure = "distance"  # the evidence shows the edit count
            names = [f"{self.metric}<={d}" for d in self.distances]
        else:
            self.thresholds = _descending(params.get("thresholds"), f"{path}.thresholds", 0.0, 1.0)
            self.distances = None
            names = [f"{self.metric}>={_fmt(t)}" for t in self.thresholds]
        self.levels = ("exact", *names, "different")

    def spec(self):
        key = "distances" if self.distances else "thresholds"
        return {"type": self.type, key: list(self.distances or self.thresholds)}

    def features(self):
        return ("profile",)

    def _scorer(self, distance: bool):
        raise NotImplementedError

    def _may_reach(self, f, ca, cb) -> np.ndarray:
        raise NotImplementedError

    def _levels_for(self, keys, ca, cb) -> np.ndarray:
        """Level offsets 1..k+1 for pairs that are neither missing nor equal."""
        if self.distances:
            limit = self.distances[-1]
            dist = pair_scores(keys, ca, cb, self._scorer(True), score_cutoff=limit)
            bounds = np.asarray(self.distances)
            return 1 + np.searchsorted(bounds, dist, side="left")
        sims = pair_scores(keys, ca, cb, self._scorer(False), score_cutoff=self.thresholds[-1])
        return 1 + similarity_levels(sims, self.thresholds)

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, len(self.levels))
        if todo.size:
            todo = todo[self._may_reach(f, ca[todo], cb[todo])]
        if todo.size:
            levels[todo] = self._levels_for(f.keys, ca[todo], cb[todo])
        return levels

    def similarity(self, f, ca, cb):
        """The similarity, or for distance levels the edit count (0 for equal values)."""
        out = super().similarity(f, ca, cb)
        todo = np.flatnonzero(out == 0.0)
        if self.distances:
            out[out == 1.0] = 0.0
        if todo.size:
            out[todo] = pair_scores(f.keys, ca[todo], cb[todo], self._scorer(bool(self.distances)))
        return out


class JaroWinklerComparator(_Fuzzy):
    type = "jaro_winkler"
    metric = "jaro_winkler"
    allowed = frozenset({"thresholds"})

    def __init__(self, params, path):
        params = {"thresholds": [0.92, 0.8], **params}
        super().__init__(params, path)

    def _scorer(self, distance):
        return JaroWinkler.normalized_similarity

    def _may_reach(self, f, ca, cb):
        return may_reach_jaro_winkler(f, ca, cb, self.thresholds[-1])


class LevenshteinComparator(_Fuzzy):
    """Normalized Levenshtein similarity thresholds, or absolute edit distances. ``transpositions: true`` counts
    a swap of two neighbouring characters as one edit (optimal string alignment)."""

    type = "levenshtein"
    metric = "levenshtein"
    allowed = frozenset({"thresholds", "distances", "transpositions"})

    def __init__(self, params, path):
        transpositions = params.get("transpositions", False)
        if not isinstance(transpositions, bool):
            raise RuleError(f"{path}.transpositions", "must be true or false")
        self.transpositions = transpositions
        super().__init__({k: v for k, v in params.items() if k != "transpositions"}, path)

    def spec(self):
        return {**super().spec(), "transpositions": self.transpositions}

    def _scorer(self, distance):
        module = OSA if self.transpositions else Levenshtein
        return module.distance if distance else module.normalized_similarity

    def _may_reach(self, f, ca, cb):
        if self.distances:
            return may_reach_distance(f, ca, cb, self.distances[-1])
        return may_reach_similarity(f, ca, cb, self.thresholds[-1])


class NameComparator(Comparator):
    """For names: exact, nickname (Sepp/Josef — given names only), phonetic (Kölner Phonetik or NYSIIS agree:
    Meyer/Maier, Schmidt/Schmitt), then Jaro-Winkler thresholds, then different."""

    type = "name"
    kinds = frozenset({"name", "given_name"})
    allowed = frozenset({"thresholds", "nicknames", "phonetic"})

    def __init__(self, params, path):
        super().__init__(params, path)
        self.thresholds = _descending(params.get("thresholds", [0.92, 0.8]), f"{path}.thresholds", 0.0, 1.0)
        self.nicknames = params.get("nicknames", False)
        if not isinstance(self.nicknames, bool):
            raise RuleError(f"{path}.nicknames", "must be true or false")
        self.phonetic = params.get("phonetic", ["cologne", "nysiis"])
        if not isinstance(self.phonetic, list) or not set(self.phonetic) <= set(PHONETIC_ALGORITHMS):
            raise RuleError(f"{path}.phonetic", f"must be a list drawn from {list(PHONETIC_ALGORITHMS)}")
        names = ["exact"]
        if self.nicknames:
            names.append("nickname")
        if self.phonetic:
            names.append("phonetic")
        names += [f"jaro_winkler>={_fmt(t)}" for t in self.thresholds]
        self.levels = (*names, "different")

    def spec(self):
        return {"type": self.type, "thresholds": list(self.thresholds), "nicknames": self.nicknames,
                "phonetic": list(self.phonetic)}

    def features(self):
        return ("profile", *self.phonetic, *(("nickname",) if self.nicknames else ()))

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, len(self.levels))
        level = 1
        if self.nicknames and todo.size:
            hit = _share_group(f.feature("nickname"), ca[todo], cb[todo])
            levels[todo[hit]] = level
            todo = todo[~hit]
            level += 1
        if self.phonetic and todo.size:
            a, b = ca[todo], cb[todo]
            hit = np.zeros(todo.size, dtype=bool)
            for algorithm in self.phonetic:
                codes = f.feature(algorithm)
                pa, pb = codes[a], codes[b]
                hit |= (pa == pb) & (pa >= 0)
            levels[todo[hit]] = level
            todo = todo[~hit]
            level += 1
        if todo.size:
            todo = todo[may_reach_jaro_winkler(f, ca[todo], cb[todo], self.thresholds[-1])]
        if todo.size:
            sims = pair_scores(f.keys, ca[todo], cb[todo], JaroWinkler.normalized_similarity,
                               score_cutoff=self.thresholds[-1])
            levels[todo] = level + similarity_levels(sims, self.thresholds)
        return levels

    def similarity(self, f, ca, cb):
        out = super().similarity(f, ca, cb)
        todo = np.flatnonzero(out == 0.0)
        if todo.size:
            out[todo] = pair_scores(f.keys, ca[todo], cb[todo], JaroWinkler.normalized_similarity)
        return out


def _share_group(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether the names behind codes a and b share a nickname group (most names have none: those are skipped)."""
    hit = np.zeros(a.size, dtype=bool)
    first = groups[:, 0]
    both = np.flatnonzero((first[a] >= 0) & (first[b] >= 0))
    if not both.size:
        return hit
    ga, gb = np.take(groups, a[both], axis=0), np.take(groups, b[both], axis=0)
    found = np.zeros(both.size, dtype=bool)
    for i in range(ga.shape[1]):
        for j in range(gb.shape[1]):
            found |= (ga[:, i] == gb[:, j]) & (ga[:, i] >= 0)
    hit[both] = found
    return hit


PHONETIC_ALGORITHMS = ("cologne", "nysiis", "metaphone")


class PhoneticComparator(Comparator):
    """Exact, then the same phonetic code under any of ``algorithms``, then different."""

    type = "phonetic"
    kinds = NAME_LIKE
    allowed = frozenset({"algorithms"})
    levels = ("exact", "phonetic", "different")

    def __init__(self, params, path):
        super().__init__(params, path)
        self.algorithms = params.get("algorithms", ["cologne", "nysiis"])
        if (not isinstance(self.algorithms, list) or not self.algorithms
                or not set(self.algorithms) <= set(PHONETIC_ALGORITHMS)):
            raise RuleError(f"{path}.algorithms", f"must be a non-empty list drawn from {list(PHONETIC_ALGORITHMS)}")

    def spec(self):
        return {"type": self.type, "algorithms": list(self.algorithms)}

    def features(self):
        return tuple(self.algorithms)

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, 3)
        if todo.size:
            a, b = ca[todo], cb[todo]
            hit = np.zeros(todo.size, dtype=bool)
            for algorithm in self.algorithms:
                codes = f.feature(algorithm)
                hit |= (codes[a] == codes[b]) & (codes[a] >= 0)
            levels[todo[hit]] = 1
        return levels


class DateComparator(Comparator):
    """Exact; day and month swapped; one typo (one digit changed, or two neighbouring digits swapped, in
    YYYYMMDD); within ``tolerance_days`` days; same year; different."""

    type = "date"
    kinds = frozenset({"date"})
    measure = "days_apart"
    allowed = frozenset({"tolerance_days"})

    def __init__(self, params, path):
        super().__init__(params, path)
        self.tolerance_days = int(_number(params.get("tolerance_days", 7), f"{path}.tolerance_days", 1, 3650,
                                          integer=True))
        self.levels = ("exact", "day_month_swapped", "one_typo", f"within_{self.tolerance_days}_days",
                       "same_year", "different")

    def spec(self):
        return {"type": self.type, "tolerance_days": self.tolerance_days}

    def features(self):
        return ("parts", "datepack")

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, 6)
        if not todo.size:
            return levels
        packed = f.feature("datepack")  # per date: its digits as bytes (YYYYMMDD, Y first), and its ordinal
        a, b = np.take(packed, ca[todo], axis=0), np.take(packed, cb[todo], axis=0)
        da, db = a[:, 0], b[:, 0]
        x = da ^ db
        same_year = (x >> np.uint64(32)) == 0
        sub = np.where(same_year, 4, 5).astype(np.int8)  # from the weakest level up: a stronger one overwrites
        oa, ob = a[:, 1].view(np.int64), b[:, 1].view(np.int64)
        sub[(oa >= 0) & (ob >= 0) & (np.abs(oa - ob) <= self.tolerance_days)] = 3
        # Digits that differ: a byte of x is non-zero.
        low7 = np.uint64(0x7F7F7F7F7F7F7F7F)
        differ = np.bitwise_count((((x & low7) + low7) | x) & ~low7)
        typo = differ == 1
        two = np.flatnonzero(differ == 2)
        if two.size:
            ta = da[two].view(np.uint8).reshape(-1, 8)
            tb = db[two].view(np.uint8).reshape(-1, 8)
            d = ta != tb
            swapped = d[:, :-1] & d[:, 1:] & (ta[:, :-1] == tb[:, 1:]) & (ta[:, 1:] == tb[:, :-1])
            typo[two[swapped.any(axis=1)]] = True
        sub[typo] = 2
        short = np.uint64(0xFFFF)
        month_a, day_a = (da >> np.uint64(16)) & short, da & short
        month_b, day_b = (db >> np.uint64(16)) & short, db & short
        sub[same_year & (month_a == day_b) & (day_a == month_b)] = 1
        levels[todo] = sub
        return levels

    def similarity(self, f, ca, cb):
        """Days apart (as a number, nan when either date is missing or not on the calendar)."""
        parts = f.feature("parts")
        missing = (ca < 0) | (cb < 0)
        oa = parts["ordinal"][np.where(missing, 0, ca)]
        ob = parts["ordinal"][np.where(missing, 0, cb)]
        days = np.abs(oa - ob).astype(np.float64)
        return np.where(missing | (oa < 0) | (ob < 0), np.nan, days)


class NumericComparator(Comparator):
    """Exact; within an absolute or relative tolerance; different."""

    type = "numeric"
    kinds = frozenset({"number"})
    measure = "difference"
    allowed = frozenset({"abs_tolerance", "rel_tolerance"})
    levels = ("exact", "within_tolerance", "different")

    def __init__(self, params, path):
        super().__init__(params, path)
        self.abs_tolerance = float(_number(params.get("abs_tolerance", 0.0), f"{path}.abs_tolerance", 0, 1e12))
        self.rel_tolerance = float(_number(params.get("rel_tolerance", 0.0), f"{path}.rel_tolerance", 0, 1))
        if self.abs_tolerance == 0 and self.rel_tolerance == 0:
            raise RuleError(path, "give abs_tolerance or rel_tolerance (or use the 'exact' comparator)")

    def spec(self):
        return {"type": self.type, "abs_tolerance": self.abs_tolerance, "rel_tolerance": self.rel_tolerance}

    def features(self):
        return ("value",)

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, 3)
        if todo.size:
            values = f.feature("value")
            va, vb = values[ca[todo]], values[cb[todo]]
            limit = np.maximum(self.abs_tolerance, self.rel_tolerance * np.maximum(np.abs(va), np.abs(vb)))
            levels[todo[np.abs(va - vb) <= limit]] = 1
        return levels

    def similarity(self, f, ca, cb):
        """The absolute difference."""
        values = f.feature("value")
        missing = (ca < 0) | (cb < 0)
        diff = np.abs(values[np.where(missing, 0, ca)] - values[np.where(missing, 0, cb)])
        return np.where(missing, np.nan, diff)


class EmailComparator(Comparator):
    """Exact address; same local part at another domain; similar (Levenshtein ≥ threshold: a typo); different."""

    type = "email"
    kinds = frozenset({"email"})
    allowed = frozenset({"threshold"})

    def __init__(self, params, path):
        super().__init__(params, path)
        self.threshold = float(_number(params.get("threshold", 0.9), f"{path}.threshold", 0, 1))
        self.levels = ("exact", "same_local_part", f"levenshtein>={_fmt(self.threshold)}", "different")

    def spec(self):
        return {"type": self.type, "threshold": self.threshold}

    def features(self):
        return ("local", "profile")

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, 4)
        if todo.size:
            local = f.feature("local")
            hit = local[ca[todo]] == local[cb[todo]]
            levels[todo[hit]] = 1
            todo = todo[~hit]
        if todo.size:
            todo = todo[may_reach_similarity(f, ca[todo], cb[todo], self.threshold)]
        if todo.size:
            sims = pair_scores(f.keys, ca[todo], cb[todo], Levenshtein.normalized_similarity,
                               score_cutoff=self.threshold)
            levels[todo[sims >= self.threshold - EPSILON]] = 2
        return levels

    def similarity(self, f, ca, cb):
        out = super().similarity(f, ca, cb)
        todo = np.flatnonzero(out == 0.0)
        if todo.size:
            out[todo] = pair_scores(f.keys, ca[todo], cb[todo], Levenshtein.normalized_similarity)
        return out


class PhoneComparator(Comparator):
    """Exact number; same last ``suffix_digits`` digits (a number written with and without its country or
    area code); one edit (a typo); different."""

    type = "phone"
    kinds = frozenset({"phone"})
    allowed = frozenset({"suffix_digits"})

    def __init__(self, params, path):
        super().__init__(params, path)
        self.suffix_digits = int(_number(params.get("suffix_digits", 7), f"{path}.suffix_digits", 4, 15,
                                         integer=True))
        self.levels = ("exact", f"same_last_{self.suffix_digits}_digits", "one_edit", "different")

    def spec(self):
        return {"type": self.type, "suffix_digits": self.suffix_digits}

    def features(self):
        return (f"suffix{self.suffix_digits}", "profile")

    def compare(self, f, ca, cb):
        levels, todo = _split(ca, cb, 4)
        if todo.size:
            suffix = f.feature(f"suffix{self.suffix_digits}")
            sa, sb = suffix[ca[todo]], suffix[cb[todo]]
            hit = (sa == sb) & (sa >= 0)
            levels[todo[hit]] = 1
            todo = todo[~hit]
        if todo.size:
            todo = todo[may_reach_distance(f, ca[todo], cb[todo], 1)]
        if todo.size:
            dist = pair_scores(f.keys, ca[todo], cb[todo], Levenshtein.distance, score_cutoff=1)
            levels[todo[dist <= 1]] = 2
        return levels


COMPARATORS: dict[str, type[Comparator]] = {
    cls.type: cls
    for cls in (Exact, JaroWinklerComparator, LevenshteinComparator, NameComparator, PhoneticComparator,
                DateComparator, NumericComparator, EmailComparator, PhoneComparator)
}


def build_comparator(spec, kind: str, path: str) -> Comparator:
    """A comparator from its plain-data spec ({"type": "jaro_winkler", "thresholds": [0.92, 0.8]}) for a field
    of ``kind``; RuleError naming ``path`` when the spec is wrong."""
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise RuleError(path, "must be an object with a 'type' (or a comparator name)")
    kind_of = spec.get("type")
    cls = COMPARATORS.get(kind_of) if isinstance(kind_of, str) else None
    if cls is None:
        raise RuleError(f"{path}.type", f"unknown comparator {kind_of!r}; one of {sorted(COMPARATORS)}")
    if kind not in cls.kinds:
        raise RuleError(f"{path}.type", f"comparator {kind_of!r} does not compare fields of kind {kind!r}; "
                                        f"it takes {sorted(cls.kinds)}")
    return cls(spec, path)
