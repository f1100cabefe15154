"""The probabilistic matching engine (profiles.matching): normalization, comparators, rules, blocking, scoring.

Pure Python and numpy: no database is touched here.
"""

import copy
import json
import logging
import random

import numpy as np
import pytest

from profiles.matching import (
    DEFAULT_PEOPLE_RULES,
    RuleError,
    candidate_pairs,
    default_rules,
    encode,
    encode_link,
    estimate_parameters,
    find_matches,
    link,
    load_rules,
    score_pairs,
)
from profiles.matching import normalize as nz
from profiles.matching.scoring import comparison_levels


# ------------------------------------------------------------------------------------------------ normalization
@pytest.mark.parametrize("spelling", ["Müller", "Mueller", "Muller", "MÜLLER", " müller "])
def test_umlaut_spellings_share_one_name_key(spelling):
    assert nz.name_key(spelling) == "muller"


def test_name_forms_keep_transliterated_and_stripped():
    forms = nz.name_forms("Müller-Lüdenscheidt")
    assert forms.transliterated == "mueller luedenscheidt"
    assert forms.stripped == "muller ludenscheidt"
    assert forms.key == "muller ludenscheidt"
    assert nz.name_key("Weiß") == nz.name_key("Weiss") == "weiss"
    assert nz.name_key("Schäfer") == nz.name_key("Schaefer") == nz.name_key("Schafer")


def test_names_lose_titles_accents_and_punctuation():
    assert nz.name_key("Dr. Hans  Müller") == "hans muller"
    assert nz.name_key("José") == "jose"
    assert nz.name_key("Łukasz") == "lukasz"
    assert nz.name_key("O'Brien") == "o brien"
    assert nz.name_key("") == ""
    assert nz.name_key("Dr.") == "dr"  # a title alone is kept rather than emptied


@pytest.mark.parametrize("a, b", [
    ("Hans", "Johannes"), ("Sepp", "Josef"), ("Bill", "William"), ("Bob", "Robert"), ("Kathi", "Katharina"),
    ("Käthe", "Katharina"), ("Willi", "Bill"), ("Fritz", "Friedrich"), ("Liz", "Elisabeth"), ("Jürgen", "Georg"),
    ("Hans Peter", "Johannes"),
])
def test_nicknames_agree(a, b):
    assert nz.same_person_name(a, b)
    assert nz.same_person_name(b, a)


@pytest.mark.parametrize("a, b", [("Hans", "Robert"), ("Sepp", "William"), ("Anna", "Katharina"), ("", "Hans")])
def test_unrelated_first_names_do_not_agree(a, b):
    assert not nz.same_person_name(a, b)


def test_a_short_name_can_belong_to_several_groups():
    assert nz.same_person_name("Chris", "Christian")
    assert nz.same_person_name("Chris", "Christina")
    assert not nz.same_person_name("Christian", "Christina")


@pytest.mark.parametrize("a, b", [
    ("Hauptstr. 5", "Hauptstraße 5"), ("Hauptstr 5", "Hauptstrasse 5"), ("Marktpl. 1", "Marktplatz 1"),
    ("Berliner Pl. 3", "Berliner Platz 3"), ("12 Main St", "12 Main Street"), ("4 Kent Rd", "4 Kent Road"),
    ("9 Park Ave.", "9 Park Avenue"), ("Wallaby Pl", "Wallaby Place"), ("Goethestr. Nr. 7", "Goethestraße 7"),
])
def test_address_abbreviations_expand_to_one_form(a, b):
    assert nz.normalize_address(a) == nz.normalize_address(b)


def test_address_words_keep_their_position_meaning():
    assert nz.normalize_address("St Kilda Rd") == "saint kilda road"
    assert nz.normalize_address("La Trobe St") == "la trobe street"
    assert nz.normalize_address("Hauptstr. 5") == "hauptstrasse 5"
    assert nz.address_key("pridhamstreet") == nz.address_key("Pridham Street")


