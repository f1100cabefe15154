"""Sentiment of short texts from or about a person (service notes, feedback, reviews), in German and in English: a
lexicon and rules, no trained model; everything ships with the code, nothing is downloaded.

- English: VADER (the vaderSentiment package, MIT licence; its lexicon ships in the package) with its own rules
  for negation ("not happy"), intensifiers ("very"), "but", capitals and exclamation marks, plus the words of
  customer service in ``SERVICE_EN``. VADER reads a text as one sentence, so its negation would reach across
  punctuation ("Not delivered, customer angry" came out positive): a text is scored clause by clause (split after
  , ; : . ! ?), the clauses' valence sums are added (after a clause that opens with "but" or "however" the
  clauses before it count half and those after it 1.5 times, as in VADER's "but" rule) and normalized again.
- German: the German Polarity Lexicon (Klenner et al. 2010, Apache License 2.0; ``data/de_polarity.tsv`` says
  where it comes from), plus ``SERVICE_DE``, scored by the same rules as VADER, for German:
  - a word's valence is its polarity times ``DE_SCALE`` (so German words weigh about what VADER's do);
  - an unknown word is looked up again without an inflection ending (enttäuschte -> enttäuscht), as the infinitive
    of a conjugated verb (beschwert -> beschweren) and without the participle's ge- (geärgert -> ärgern);
  - umlauts and ß may be written ae/oe/ue/ss, and case does not matter (lowercase input works);
  - a negator (nicht, kein, nie, ohne ...) reverses and damps (times -0.74, VADER's factor) the first sentiment
    word in the 3 words after it, or else the nearest one in the 3 words before it ("gefällt mir nicht"), within
    its clause (punctuation ends a clause);
  - an intensifier (sehr, total, äußerst ...) in the 2 words before adds 0.293 to the word's strength, a dampener
    (etwas, leicht ...) takes 0.293 away (VADER's step);
  - "zu" before a word of ``EXCESS_DE`` (zu teuer, zu spät, zu hoch) is negative;
  - after "aber", "jedoch", "allerdings", "trotzdem" or "dennoch" words count 1.5 times, before it half (VADER's
    "but" rule); each "!" (up to 4) adds 0.292 in the direction of the sum.
- Score: VADER's compound, the sum of the valences normalized to -1..1 by s / sqrt(s² + 15). Label: negative
  below -0.05, positive above 0.05 (VADER's thresholds), neutral between.

Language: the caller's ``language`` when it names German or English ("de", "de-AT", "de_CH", "deu", "German",
"en-GB" ...). Otherwise a stop-word count: the text is German when more of its words are common German words
(``STOPWORDS_DE``, a letter ä, ö, ü or ß counts as one more) than common English ones (``STOPWORDS_EN``); on a tie,
when more of its words are in the German lexicon than in VADER's; else English.

Any input is safe: None or non-text gives a neutral score of 0, and only the first ``TEXT_MAX`` characters are
read. ``event_sentiment`` is the rule for events: which properties carry free text (``EVENT_TEXT_FIELDS``) and the
properties to add.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TEXT_MAX = 2000  # characters scored; the rest of a longer text is ignored
NEUTRAL_BAND = 0.05  # |score| up to this is neutral (VADER's thresholds)
LABELS = ("negative", "neutral", "positive")

DE_SCALE = 2.0  # German polarity (-1..1) to VADER's valence scale (about -4..4, strong words near ±2 to ±3)
NEGATION_SCALAR = -0.74  # VADER's N_SCALAR
BOOST_STEP = 0.293  # VADER's B_INCR
EXCLAMATION_STEP = 0.292
NORMALIZE_ALPHA = 15.0
DE_LEXICON_PATH = Path(__file__).resolve().parent / "data" / "de_polarity.tsv"

# Words of customer service the general lexicons miss or read otherwise (polarity -1..1 for German, VADER's valence
# for English). Some common words are neutral here: in a service note "bitten" (asks for), "offen" (still open),
# "hoch" (zu hoch) and "geschickt" (sent, not skilful) say nothing good. Delivery outcomes (angekommen, erhalten;
# arrived, received) are mildly positive, so that negated ("nie angekommen", "never arrived") they are negative.
SERVICE_DE = {
    # negative
    "kündigung": -0.7, "kündigungswunsch": -0.7, "kündigungsabsicht": -0.7, "reklamation": -0.7,
    "defekt": -1.0, "kaputt": -1.0, "beschädigt": -1.0, "mangelhaft": -1.0, "verspätet": -0.7,
    "verspätung": -0.7, "verzögerung": -0.7, "lieferverzögerung": -0.7, "unvollständig": -0.7, "fehlt": -0.7,
    "fehlen": -0.7, "katastrophe": -1.0,
    "frechheit": -1.0, "leider": -0.3, "warteschleife": -0.3, "wartezeit": -0.3,
    # positive
    "danke": 0.7, "dankbar": 1.0, "bedankt": 0.7, "bestens": 1.0, "weiterempfehlen": 1.0, "empfiehlt": 1.0,
    "reibungslos": 0.7, "gerne": 0.3, "gern": 0.3, "kulant": 0.7, "gelöst": 0.7,
    "angekommen": 0.3, "erhalten": 0.3, "geliefert": 0.3, "erstattet": 0.3, "gemeldet": 0.3,
    "zurückgerufen": 0.3, "funktioniert": 0.3, "gefallen": 0.7, "gefällt": 0.7,
    # neutral in service notes
    "bitten": 0.0, "bittet": 0.0, "offen": 0.0, "hoch": 0.0, "geschickt": 0.0,
}
SERVICE_EN = {
    "late": -1.2, "delayed": -1.2, "slow": -1.0, "overcharged": -1.8, "unresolved": -1.2, "refunded": 0.6,
    "arrived": 0.4, "received": 0.4, "delivered": 0.4, "works": 0.4, "resolved": 0.9, "thank": 1.5,
    "unsubscribe": -0.6, "unsubscribed": -0.6,
}
# Words that "zu" before them makes negative (zu teuer, zu spät), with the valence it gives.
EXCESS_DE = {word: -1.5 for word in ("teuer", "hoch", "spät", "lang", "lange", "langsam", "klein", "groß", "viel",
                                     "wenig", "kompliziert", "kurz", "laut", "eng", "weit", "selten", "oft")}

NEGATORS_DE = frozenset({
    "nicht", "nichts", "kein", "keine", "keinen", "keinem", "keiner", "keines", "keineswegs", "keinesfalls", "nie",
    "niemals", "nimmer", "ohne", "weder", "nirgends", "niemand"
})
# Sentence adverbs a negator after them does not turn ("funktioniert leider nicht": "nicht" turns "funktioniert").
UNNEGATED_DE = frozenset({"leider", "gerne", "gern", "danke"})
BOOSTERS_DE = frozenset({
    "sehr", "extrem", "äußerst", "total", "völlig", "absolut", "besonders", "echt", "wirklich", "richtig", "höchst",
    "ausgesprochen", "überaus", "unglaublich", "ziemlich", "so", "ganz", "enorm", "zutiefst", "wahnsinnig"
})
DAMPENERS_DE = frozenset({
    "etwas", "leicht", "kaum", "wenig", "bisschen", "einigermaßen", "eher", "teilweise", "halbwegs", "relativ"
})
CONTRAST_DE = frozenset({"aber", "jedoch", "allerdings", "trotzdem", "dennoch"})

STOPWORDS_DE = frozenset({
    "der", "die", "das", "den", "dem", "des", "und", "oder", "aber", "ist", "sind", "war", "waren", "wird", "wurde",
    "hat", "haben", "ein", "eine", "einen", "einem", "einer", "nicht", "kein", "keine", "mit", "von", "zu", "zum",
    "zur", "für", "auf", "im", "in", "sich", "auch", "noch", "nach", "bei", "aus", "wie", "ich", "sie", "er", "wir",
    "es", "ihr", "uns", "mein", "meine", "sein", "seine", "ihre", "dass", "weil", "wenn", "schon", "sehr", "bitte",
    "danke", "seit", "über", "unter", "vom", "beim", "möchte", "will", "kann", "muss", "soll", "gibt"
})
STOPWORDS_EN = frozenset({
    "the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "has", "have", "had", "not",
    "no", "with", "of", "to", "for", "on", "in", "at", "by", "from", "it", "its", "this", "that", "these", "those",
    "he", "she", "they", "we", "you", "i", "my", "his", "her", "their", "our", "your", "as", "if", "because",
    "very", "please", "thanks", "would", "will", "can", "could", "should", "did", "does", "do", "there", "what",
    "when", "about", "after"
})
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|[.,;:!?]")
_CLAUSE_END = frozenset(".,;:!?")
# The word lists as the German scorer reads them (folded like its tokens).
_NEGATORS, _UNNEGATED, _BOOSTERS, _DAMPENERS, _CONTRAST = (
    frozenset(word.translate(_UMLAUTS) for word in words)
    for words in (NEGATORS_DE, UNNEGATED_DE, BOOSTERS_DE, DAMPENERS_DE, CONTRAST_DE))
_EXCESS = {word.translate(_UMLAUTS): valence for word, valence in EXCESS_DE.items()}
_SUFFIXES_DE = ("sten", "ste", "en", "em", "er", "es", "e", "n", "s")


@dataclass(frozen=True)
class Sentiment:
    score: float  # -1 (negative) to 1 (positive)
    label: str  # negative | neutral | positive
    language: str  # de | en


def sentiment_label(score: float) -> str:
    """negative, neutral or positive for a score (see NEUTRAL_BAND)."""
    if score < -NEUTRAL_BAND:
        return "negative"
    if score > NEUTRAL_BAND:
        return "positive"
    return "neutral"


def language_normalize(language) -> str | None:
    """"de" or "en" for a language name or tag that means German or English, else None."""
    if not isinstance(language, str):
        return None
    tag = language.strip().lower().replace("_", "-").split("-")[0]
    if tag in ("de", "deu", "ger", "german", "deutsch"):
        return "de"
    if tag in ("en", "eng", "english", "englisch"):
        return "en"
    return None


def language_detect(text: str) -> str:
    """"de" or "en" by counting common words (see the module)."""
    words = _TOKEN.findall(text.lower())
    german = sum(1 for word in words if word in STOPWORDS_DE)
    english = sum(1 for word in words if word in STOPWORDS_EN)
    if any(letter in text for letter in "äöüßÄÖÜ"):
        german += 1
    if german == english:  # no common words either way: the words each lexicon knows
        lexicon_de, lexicon_en = _lexicon_de(True), _analyzer_en(True).lexicon
        german = sum(1 for word in words if _valence_de(_fold(word), lexicon_de) is not None)
        english = sum(1 for word in words if word in lexicon_en)
    return "de" if german > english else "en"


def sentiment_score(text, language=None, *, service_words: bool = True) -> Sentiment:
    """The sentiment of ``text`` (see the module). ``language``: a hint, used when it names German or English.
    ``service_words=False`` scores with the general lexicons alone (for comparison in benchmarks/sentiment.py)."""
    if not isinstance(text, str):
        text = ""
    text = text[:TEXT_MAX]
    lang = language_normalize(language) or language_detect(text)
    if not text.strip():
        return Sentiment(0.0, "neutral", lang)
    if lang == "de":
        score = _score_de(text, _lexicon_de(service_words))
    else:
        score = _score_en(text, _analyzer_en(service_words))
    score = round(max(-1.0, min(1.0, float(score))), 4)
    return Sentiment(score, sentiment_label(score), lang)


# Event properties that carry free text from or about a person, in the order they are read; a value counts when
# it is a string of at least EVENT_TEXT_MIN characters with at least two words. Category fields (subject, title,
# reason) are left out on purpose: they name the topic, not how the person feels.
EVENT_TEXT_FIELDS = ("note", "text", "comment", "comments", "feedback", "review", "review_body", "message")
EVENT_TEXT_MIN = 12
_WORDS = re.compile(r"[^\W\d_]{2,}")


def event_sentiment(properties, context=None) -> dict | None:
    """The properties to add to an event for its free text: {"sentiment": score, "sentiment_label": label}, or None
    when it has no free text (see EVENT_TEXT_FIELDS) or its sender set "sentiment" already. The language comes
    from properties.language, else context.locale, else the text. Cheap for events without text: a few key
    lookups."""
    if not properties or not isinstance(properties, dict) or "sentiment" in properties:
        return None
    texts = [value for key in EVENT_TEXT_FIELDS if isinstance(value := properties.get(key), str)
             and len(value) >= EVENT_TEXT_MIN and len(_WORDS.findall(value, 0, 200)) >= 2]
    if not texts:
        return None
    language = properties.get("language")
    if language_normalize(language) is None and isinstance(context, dict):
        language = context.get("locale")
    result = sentiment_score(". ".join(texts), language)  # several fields: separate clauses
    return {"sentiment": result.score, "sentiment_label": result.label}


# --- English ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _analyzer_en(service_words: bool):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    if service_words:
        analyzer.lexicon.update(SERVICE_EN)
    return analyzer


_CLAUSE_SPLIT_EN = re.compile(r"(?<=[,;:.!?])\s+")
_CONTRAST_EN = ("but ", "but,", "however")


def _score_en(text: str, analyzer) -> float:
    """VADER's compound, clause by clause (see the module)."""
    clauses = [clause for clause in _CLAUSE_SPLIT_EN.split(text.strip()) if clause]
    if len(clauses) == 1:
        return analyzer.polarity_scores(text)["compound"]
    sums = []
    for clause in clauses:
        compound = max(-0.9999, min(0.9999, analyzer.polarity_scores(clause)["compound"]))
        sums.append(compound * math.sqrt(NORMALIZE_ALPHA / (1 - compound * compound)))  # VADER's normalize, undone
    contrast = max((i for i, clause in enumerate(clauses) if clause.lower().startswith(_CONTRAST_EN)), default=None)
    if contrast is not None:  # VADER weighs the words after its own "but" in that clause already
        own = 1.0 if clauses[contrast].lower().startswith("but") else 1.5
        sums = [value * (0.5 if i < contrast else own if i == contrast else 1.5) for i, value in enumerate(sums)]
    total = sum(sums)
    return total / math.sqrt(total * total + NORMALIZE_ALPHA)


