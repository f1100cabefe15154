"""Scoring: Fellegi–Sunter match weights and probabilities for many candidate pairs at once.

The records are encoded once (``encoding``); then, per field, the comparator turns the two code arrays of all pairs
into levels, and a table lookup turns levels into weights that are summed with numpy. Pairs are processed in
chunks so memory stays bounded however many candidates there are.

Public entry points:

- ``score_pairs(records_a, records_b, pairs, rules)`` -> match probability per pair (numpy array);
- ``find_matches(records, rules)`` -> ``Match`` list for deduplicating one set of records;
- ``link(records_a, records_b, rules)`` -> ``Match`` list between two sets;

each ``Match`` carries its evidence: the level, weight and similarity of every field — why two records were
judged the same person, for the merge journal and the review queue.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from profiles.matching.blocking import BlockingStats, candidate_pairs
from profiles.matching.comparators import set_string_workers
from profiles.matching.encoding import EncodedRecords, encode, encode_link, precompute
from profiles.matching.rules import MatchRules, load_rules

CHUNK = 1 << 18
STRING_WORKERS_IN_POOL = 1


@dataclass(frozen=True)
class Match:
    a: int  # index of the record in the first (or only) sequence
    b: int  # index in the second sequence when linking, in the same sequence when deduplicating
    score: float  # match probability
    weight: float  # match weight: log2 of the odds, prior included
    decision: str  # "merge" (score >= auto_merge) or "review" (score >= review)
    evidence: dict = field(default_factory=dict)  # field -> {"level", "weight", "similarity" (or "days_apart")}

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "score": self.score, "weight": self.weight, "decision": self.decision,
                "evidence": self.evidence}


def probability(weight: np.ndarray | float) -> np.ndarray | float:
    """Match probability from a match weight (log2 odds)."""
    return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=np.float64)))


def _cheap_agree(f, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Equal codes or equal Kölner Phonetik: a quick test whether a crosswise comparison can be worth it."""
    phonetic = f.feature("cologne")
    hit = (ca == cb) & (ca >= 0)
    if phonetic.size:
        pa = np.where(ca >= 0, phonetic[np.maximum(ca, 0)], -1)
        pb = np.where(cb >= 0, phonetic[np.maximum(cb, 0)], -1)
        hit |= (pa == pb) & (pa >= 0)
    return hit