def test_phone_numbers_go_to_e164_with_a_region():
    assert nz.normalize_phone("089 1234567", "DE") == "+49891234567"
    assert nz.normalize_phone("+49 (89) 123 45 67") == "+49891234567"
    assert nz.normalize_phone("0049 89 1234567") == "+49891234567"
    assert nz.normalize_phone("12345") is None  # too short to be a number
    assert nz.normalize_phone(None) is None
    # Without a region a national number cannot be placed: its digits are kept, not lost.
    assert nz.normalize_phone("089 1234567") == "0891234567"


def test_email_normalization():
    assert nz.normalize_email(" John.Smith+news@GoogleMail.com").address == "johnsmith@gmail.com"
    email = nz.normalize_email("Anna.Schmidt+shop@Web.de")
    assert (email.address, email.local, email.domain) == ("anna.schmidt@web.de", "anna.schmidt", "web.de")
    assert nz.normalize_email("not an email") is None
    assert nz.normalize_email("a@b") is None
    assert nz.normalize_email("two@at@signs.de") is None


def test_dates_from_the_common_written_forms():
    expected = nz.DateParts(1980, 3, 12, True)
    assert nz.parse_date("12.03.1980") == expected
    assert nz.parse_date("1980-03-12") == expected
    assert nz.parse_date("19800312") == expected
    assert nz.parse_date("12/03/1980") == expected
    assert nz.parse_date("03/12/1980", order="mdy") == expected
    assert nz.parse_date("1980-03-12T10:00:00Z") == expected
    assert nz.parse_date("12.3.80", pivot_year=2025) == expected
    assert nz.parse_date("12.3.05", pivot_year=2025).year == 2005


def test_impossible_dates_keep_their_parts_and_unreadable_ones_are_missing():
    typo = nz.parse_date("1975-02-30")
    assert (typo.year, typo.month, typo.day, typo.valid) == (1975, 2, 30, False)
    assert typo.ordinal == -1
    assert nz.parse_date("tomorrow") is None
    assert nz.parse_date("1975-13-14") is None  # neither order gives a month
    assert nz.parse_date("") is None


def test_phonetic_codes():
    assert nz.cologne("meyer") == nz.cologne("maier") == nz.cologne("mayr")
    assert nz.cologne("schmidt") == nz.cologne("schmitt")
    assert nz.cologne("muller") == nz.cologne("mueller")
    assert nz.nysiis("knight") == nz.nysiis("night")
    assert nz.nysiis("philips") == nz.nysiis("phillips")
    assert nz.cologne("") == ""


# --------------------------------------------------------------------------------------------------- comparators
def _levels(rules, field, pairs, records):
    enc = encode(records, rules)
    ia = np.array([a for a, _ in pairs])
    ib = np.array([b for _, b in pairs])
    f = rules.field(field)
    codes = enc[field].codes
    return [f.comparator.levels[lv] if lv >= 0 else "missing"
            for lv in f.comparator.compare(enc[field], codes[ia], codes[ib])]


def test_name_comparator_levels():
    rules = default_rules()
    names = ["Katharina", "Kathi", "Catarina", "Katherine", "Kathetine", "Paul", None, "Katharina"]
    records = [{"first_name": n} for n in names]
    pairs = [(0, 7), (0, 1), (0, 2), (3, 4), (0, 5), (0, 6)]
    assert _levels(rules, "first_name", pairs, records) == [
        "exact", "nickname", "phonetic", "jaro_winkler>=0.92", "different", "missing"]


def test_last_name_comparator_has_no_nickname_level():
    rules = default_rules()
    records = [{"last_name": n} for n in ["Meyer", "Maier", "Schmidt", "Schmitt", "Müller", "Mueller", "Mulder"]]
    assert _levels(rules, "last_name", [(0, 1), (2, 3), (4, 5), (4, 6)], records) == [
        "phonetic", "phonetic", "exact", "jaro_winkler>=0.92"]