# --- German -------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _lexicon_de(service_words: bool) -> dict[str, float]:
    """Lowercase word, umlauts and ß folded to ae/oe/ue/ss -> valence; a word listed twice gets the mean."""
    sums: dict[str, list[float]] = {}
    with DE_LEXICON_PATH.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or "\t" not in line:
                continue
            form, polarity = line.rstrip("\n").split("\t")
            sums.setdefault(_fold(form.lower()), []).append(float(polarity))
    lexicon = {form: sum(values) / len(values) for form, values in sums.items()}
    if service_words:
        lexicon.update({_fold(form): polarity for form, polarity in SERVICE_DE.items()})
    return {form: polarity * DE_SCALE for form, polarity in lexicon.items()}


def _fold(word: str) -> str:
    return word.translate(_UMLAUTS)


def _valence_de(word: str, lexicon: dict[str, float]) -> float | None:
    """The valence of a lowercase German word, trying its base forms (see the module); None when unknown."""
    valence = lexicon.get(word)
    if valence is not None or len(word) < 4:
        return valence
    candidates = [word[:-len(suffix)] for suffix in _SUFFIXES_DE if word.endswith(suffix)]
    if word.endswith("t"):
        candidates += [word[:-1] + "en", word[:-1] + "n"]
        if word.startswith("ge") and len(word) > 5:
            candidates += [word[2:-1] + "en", word[2:-1] + "n"]
    for candidate in candidates:
        if len(candidate) >= 4 and (valence := lexicon.get(candidate)) is not None:
            return valence
    return None


