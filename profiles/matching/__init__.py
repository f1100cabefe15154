"""Probabilistic record matching for profile unification: pure Python + numpy + rapidfuzz, no database.

    from profiles.matching import default_rules, find_matches, link, score_pairs

    rules = default_rules()                    # or load_rules({...}) from plain data / JSON
    matches = find_matches(records, rules)     # records: list of dicts (or a dict of columns)
    for m in matches:                          # best first
        m.a, m.b, m.score, m.decision, m.evidence

Modules: ``normalize`` (text, names, nicknames, addresses, phones, dates), ``comparators`` (levels per field),
``rules`` (plain-data rules and their validation, the default rule set), ``blocking`` (candidate pairs),
``scoring`` (weights, probabilities, matches with evidence), ``estimate`` (EM for m/u without labels).
"""

from profiles.matching.blocking import BlockingStats, blocking_key_values, candidate_pairs
from profiles.matching.encoding import EncodedRecords, encode, encode_link
from profiles.matching.errors import RuleError
from profiles.matching.estimate import Estimate, estimate_parameters
from profiles.matching.rules import DEFAULT_PEOPLE_RULES, MatchRules, default_rules, load_rules
from profiles.matching.scoring import (
    Match,
    MatchRun,
    evidence,
    find_matches,
    link,
    match_weights,
    run_dedup,
    run_link,
    score_encoded,
    score_pairs,
)

__all__ = [
    "DEFAULT_PEOPLE_RULES",
    "BlockingStats",
    "EncodedRecords",
    "Estimate",
    "Match",
    "MatchRules",
    "MatchRun",
    "RuleError",
    "blocking_key_values",
    "candidate_pairs",
    "default_rules",
    "encode",
    "encode_link",
    "estimate_parameters",
    "evidence",
    "find_matches",
    "link",
    "load_rules",
    "match_weights",
    "run_dedup",
    "run_link",
    "score_encoded",
    "score_pairs",
]