def test_date_comparator_levels():
    rules = default_rules()
    dates = ["1980-03-12", "12.03.1980", "1980-12-03", "1980-03-13", "1980-03-09", "1980-07-01", "1975-01-01",
             "1980-03-22", None]
    records = [{"birth_date": d} for d in dates]
    pairs = [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 8), (0, 7)]
    assert _levels(rules, "birth_date", pairs, records) == [
        "exact", "day_month_swapped", "one_typo", "within_7_days", "same_year", "different", "missing", "one_typo"]


def test_levenshtein_jaro_winkler_numeric_email_and_phone_comparators():
    rules = load_rules({
        "fields": [
            {"name": "postcode", "kind": "postcode", "comparator": {"type": "levenshtein", "distances": [1, 2]},
             "weights": [5, 2, 1, -3]},
            {"name": "code", "kind": "identifier",
             "comparator": {"type": "levenshtein", "distances": [1], "transpositions": True}, "weights": [5, 2, -3]},
            {"name": "city", "kind": "city", "comparator": {"type": "jaro_winkler", "thresholds": [0.9]},
             "weights": [3, 1, -2]},
            {"name": "income", "kind": "number", "comparator": {"type": "numeric", "rel_tolerance": 0.1},
             "weights": [2, 1, -1]},
            {"name": "email", "kind": "email", "comparator": {"type": "email"}, "weights": [9, 3, 4, -1]},
            {"name": "phone", "kind": "phone", "comparator": {"type": "phone"}, "weights": [9, 5, 3, -1]},
        ],
        "options": {"default_region": "DE"},
        "blocking": {"keys": [{"name": "postcode", "on": ["postcode"]}]},
    })
    records = [
        {"postcode": "80331", "code": "AB12", "city": "München", "income": "50000", "email": "anna@web.de",
         "phone": "089 1234567"},
        {"postcode": "80332", "code": "BA12", "city": "Muenchen", "income": 52000, "email": "anna@gmx.de",
         "phone": "+49 89 1234567"},
        {"postcode": "81431", "code": "AB13", "city": "Münchn", "income": "70000", "email": "ana@web.de",
         "phone": "01511234567"},
        {"postcode": "10115", "code": "XY99", "city": "Berlin", "income": None, "email": "zoe@x.org",
         "phone": "030 9999999"},
    ]
    pairs = [(0, 1), (0, 2), (0, 3)]
    assert _levels(rules, "postcode", pairs, records) == ["levenshtein<=1", "levenshtein<=2", "different"]
    assert _levels(rules, "code", pairs, records) == ["levenshtein<=1", "levenshtein<=1", "different"]
    assert _levels(rules, "city", pairs, records) == ["exact", "jaro_winkler>=0.9", "different"]
    assert _levels(rules, "income", pairs, records) == ["within_tolerance", "different", "missing"]
    assert _levels(rules, "email", pairs, records) == ["same_local_part", "levenshtein>=0.9", "different"]
    assert _levels(rules, "phone", pairs, records) == ["exact", "same_last_7_digits", "different"]


def test_phonetic_comparator():
    rules = load_rules({
        "fields": [{"name": "last_name", "kind": "name", "comparator": {"type": "phonetic"}, "weights": [4, 2, -3]}],
        "blocking": {"keys": [{"name": "name", "on": ["last_name:cologne"]}]},
    })
    records = [{"last_name": n} for n in ["Meyer", "Maier", "Meyer", "Schulz"]]
    assert _levels(rules, "last_name", [(0, 1), (0, 2), (0, 3)], records) == ["phonetic", "exact", "different"]


# ------------------------------------------------------------------------------------------------------- rules
def _rules_with(change):
    data = copy.deepcopy(DEFAULT_PEOPLE_RULES)
    change(data)
    return data


