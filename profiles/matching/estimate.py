"""Unsupervised estimate of the m and u probabilities and the prior (expectation maximisation), like Splink.

No labels: the candidate pairs are treated as a mixture of two classes (same person, different people) whose
fields agree independently within each class (the Fellegi–Sunter assumption); EM finds the mixture that best
explains how often each combination of levels occurs. Identical level patterns are counted once, so an
iteration costs the number of distinct patterns, not of pairs. The thresholds of the rules are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from profiles.matching.blocking import candidate_pairs
from profiles.matching.encoding import encode, encode_link
from profiles.matching.rules import PROBABILITY_FLOOR, MatchRules, load_rules
from profiles.matching.scoring import CHUNK, comparison_levels


@dataclass
class Estimate:
    prior: float
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    iterations: int
    converged: bool
    pairs: int
    patterns: int


def _initial(rules: MatchRules) -> tuple[list[np.ndarray], list[np.ndarray]]:
    m, u = [], []
    for f in rules.fields:
        k = len(f.levels)
        if f.m is not None:
            m.append(np.asarray(f.m, dtype=np.float64))
            u.append(np.asarray(f.u, dtype=np.float64))
        else:  # only weights were given: start from "agreement is likely for matches, rare for non-matches"
            mi = np.full(k, 0.1 / max(k - 1, 1))
            mi[0] = 0.9
            ui = np.full(k, 0.1 / max(k - 1, 1))
            ui[-1] = 0.9
            m.append(mi / mi.sum())
            u.append(ui / ui.sum())
    return m, u


def level_patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a (pairs, fields) level matrix and how often each occurs."""
    if levels.size == 0:
        return levels.reshape(0, levels.shape[1]), np.empty(0, dtype=np.int64)
    shifted = levels.astype(np.int64) + 1  # missing -> 0
    base = int(shifted.max()) + 1
    if base ** levels.shape[1] < 2**62:
        powers = base ** np.arange(levels.shape[1], dtype=np.int64)
        codes = shifted @ powers
        unique, counts = np.unique(codes, return_counts=True)
        patterns = (unique[:, None] // powers[None, :]) % base - 1
        return patterns.astype(np.int8), counts
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    return patterns, counts


def expectation_maximisation(patterns: np.ndarray, counts: np.ndarray, rules: MatchRules, *,
                             max_iterations: int = 500, tolerance: float = 1e-7) -> Estimate:
    m, u = _initial(rules)
    prior = rules.prior
    counts = counts.astype(np.float64)
    n_fields = len(rules.fields)
    present = [patterns[:, j] >= 0 for j in range(n_fields)]
    index = [np.where(present[j], patterns[:, j], 0) for j in range(n_fields)]
    converged, iteration = False, 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 (the count is reported)
        log_m = np.zeros(patterns.shape[0])
        log_u = np.zeros(patterns.shape[0])
        for j in range(n_fields):
            log_m += np.where(present[j], np.log(m[j])[index[j]], 0.0)
            log_u += np.where(present[j], np.log(u[j])[index[j]], 0.0)
        # posterior P(match | pattern), computed on the log-odds for stability
        log_odds = np.log(prior) - np.log1p(-prior) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        match_mass = counts * posterior
        other_mass = counts - match_mass
        new_prior = float(np.clip(match_mass.sum() / counts.sum(), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR))
        change = abs(new_prior - prior)
        for j in range(n_fields):
            k = len(m[j])
            for probs, mass in ((m, match_mass), (u, other_mass)):
                totals = np.bincount(index[j][present[j]], weights=mass[present[j]], minlength=k)
                if totals.sum() <= 0:
                    continue
                new = np.maximum(totals / totals.sum(), PROBABILITY_FLOOR)
                new /= new.sum()
                change = max(change, float(np.abs(new - probs[j]).max()))
                probs[j] = new
        prior = new_prior
        if change < tolerance:
            converged = True
            break
    return Estimate(prior=prior, m={f.name: m[j].tolist() for j, f in enumerate(rules.fields)},
                    u={f.name: u[j].tolist() for j, f in enumerate(rules.fields)}, iterations=iteration,
                    converged=converged, pairs=int(counts.sum()), patterns=int(patterns.shape[0]))


def estimate_from_encoded(enc, ia, ib, rules: MatchRules, **options) -> Estimate:
    rules = load_rules(rules)
    # Count patterns chunk by chunk, then merge, so the level matrix never has to exist in one piece.
    found: dict[bytes, int] = {}
    width = len(rules.fields)
    for start in range(0, ia.size, CHUNK):
        patterns, counts = level_patterns(comparison_levels(enc, ia[start:start + CHUNK], ib[start:start + CHUNK],
                                                            rules))
        for row, count in zip(patterns, counts, strict=True):
            key = row.tobytes()
            found[key] = found.get(key, 0) + int(count)
    patterns = np.frombuffer(b"".join(found), dtype=np.int8).reshape(-1, width) if found else \
        np.empty((0, width), dtype=np.int8)
    counts = np.fromiter(found.values(), dtype=np.int64, count=len(found))
    return expectation_maximisation(patterns, counts, rules, **options)


def estimate_parameters(records, rules, records_b=None, **options) -> tuple[MatchRules, Estimate]:
    """Rules with m, u and prior estimated by EM over the candidate pairs of ``records`` (deduplication) or of
    ``records`` against ``records_b`` (linking). Returns the new rules and the estimate."""
    rules = load_rules(rules)
    enc = encode(records, rules) if records_b is None else encode_link(records, records_b, rules)
    ia, ib, _ = candidate_pairs(enc, rules)
    estimate = estimate_from_encoded(enc, ia, ib, rules, **options)
    return rules.with_parameters(prior=estimate.prior, m=estimate.m, u=estimate.u), estimate
