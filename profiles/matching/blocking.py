"""Blocking: which pairs of records are worth comparing at all.

Each blocking key (e.g. phonetic surname + birth year) puts records with equal key values in one block; only
pairs inside a block become candidates. Several keys are used together and their pairs united (a pair found by
two keys is compared once), so a typo that breaks one key is caught by another. Keys are built from the encoded
integer features, and blocks are cut by sorting — no Python loop over records or pairs.

A block larger than ``max_block_size`` (a default postcode, a placeholder birth date) would add a quadratic
number of pairs; it is skipped and logged (key name and size, never the value), and the other keys still cover
its records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from profiles.matching.encoding import EncodedRecords, encode, feature_text
from profiles.matching.rules import BlockingKey, MatchRules, load_rules

logger = logging.getLogger("profiles.matching")


@dataclass
class BlockingStats:
    keys: dict[str, dict] = field(default_factory=dict)  # per key: pairs, blocks, skipped_blocks, largest_skipped
    candidate_pairs: int = 0  # after removing pairs found by more than one key

    def as_dict(self) -> dict:
        return {"keys": self.keys, "candidate_pairs": self.candidate_pairs}


def _densify(values: np.ndarray) -> np.ndarray:
    """Renumber non-negative values to 0..k-1 (keeps -1)."""
    out = np.full(values.shape, -1, dtype=np.int64)
    valid = values >= 0
    if valid.any():
        out[valid] = np.unique(values[valid], return_inverse=True)[1]
    return out


def record_keys(enc: EncodedRecords, key: BlockingKey) -> np.ndarray:
    """int64 block id per record for one blocking key; -1 when any part of the key is missing."""
    combined = None
    for field_name, feature in key.parts:
        f = enc[field_name]
        codes = f.codes.astype(np.int64)
        if feature:
            table = f.feature(feature)
            if table.size == 0:  # the field is missing everywhere
                part = np.full(codes.shape, -1, dtype=np.int64)
            else:
                part = np.where(codes >= 0, table[np.maximum(codes, 0)], -1).astype(np.int64)
        else:
            part = codes
        if combined is None:
            combined = part
            continue
        radix = int(part.max()) + 1 if part.size else 1
        if combined.size and int(combined.max()) >= (2**62) // max(radix, 1):
            combined = _densify(combined)  # keep the combined id within int64
        combined = np.where((combined >= 0) & (part >= 0), combined * radix + part, -1)
    return combined


def _groups(keys: np.ndarray):
    """Records with a key, sorted by key; and each group's start and size in that order."""
    valid = np.flatnonzero(keys >= 0)
    order = valid[np.argsort(keys[valid])]
    sorted_keys = keys[order]
    if not sorted_keys.size:
        empty = np.empty(0, dtype=np.int64)
        return order, sorted_keys, empty, empty
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, sorted_keys.size])
    return order, sorted_keys, starts, sizes


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: start[i] .. start[i]+counts[i]-1 for every i."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def _log_skipped(name: str, sizes: np.ndarray, limit: int, stats: dict) -> None:
    stats["skipped_blocks"] = int(sizes.size)
    stats["largest_skipped"] = int(sizes.max()) if sizes.size else 0
    if sizes.size:
        logger.warning("Blocking key %s: skipped %d block(s) larger than %d records (largest %d records); "
                       "other keys still cover them.", name, sizes.size, limit, int(sizes.max()))


def dedup_block_pairs(keys: np.ndarray, max_block_size: int, name: str = "key") -> tuple[np.ndarray, dict]:
    """Pair codes (i * n + j, i < j) of the records sharing a block, for one key."""
    n = keys.size
    order, _, starts, sizes = _groups(keys)
    stats: dict = {}
    _log_skipped(name, sizes[sizes > max_block_size], max_block_size, stats)
    keep = (sizes >= 2) & (sizes <= max_block_size)
    starts, sizes = starts[keep], sizes[keep]
    stats["blocks"] = int(keep.sum())
    # Every position p in a kept block pairs with the positions after it in the same block.
    positions = _ranges(starts, sizes)
    block_end = np.repeat(starts + sizes, sizes)
    later = block_end - positions - 1
    left = np.repeat(positions, later)
    right = _ranges(positions + 1, later)
    a, b = order[left], order[right]
    codes = np.minimum(a, b) * n + np.maximum(a, b)
    stats["pairs"] = int(codes.size)
    return codes, stats