@pytest.mark.parametrize("change, path", [
    (lambda d: d["fields"][0]["comparator"].update(type="soundex"), "fields[0].comparator.type"),
    (lambda d: d["fields"][2]["comparator"].update(type="jaro_winkler"), "fields[2].comparator.type"),
    (lambda d: d["fields"][1].update(m=[0.5, 0.5]), "fields[1].m"),
    (lambda d: d["fields"][0].update(u=[0.2, 0.2, 0.2, 0.2, 0.1, 0.05]), "fields[0].u"),
    (lambda d: d["fields"][0]["m"].__setitem__(2, 1.5), "fields[0].m[2]"),
    (lambda d: d["fields"][3]["comparator"].update(thresholds=[0.8, 0.9]), "fields[3].comparator.thresholds"),
    (lambda d: d["fields"][3]["comparator"].update(thresholds=[1.3]), "fields[3].comparator.thresholds[0]"),
    (lambda d: d["fields"][0]["comparator"].update(colour="red"), "fields[0].comparator.colour"),
    (lambda d: d["fields"][4].update(kind="shoe_size"), "fields[4].kind"),
    (lambda d: d["fields"][4].update(missing="maybe"), "fields[4].missing"),
    (lambda d: d["fields"][4].update(weights=[1, -1]), "fields[4].weights"),
    (lambda d: d["fields"][1].update(name="first_name"), "fields[1].name"),
    (lambda d: d["thresholds"].update(review=0.995), "thresholds.review"),
    (lambda d: d.update(prior=1.0), "prior"),
    (lambda d: d["blocking"]["keys"][0]["on"].__setitem__(0, "surname:cologne"), "blocking.keys[0].on[0]"),
    (lambda d: d["blocking"]["keys"][0]["on"].__setitem__(1, "birth_date:cologne"), "blocking.keys[0].on[1]"),
    (lambda d: d["blocking"].update(max_block_size=1), "blocking.max_block_size"),
    (lambda d: d["swaps"].append(["street", "city"]), "swaps[1][0]"),
    (lambda d: d["options"].update(default_region="Germany"), "options.default_region"),
    (lambda d: d.update(colour="red"), "colour"),
])
def test_rule_errors_name_the_wrong_path(change, path):
    with pytest.raises(RuleError) as error:
        load_rules(_rules_with(change))
    assert error.value.path == path
    assert str(error.value).startswith(f"{path}: ")


def test_rules_round_trip_through_json():
    rules = default_rules()
    again = load_rules(rules.to_json())
    assert again.to_dict() == rules.to_dict()
    assert [f.name for f in again.fields] == [f["name"] for f in DEFAULT_PEOPLE_RULES["fields"]]
    assert (again.auto_merge, again.review) == (0.99, 0.8)


def test_invalid_json_is_a_rule_error():
    with pytest.raises(RuleError, match="not valid JSON"):
        load_rules("{fields: nope")


def test_weights_can_replace_m_and_u():
    rules = load_rules({"fields": [{"name": "email", "kind": "email", "comparator": "exact", "weights": [10, -4],
                                    "missing": "disagree"}],
                        "blocking": {"keys": [{"name": "email", "on": ["email"]}]}})
    table = rules.field("email").weight_table()
    assert table.tolist() == [10, -4, -4]  # the last slot is a missing value, here counted as disagreement


# ---------------------------------------------------------------------------------------------------- blocking
FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hans", "Ida", "Jonas", "Klara", "Lukas",
         "Mia", "Noah", "Olga", "Paul", "Rosa", "Simon", "Tina", "Uwe"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun", "Hofmann", "Hartmann"]
STREETS = ["Hauptstraße", "Schulstraße", "Gartenweg", "Bahnhofstr.", "Lindenallee", "Kirchplatz", "Bergstraße"]


def _typo(text, rnd):
    i = rnd.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]  # two neighbouring letters swapped


def _people(n, seed=1):
    rnd = random.Random(seed)
    people = []
    for i in range(n):
        people.append({
            "first_name": rnd.choice(FIRST), "last_name": rnd.choice(LAST),
            "birth_date": f"{rnd.randint(1,28):02d}.{rnd.randint(1,12):02d}.{rnd.randint(1940, 2005)}",
            "street": rnd.choice(STREETS), "house_number": str(rnd.randint(1, 120)),
            "postcode": f"{rnd.randint(10000, 99999)}", "city": rnd.choice(["Berlin", "München", "Köln", "Hamburg"]),
            "email": f"person{i}@example.org" if rnd.random() < 0.5 else None,
        })
    return people