def _score_de(text: str, lexicon: dict[str, float]) -> float:
    tokens = _TOKEN.findall(_fold(text.lower()))
    clause = 0
    clauses: list[int] = []
    for token in tokens:
        clauses.append(clause)
        if token in _CLAUSE_END:
            clause += 1
    valences: list[float | None] = []
    for index, token in enumerate(tokens):
        if token in _CLAUSE_END or token in _NEGATORS or token in _BOOSTERS or token in _DAMPENERS:
            valences.append(None)
            continue
        if index and tokens[index - 1] == "zu" and token in _EXCESS:
            valences.append(_EXCESS[token])
            continue
        valence = _valence_de(token, lexicon)
        valences.append(valence if valence else None)
    if not any(valences):
        return 0.0

    def same_clause(i: int, j: int) -> bool:
        return 0 <= j < len(tokens) and clauses[i] == clauses[j]

    # Intensifiers and dampeners in the two words before.
    for index, valence in enumerate(valences):
        if valence is None:
            continue
        for back in (1, 2):
            j = index - back
            if not same_clause(index, j):
                break
            step = BOOST_STEP if tokens[j] in _BOOSTERS else -BOOST_STEP if tokens[j] in _DAMPENERS else 0.0
            if step:
                valences[index] = valence + (step if valence > 0 else -step)
                break
    # Negators: the first sentiment word in the 3 after, else the nearest in the 3 before, in the same clause.
    negated: set[int] = set()
    for j, token in enumerate(tokens):
        if token not in _NEGATORS:
            continue
        target = next((i for i in range(j + 1, j + 4) if same_clause(j, i) and valences[i] is not None), None)
        if target is None:
            target = next((i for i in range(j - 1, j - 4, -1) if same_clause(j, i) and valences[i] is not None
                           and i not in negated and tokens[i] not in _UNNEGATED), None)
        if target is not None and target not in negated:
            negated.add(target)
            valences[target] *= NEGATION_SCALAR
    # The "but" rule: the last contrast word splits the text.
    contrast = max((i for i, token in enumerate(tokens) if token in _CONTRAST), default=None)
    total = 0.0
    for index, valence in enumerate(valences):
        if valence is None:
            continue
        if contrast is not None:
            valence *= 0.5 if index < contrast else 1.5
        total += valence
    if total:
        total += math.copysign(min(tokens.count("!"), 4) * EXCLAMATION_STEP, total)
    return total / math.sqrt(total * total + NORMALIZE_ALPHA)


__all__ = ["EVENT_TEXT_FIELDS", "LABELS", "Sentiment", "event_sentiment", "language_detect", "language_normalize",
           "sentiment_label", "sentiment_score"]