def link_block_pairs(keys: np.ndarray, n_a: int, max_block_size: int, name: str = "key") -> tuple[np.ndarray, dict]:
    """Pair codes (i * n + j, i in side A, j in side B) of records sharing a block, for one key."""
    n = keys.size
    keys_a, keys_b = keys[:n_a], keys[n_a:]
    order_a, sorted_a, starts_a, sizes_a = _groups(keys_a)
    order_b, sorted_b, starts_b, sizes_b = _groups(keys_b)
    stats: dict = {}
    if not starts_a.size or not starts_b.size:
        _log_skipped(name, np.empty(0, dtype=np.int64), max_block_size, stats)
        stats.update(blocks=0, pairs=0)
        return np.empty(0, dtype=np.int64), stats
    group_keys_a, group_keys_b = sorted_a[starts_a], sorted_b[starts_b]
    # Match each A group to the B group with the same key.
    where = np.minimum(np.searchsorted(group_keys_b, group_keys_a), group_keys_b.size - 1)
    present = group_keys_b[where] == group_keys_a
    size_b = np.where(present, sizes_b[where], 0)
    start_b = np.where(present, starts_b[where], 0)
    too_big = present & ((sizes_a > max_block_size) | (size_b > max_block_size))
    _log_skipped(name, np.maximum(sizes_a, size_b)[too_big], max_block_size, stats)
    keep = present & ~too_big
    stats["blocks"] = int(keep.sum())
    sizes_a, starts_a, size_b, start_b = sizes_a[keep], starts_a[keep], size_b[keep], start_b[keep]
    positions_a = _ranges(starts_a, sizes_a)
    counts = np.repeat(size_b, sizes_a)
    left = np.repeat(positions_a, counts)
    right = _ranges(np.repeat(start_b, sizes_a), counts)
    a = order_a[left]
    b = order_b[right] + n_a
    codes = a * n + b
    stats["pairs"] = int(codes.size)
    return codes, stats


def candidate_pairs(enc: EncodedRecords, rules: MatchRules) -> tuple[np.ndarray, np.ndarray, BlockingStats]:
    """All candidate pairs (ia, ib) over every blocking key, each pair once, sorted. For a linking encoding
    (``enc.n_a`` set) pairs run from side A to side B only; otherwise ia < ib."""
    stats = BlockingStats()
    all_codes = []
    for key in rules.blocking:
        keys = record_keys(enc, key)
        if enc.n_a is None:
            codes, key_stats = dedup_block_pairs(keys, rules.max_block_size, key.name)
        else:
            codes, key_stats = link_block_pairs(keys, enc.n_a, rules.max_block_size, key.name)
        stats.keys[key.name] = key_stats
        all_codes.append(codes)
    codes = np.sort(np.concatenate(all_codes)) if all_codes else np.empty(0, dtype=np.int64)
    if codes.size:
        codes = codes[np.r_[True, codes[1:] != codes[:-1]]]  # each pair once, however many keys found it
    stats.candidate_pairs = int(codes.size)
    n = max(enc.n, 1)
    return codes // n, codes % n, stats


SEPARATOR = "\x1f"


def blocking_key_values(records, rules) -> list[dict[str, str | None]]:
    """Per record, the value of every blocking key as text (None when a part is missing), for a store that
    finds the candidates of a new record by looking up records with an equal value of any key — the incremental
    path, where the other records are not in memory. Equal texts mean the same block as ``candidate_pairs``."""
    rules = load_rules(rules)
    enc = encode(records, rules)
    out: list[dict[str, str | None]] = [{} for _ in range(enc.n)]
    for key in rules.blocking:
        columns = []
        for field_name, feature in key.parts:
            f = enc[field_name]
            texts = np.empty(len(f.keys) + 1, dtype=object)  # the extra last slot: a missing value (code -1)
            texts[:-1] = [feature_text(feature, k, v) for k, v in zip(f.keys, f.values, strict=True)]
            texts[-1] = ""
            columns.append(texts[f.codes])
        for i in range(enc.n):
            parts = [column[i] for column in columns]
            out[i][key.name] = SEPARATOR.join(parts) if all(parts) else None
    return out