def _duplicates(people, seed=2):
    """One duplicate per person with one error: a typo in a name, a swapped day/month, a missing or changed field."""
    rnd = random.Random(seed)
    dups = []
    for person in people:
        dup = dict(person)
        error = rnd.randrange(5)
        if error == 0:
            dup["last_name"] = _typo(dup["last_name"], rnd)
        elif error == 1:
            dup["first_name"] = _typo(dup["first_name"], rnd)
        elif error == 2:
            day, month, year = dup["birth_date"].split(".")
            dup["birth_date"] = f"{month}.{day}.{year}"
        elif error == 3:
            dup["postcode"] = None
        else:
            dup["street"] = dup["street"].replace("straße", "str.").replace("Straße", "Str.")
        dups.append(dup)
    return dups


def test_blocking_keeps_every_true_pair_of_a_small_synthetic_set():
    people = _people(400)
    records = people + _duplicates(people)
    rules = default_rules()
    ia, ib, stats = candidate_pairs(encode(records, rules), rules)
    found = set(zip(ia.tolist(), ib.tolist(), strict=True))
    n = len(people)
    missing = [i for i in range(n) if (i, i + n) not in found]
    assert missing == []
    all_pairs = len(records) * (len(records) - 1) // 2
    assert stats.candidate_pairs == len(found) < all_pairs * 0.02  # blocking, not all pairs
    assert (ia < ib).all()
    assert len(found) == ia.size  # each pair once, however many keys found it


def test_giant_blocks_are_skipped_and_logged_without_the_value(caplog):
    data = copy.deepcopy(DEFAULT_PEOPLE_RULES)
    data["blocking"] = {"max_block_size": 10, "keys": [{"name": "postcode_only", "on": ["postcode"]},
                                                        {"name": "last_name", "on": ["last_name"]}]}
    rules = load_rules(data)
    records = [{"postcode": "99999", "last_name": f"Name{i % 20}"} for i in range(60)]
    with caplog.at_level(logging.WARNING, logger="profiles.matching"):
        ia, ib, stats = candidate_pairs(encode(records, rules), rules)
    assert stats.keys["postcode_only"]["skipped_blocks"] == 1
    assert stats.keys["postcode_only"]["largest_skipped"] == 60
    assert stats.keys["postcode_only"]["pairs"] == 0
    assert stats.keys["last_name"]["pairs"] == 20 * 3  # 20 blocks of 3 records
    assert "postcode_only" in caplog.text and "99999" not in caplog.text


def test_link_pairs_only_cross_the_two_sides():
    people = _people(100)
    rules = default_rules()
    enc = encode_link(people, _duplicates(people), rules)
    ia, ib, _ = candidate_pairs(enc, rules)
    assert (ia < 100).all() and (ib >= 100).all()
    assert {(i, i + 100) for i in range(100)} <= set(zip(ia.tolist(), ib.tolist(), strict=True))


# ------------------------------------------------------------------------------------------------------ scoring
ANNA = {"first_name": "Anna", "last_name": "Schneider", "birth_date": "1985-06-14", "street": "Lindenallee 4",
        "house_number": "4", "postcode": "50667", "city": "Köln", "email": "anna.schneider@web.de",
        "phone": "0221 5551234"}