def field_levels(enc: EncodedRecords, a: np.ndarray, b: np.ndarray, rules: MatchRules,
                 tables: list[np.ndarray] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Comparator level per field for pairs (a, b), and which pairs had their names compared crosswise.

    For a swap pair (first name, last name) a pair whose names do not agree straight is also compared crosswise
    (first of a with last of b and the other way round) when at least one crosswise side agrees exactly or
    phonetically; the crosswise levels are kept when they carry more weight."""
    tables = tables or [f.weight_table() for f in rules.fields]
    position = {f.name: j for j, f in enumerate(rules.fields)}
    # One row of codes per record: two row gathers per pair instead of two per field and pair.
    matrix = enc.code_matrix([f.name for f in rules.fields])
    columns_a = np.take(matrix, a, axis=0).T.copy()  # (fields, pairs): each field's codes contiguous
    columns_b = np.take(matrix, b, axis=0).T.copy()
    levels = []
    for j, f in enumerate(rules.fields):
        levels.append(f.comparator.compare(enc[f.name], columns_a[j], columns_b[j]))
    swapped = np.zeros(a.size, dtype=bool)
    for x, y in rules.swaps:
        jx, jy = position[x], position[y]
        ex, ey = enc[x], enc[y]
        todo = np.flatnonzero((levels[jx] != 0) & (levels[jy] != 0))
        if not todo.size:
            continue
        xa, yb, ya, xb = columns_a[jx][todo], columns_b[jy][todo], columns_a[jy][todo], columns_b[jx][todo]
        worth = _cheap_agree(ex, xa, yb) | _cheap_agree(ex, ya, xb)
        todo, xa, yb, ya, xb = todo[worth], xa[worth], yb[worth], ya[worth], xb[worth]
        if not todo.size:
            continue
        cross_x = rules.fields[jx].comparator.compare(ex, xa, yb)
        cross_y = rules.fields[jy].comparator.compare(ey, ya, xb)
        straight = tables[jx][levels[jx][todo]] + tables[jy][levels[jy][todo]]
        better = tables[jx][cross_x] + tables[jy][cross_y] > straight
        chosen = todo[better]
        levels[jx][chosen] = cross_x[better]
        levels[jy][chosen] = cross_y[better]
        swapped[chosen] = True
    return levels, swapped


def comparison_levels(enc: EncodedRecords, ia: np.ndarray, ib: np.ndarray, rules: MatchRules) -> np.ndarray:
    """(pairs, fields) int8 matrix of comparator levels; -1 where a value is missing."""
    levels, _ = field_levels(enc, np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64), rules)
    return np.stack(levels, axis=1) if levels else np.empty((len(ia), 0), dtype=np.int8)


def match_weights(enc: EncodedRecords, ia: np.ndarray, ib: np.ndarray, rules: MatchRules,
                  chunk_size: int = CHUNK, threads: int | None = None) -> np.ndarray:
    """Match weight (log2 odds, prior included) per pair.

    Pairs are scored in chunks, ``threads`` chunks at a time (default: one per core). numpy and rapidfuzz
    release the GIL in their loops, so the chunks run in parallel."""
    ia, ib = np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64)
    tables = [f.weight_table() for f in rules.fields]
    out = np.empty(ia.size, dtype=np.float64)
    precompute(enc.fields, rules)  # no lazy feature computation inside the threads
    enc.code_matrix([f.name for f in rules.fields])

    def run(start: int) -> None:
        if threads > 1:
            set_string_workers(STRING_WORKERS_IN_POOL)
        a, b = ia[start:start + chunk_size], ib[start:start + chunk_size]
        levels, _ = field_levels(enc, a, b, rules, tables)
        total = np.full(a.size, rules.prior_weight, dtype=np.float64)
        for table, level in zip(tables, levels, strict=True):
            total += table[level]  # level -1 (missing) picks the table's last slot
        out[start:start + chunk_size] = total

    starts = range(0, ia.size, chunk_size)
    threads = threads or os.cpu_count() or 1
    if threads == 1 or len(starts) == 1:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for done in pool.map(run, starts):
                del done
    return out


def score_encoded(enc: EncodedRecords, ia: np.ndarray, ib: np.ndarray, rules: MatchRules,
                  chunk_size: int = CHUNK) -> np.ndarray:
    return probability(match_weights(enc, ia, ib, rules, chunk_size))


def _pairs(pairs) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(pairs, tuple) and len(pairs) == 2 and not np.isscalar(pairs[0]):
        ia, ib = (np.asarray(p, dtype=np.int64) for p in pairs)
    else:
        arr = np.asarray(pairs, dtype=np.int64)
        if arr.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError("pairs must be a (n, 2) array of record indices or a tuple (indices_a, indices_b)")
        ia, ib = arr[:, 0], arr[:, 1]
    if ia.shape != ib.shape:
        raise ValueError("pairs: both index arrays must have the same length")
    return ia, ib


def score_pairs(records_a: Sequence, records_b: Sequence | None, pairs, rules) -> np.ndarray:
    """Match probability of each pair. ``pairs`` index into ``records_a`` and ``records_b`` (or both into
    ``records_a`` when ``records_b`` is None): a (n, 2) array or a tuple of two index arrays."""
    rules = load_rules(rules)
    ia, ib = _pairs(pairs)
    if records_b is None:
        enc = encode(records_a, rules)
        n_b, offset = enc.n, 0
    else:
        enc = encode_link(records_a, records_b, rules)
        n_b, offset = enc.n - enc.n_a, enc.n_a
    n_a = enc.n if records_b is None else enc.n_a
    if ia.size and (ia.min() < 0 or ia.max() >= n_a or ib.min() < 0 or ib.max() >= n_b):
        raise ValueError("pairs: a record index is out of range")
    return score_encoded(enc, ia, ib + offset, rules)


def evidence(enc: EncodedRecords, ia: np.ndarray, ib: np.ndarray, rules: MatchRules) -> list[dict]:
    """Per pair: for every field, the level reached, the weight it added and the similarity behind it."""
    ia, ib = np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64)
    levels, swapped = field_levels(enc, ia, ib, rules)
    partner = {x: y for pair in rules.swaps for x, y in (pair, pair[::-1])}
    per_field = []
    for f, level in zip(rules.fields, levels, strict=True):
        encoded = enc[f.name]
        other = encoded.codes[ib]
        if f.name in partner:  # a swapped pair was compared with the other name field of record b
            other = np.where(swapped, enc[partner[f.name]].codes[ib], other)
        sims = f.comparator.similarity(encoded, encoded.codes[ia], other)
        per_field.append((f, level, f.weight_table()[level], sims))
    swap_fields = set(partner)
    out = []
    for i in range(ia.size):
        item = {}
        for f, levels, weights, sims in per_field:
            level = int(levels[i])
            sim = float(sims[i])
            item[f.name] = {
                "level": f.levels[level] if level >= 0 else "missing",
                "weight": round(float(weights[i]), 3),
                f.comparator.measure: None if sim != sim else round(sim, 4),
            }
            if swapped[i] and f.name in swap_fields:
                item[f.name]["swapped"] = True  # compared with the other name field of the other record
        out.append(item)
    return out


@dataclass
class MatchRun:
    """Everything one run found: the matches, and what it took (for progress and benchmarks)."""

    matches: list[Match]
    candidate_pairs: int
    blocking: BlockingStats


def _select(enc, ia, ib, rules, min_score, offset_b) -> list[Match]:
    weights = match_weights(enc, ia, ib, rules)
    scores = probability(weights)
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-weights[keep], kind="stable")]
    ia, ib, weights, scores = ia[keep], ib[keep], weights[keep], scores[keep]
    notes = evidence(enc, ia, ib, rules)
    return [
        Match(a=int(a), b=int(b) - offset_b, score=float(s), weight=round(float(w), 3),
              decision="merge" if s >= rules.auto_merge else "review", evidence=note)
        for a, b, s, w, note in zip(ia, ib, scores, weights, notes, strict=True)
    ]


def run_dedup(records, rules, *, min_score: float | None = None) -> MatchRun:
    rules = load_rules(rules)
    enc = encode(records, rules)
    ia, ib, stats = candidate_pairs(enc, rules)
    matches = _select(enc, ia, ib, rules, rules.review if min_score is None else min_score, 0)
    return MatchRun(matches=matches, candidate_pairs=int(ia.size), blocking=stats)


def run_link(records_a, records_b, rules, *, min_score: float | None = None, one_to_one: bool = False) -> MatchRun:
    rules = load_rules(rules)
    enc = encode_link(records_a, records_b, rules)
    ia, ib, stats = candidate_pairs(enc, rules)
    matches = _select(enc, ia, ib, rules, rules.review if min_score is None else min_score, enc.n_a)
    if one_to_one:
        matches = one_to_one_matches(matches)
    return MatchRun(matches=matches, candidate_pairs=int(ia.size), blocking=stats)


def one_to_one_matches(matches: list[Match]) -> list[Match]:
    """Keep, best first, only matches whose two records are not taken yet: for linking two sources that are
    each free of duplicates, where a record has at most one counterpart."""
    taken_a, taken_b, kept = set(), set(), []
    for match in sorted(matches, key=lambda m: -m.weight):
        if match.a in taken_a or match.b in taken_b:
            continue
        taken_a.add(match.a)
        taken_b.add(match.b)
        kept.append(match)
    return kept


def find_matches(records, rules, *, min_score: float | None = None) -> list[Match]:
    """Pairs of records in one set that are likely the same person (score >= the review threshold, or
    ``min_score``), best first, each with its decision and evidence. ``a < b`` index ``records``."""
    return run_dedup(records, rules, min_score=min_score).matches


def link(records_a, records_b, rules, *, min_score: float | None = None, one_to_one: bool = False) -> list[Match]:
    """Pairs (a in records_a, b in records_b) that are likely the same person, best first."""
    return run_link(records_a, records_b, rules, min_score=min_score, one_to_one=one_to_one).matches