def test_dedup_finds_a_typod_duplicate_with_its_evidence():
    typo = {**ANNA, "last_name": "Schnieder", "birth_date": "14.06.1985", "street": "Lindenallee", "email": None,
            "phone": "+49 221 5551234"}
    other = {"first_name": "Jonas", "last_name": "Weber", "birth_date": "1990-01-02", "street": "Hauptstr. 1",
             "house_number": "1", "postcode": "10115", "city": "Berlin"}
    matches = find_matches([ANNA, other, typo], default_rules())
    assert [(m.a, m.b, m.decision) for m in matches] == [(0, 2, "merge")]
    match = matches[0]
    assert match.score >= 0.99
    assert match.evidence["last_name"]["level"] == "phonetic"  # Schneider / Schnieder sound the same
    assert match.evidence["last_name"]["weight"] > 0
    assert 0.9 <= match.evidence["last_name"]["similarity"] < 1
    assert match.evidence["birth_date"] == {"level": "exact", "weight": pytest.approx(8.748, abs=1e-3),
                                            "days_apart": 0.0}
    assert match.evidence["postcode"] == {"level": "exact", "weight": pytest.approx(2.087, abs=1e-3), "distance": 0}
    assert match.evidence["email"]["level"] == "missing" and match.evidence["email"]["weight"] == 0
    assert match.evidence["phone"]["level"] == "exact"
    assert set(match.evidence) == {f.name for f in default_rules().fields}
    json.dumps(match.as_dict())  # the evidence is plain data, ready for the merge journal


def test_two_people_who_share_a_surname_and_city_are_not_merged():
    neighbour = {"first_name": "Petra", "last_name": "Schneider", "birth_date": "1961-11-02",
                 "street": "Domstraße 19", "house_number": "19", "postcode": "50668", "city": "Köln",
                 "email": "petra.s@t-online.de"}
    rules = default_rules()
    assert find_matches([ANNA, neighbour], rules, min_score=0.0) == [] or \
        find_matches([ANNA, neighbour], rules, min_score=0.0)[0].score < 0.01
    assert find_matches([ANNA, neighbour], rules) == []
    score = score_pairs([ANNA, neighbour], None, [(0, 1)], rules)[0]
    assert score < rules.review


def test_names_entered_the_wrong_way_round_still_match():
    swapped = {**ANNA, "first_name": "Schneider", "last_name": "Anna", "email": None}
    matches = find_matches([ANNA, swapped], default_rules())
    assert len(matches) == 1 and matches[0].decision == "merge"
    exact = default_rules().field("first_name").weight_table()[0]
    assert matches[0].evidence["first_name"] == {"level": "exact", "weight": pytest.approx(exact, abs=1e-3),
                                                 "similarity": 1.0, "swapped": True}


def test_score_pairs_scores_every_pair_and_checks_indexes():
    people = _people(30)
    dups = _duplicates(people)
    rules = default_rules()
    scores = score_pairs(people, dups, np.array([[i, i] for i in range(30)] + [[0, 1], [2, 3]]), rules)
    assert scores.shape == (32,)
    assert (scores[:30] >= rules.review).all()
    assert (scores[30:] < 0.5).all()
    same = score_pairs(people, dups, ([0, 2], [1, 3]), rules)
    assert np.allclose(same, scores[30:])
    assert score_pairs(people, None, np.empty((0, 2)), rules).shape == (0,)
    with pytest.raises(ValueError, match="out of range"):
        score_pairs(people, dups, [(0, 30)], rules)


def test_link_returns_pairs_across_the_sources():
    people = _people(50)
    matches = link(people, _duplicates(people), default_rules(), one_to_one=True)
    assert all(m.a == m.b for m in matches)
    assert len(matches) >= 48


def test_records_can_be_columns():
    rules = default_rules()
    columns = {key: [ANNA.get(key), {**ANNA, "first_name": "Annette"}.get(key)] for key in ANNA}
    matches = find_matches(columns, rules)
    assert len(matches) == 1 and matches[0].evidence["first_name"]["level"] == "jaro_winkler>=0.8"


def test_em_learns_from_unlabelled_pairs_and_keeps_the_thresholds():
    people = _people(400)
    records = people + _duplicates(people)
    rules = default_rules()
    trained, estimate = estimate_parameters(records, rules)
    assert estimate.converged
    assert (trained.auto_merge, trained.review) == (rules.auto_merge, rules.review)
    for name in ("first_name", "last_name", "birth_date", "street"):
        f = trained.field(name)
        assert f.m[0] > f.u[0]  # agreeing is evidence for a match
    # Each duplicate here has one error only, so most fields never disagree within a true pair.
    assert trained.field("first_name").m[-1] < trained.field("first_name").u[-1]  # disagreeing is evidence against
    enc = encode(records, trained)
    ia, ib, _ = candidate_pairs(enc, trained)
    assert comparison_levels(enc, ia, ib, trained).shape == (ia.size, len(trained.fields))
    found = {(m.a, m.b) for m in find_matches(records, trained) if m.decision == "merge"}
    true = {(i, i + 400) for i in range(400)}
    assert len(found & true) >= 0.97 * len(true)
    assert len(found - true) <= 0.01 * len(found)


# ------------------------------------------------------------------------------- the filters change no level
def _random_words(count, rnd):
    alphabet = "aaabcdeeefghiiklmnnoprrsstuüß -0123"
    words = []
    for _ in range(count):
        length = rnd.choice([1, 2, 3, 5, 7, 9, 12, 20, 70])  # 70: longer than the profile, never filtered
        words.append("".join(rnd.choice(alphabet) for _ in range(length)).strip() or "x")
    # near misses of one another, so every level is reached
    words += [_typo(w, rnd) if len(w) > 3 else w + "e" for w in words[: count // 2]]
    return words


@pytest.mark.parametrize("comparator, kind", [
    ({"type": "jaro_winkler", "thresholds": [0.95, 0.85, 0.7]}, "text"),
    ({"type": "levenshtein", "thresholds": [0.9, 0.75]}, "text"),
    ({"type": "levenshtein", "distances": [1, 2, 3]}, "identifier"),
    ({"type": "levenshtein", "distances": [1, 2], "transpositions": True}, "text"),
    ({"type": "name", "thresholds": [0.92, 0.8], "phonetic": []}, "name"),
])
def test_bounds_used_as_filters_give_the_levels_of_the_full_metric(comparator, kind):
    from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

    rnd = random.Random(5)
    words = _random_words(300, rnd)
    rules = load_rules({"fields": [{"name": "value", "kind": kind, "comparator": comparator,
                                    "weights": [1.0] * (2 + len(comparator.get("thresholds",
                                                                               comparator.get("distances"))))}],
                        "blocking": {"keys": [{"name": "value", "on": ["value"]}]}})
    enc = encode([{"value": w} for w in words], rules)
    f = rules.field("value")
    field = enc["value"]
    ia = np.array([rnd.randrange(len(words)) for _ in range(20000)])
    ib = np.array([rnd.randrange(len(words)) for _ in range(20000)])
    levels = f.comparator.compare(field, field.codes[ia], field.codes[ib])
    keys_a, keys_b = field.keys[field.codes[ia]], field.keys[field.codes[ib]]
    if "distances" in comparator:
        module = OSA if comparator.get("transpositions") else Levenshtein
        scores = np.array([module.distance(x, y) for x, y in zip(keys_a, keys_b, strict=True)])
        expected = np.searchsorted(np.array(comparator["distances"]), scores, side="left") + 1
    else:
        metric = Levenshtein if comparator["type"] == "levenshtein" else JaroWinkler
        scores = np.array([metric.normalized_similarity(x, y) for x, y in zip(keys_a, keys_b, strict=True)])
        reached = sum((scores >= t - 1e-9).astype(int) for t in comparator["thresholds"])
        expected = 1 + len(comparator["thresholds"]) - reached
    expected[keys_a == keys_b] = 0
    expected[(field.codes[ia] < 0) | (field.codes[ib] < 0)] = -1
    assert (levels == expected).all()
    assert set(range(len(f.levels))) <= set(levels.tolist())  # every level occurs: the check means something


def test_missing_and_odd_values_are_read_without_losing_the_record():
    rules = default_rules()
    records = [
        {**ANNA, "phone": float("nan"), "email": "   ", "street": ["Lindenallee", "4"]},  # a list: read as text
        {**ANNA, "birth_date": "not a date", "postcode": 50667, "house_number": 4},
    ]
    enc = encode(records, rules)
    assert enc["phone"].codes.tolist() == [-1, enc["phone"].codes[1]]
    assert enc["email"].codes[0] == -1
    assert enc["birth_date"].codes[1] == -1  # unreadable: missing, so it neither helps nor hurts
    assert enc["postcode"].keys[enc["postcode"].codes[1]] == "50667"
    matches = find_matches(records, rules)
    assert len(matches) == 1 and matches[0].evidence["birth_date"]["level"] == "missing"


def test_blocking_key_values_put_the_same_records_together_as_blocking():
    from profiles.matching import blocking_key_values

    people = _people(150)
    records = people + _duplicates(people)
    rules = default_rules()
    values = blocking_key_values(records, rules)
    assert values[0]["email"] is None or values[0]["email"] == "person0@example.org"
    # Pairs sharing a key value are exactly the candidate pairs (no block is large enough to be skipped here).
    shared = set()
    for key in rules.blocking:
        groups: dict[str, list[int]] = {}
        for i, record_values in enumerate(values):
            if record_values[key.name] is not None:
                groups.setdefault(record_values[key.name], []).append(i)
        for members in groups.values():
            shared.update((a, b) for x, a in enumerate(members) for b in members[x + 1:])
    ia, ib, _ = candidate_pairs(encode(records, rules), rules)
    assert shared == set(zip(ia.tolist(), ib.tolist(), strict=True))
    anna = blocking_key_values([ANNA], rules)[0]
    assert anna["last_name_phonetic_birth_year"] == nz.cologne("schneider") + "\x1f1985"
    assert anna["phone_suffix"] == "5551234"


def test_evidence_names_what_its_number_measures():
    rules = load_rules({
        "fields": [
            {"name": "code", "kind": "identifier", "comparator": {"type": "levenshtein", "distances": [1]},
             "weights": [6, 3, -4]},
            {"name": "born", "kind": "date", "comparator": {"type": "date"}, "weights": [5, 3, 2, 1, 0, -4]},
            {"name": "city", "kind": "city", "comparator": {"type": "jaro_winkler"}, "weights": [2, 1, 0.5, -1]},
        ],
        "prior": 0.5,
        "blocking": {"keys": [{"name": "city", "on": ["city"]}]},
    })
    matches = find_matches([{"code": "A123", "born": "2000-01-01", "city": "Köln"},
                            {"code": "A124", "born": "1999-12-29", "city": "Koeln"}], rules, min_score=0)
    assert matches[0].evidence == {
        "code": {"level": "levenshtein<=1", "weight": 3.0, "distance": 1.0},
        "born": {"level": "within_7_days", "weight": 1.0, "days_apart": 3.0},
        "city": {"level": "exact", "weight": 2.0, "similarity": 1.0},
    }
    assert matches[0].weight == pytest.approx(6.0)
    assert matches[0].score == pytest.approx(1 / (1 + 2**-6))


def test_a_parent_and_child_at_one_address_with_one_landline_are_not_merged():
    child = {**ANNA, "first_name": "Jonas", "birth_date": "2012-02-03", "email": "jonas.schneider@web.de"}
    rules = default_rules()
    assert find_matches([ANNA, child], rules) == []
    assert score_pairs([ANNA, child], None, [(0, 1)], rules)[0] < rules.review
    # ... while the same person after a move, with a new phone, is put in front of a person to decide
    moved = {**ANNA, "street": "Domstraße 19", "house_number": "19", "postcode": "50668", "phone": "0170 1234567",
             "email": None}
    assert [m.decision for m in find_matches([ANNA, moved], rules)] == ["review"]
    # ... and merges when the email address is the same
    assert [m.decision for m in find_matches([ANNA, {**moved, "email": ANNA["email"]}], rules)] == ["merge"]
