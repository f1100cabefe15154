"""Sentiment of the demo's call-center notes (profiles.insights.sentiment) against what the generator meant, beside
trivial baselines; and what scoring costs the ingestion pipeline per event.

    .venv/bin/python benchmarks/sentiment.py            # 20,000 demo people
    .venv/bin/python benchmarks/sentiment.py --quick    # 2,000 people (a few seconds)

1. Quality. ``demo_people`` generates the people (no database); each note's kind is the truth: cancel and
   complaint notes are negative, praise positive, the rest neutral. Every note is scored as the pipeline scores
   it (its ``language`` property as the hint; the kind is read back from the note's subject, which the generator
   sets per kind), and also without the hint (the language detected) and with the
   general lexicons alone (without ``SERVICE_DE`` / ``SERVICE_EN``). Per language and in all: accuracy and
   macro-F1 over the three labels, beside two trivial baselines, always "negative" and always the majority class
   of that set; the confusion matrix; how often the language was detected right.
   Read the figures knowing that the demo's notes come from a few dozen templates (ingestion/demo/data.py NOTES),
   that the service word lists were written with those templates in view, and that the general-lexicons figure
   is the one closer to unseen text.
2. Cost. ``_events_with_sentiment`` (the step ``_events_insert`` runs on every batch) on the demo's own events:
   CPU microseconds per event without free text (web and shop events) and per note event with text; the CPU per
   note of ``sentiment_score`` alone; the time the lexicons take to load (once per process, on first use).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

import django  # noqa: E402

django.setup()

from benchmarks.ingest import machine  # noqa: E402
from ingestion.demo import data  # noqa: E402
from ingestion.demo.generator import demo_people  # noqa: E402
from profiles.insights.sentiment import LABELS, sentiment_score  # noqa: E402
from profiles.services.observations import _events_with_sentiment  # noqa: E402

SCALES = {"quick": 2_000, "full": 20_000}
TRUTH = {"cancel": "negative", "complaint": "negative", "praise": "positive", "neutral": "neutral"}
# A note's kind, from its subject (the generator gives each kind its own subject in each language).
KIND_OF_SUBJECT = {subject: kind for kind, subjects in data.NOTE_SUBJECTS.items() for subject in subjects}
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so every run sees the same people


def log(message: str) -> None:
    print(f"sentiment benchmark: {message}", file=sys.stderr, flush=True)


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    """The mean F1 of the three labels (a label neither true nor predicted anywhere is left out)."""
    scores = []
    for label in LABELS:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == label != t)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label != p)
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def quality(truth: list[str], predicted: list[str]) -> dict:
    return {"accuracy": round(sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth), 4),
            "macro_f1": round(macro_f1(truth, predicted), 4)}


def evaluate(notes: list[dict]) -> dict:
    """notes: {"language", "truth", "hinted", "detected", "general", "detected_language"} each."""
    out = {}
    for language in ("de", "en", "all"):
        subset = [n for n in notes if language == "all" or n["language"] == language]
        if not subset:
            continue
        truth = [n["truth"] for n in subset]
        majority = Counter(truth).most_common(1)[0][0]
        out[language] = {
            "notes": len(subset),
            "truth": dict(Counter(truth)),
            "scorer": quality(truth, [n["hinted"] for n in subset]),
            "scorer_language_detected": quality(truth, [n["detected"] for n in subset]),
            "general_lexicons_only": quality(truth, [n["general"] for n in subset]),
            "baseline_always_negative": quality(truth, ["negative"] * len(subset)),
            f"baseline_majority_{majority}": quality(truth, [majority] * len(subset)),
            "language_detected_right": round(sum(n["detected_language"] == n["language"] for n in subset)
                                             / len(subset), 4),
            "confusion_truth_to_predicted": {
                t: dict(Counter(n["hinted"] for n in subset if n["truth"] == t)) for t in LABELS},
        }
    return out


def cpu_per_event(rows: list[tuple], repeat: int) -> float:
    """CPU microseconds per row of ``_events_with_sentiment``, best of ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        begin = time.process_time()
        _events_with_sentiment(rows)
        best = min(best, time.process_time() - begin)
    return round(best / len(rows) * 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{SCALES['quick']:,} people instead of "
                                                              f"{SCALES['full']:,}")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    scale = "quick" if args.quick else "full"
    profiles = SCALES[scale]
    started = time.monotonic()
    log(f"generating {profiles:,} demo people (seed {args.seed})")
    notes, plain_rows, note_rows = [], [], []
    for person in demo_people(profiles=profiles, seed=args.seed, now=NOW):
        for record in person.notes:
            notes.append({"record": record, "kind": KIND_OF_SUBJECT[record["subject"]]})
        for message in [*person.web, *person.shop][:20]:
            plain_rows.append((1, message["type"], message.get("event", ""), "web", message.get("properties") or {},
                               message.get("context") or {}, NOW, "web", message["messageId"]))
        for record in person.notes:
            properties = {k: record[k] for k in ("note", "subject", "language", "channel", "agent", "ticket_id")}
            note_rows.append((1, "track", "Call Center Note", "call_center", properties, {}, NOW, "cc", "t"))
    log(f"{len(notes):,} notes; scoring")
    begin = time.monotonic()
    for language in ("de", "en"):  # the lexicons load on first use
        for service_words in (True, False):
            sentiment_score("warm", language, service_words=service_words)
    load_ms = round((time.monotonic() - begin) * 1000, 1)
    scored = []
    begin = time.process_time()
    for item in notes:
        record = item["record"]
        hinted = sentiment_score(record["note"], record["language"])
        scored.append({"language": record["language"], "truth": TRUTH[item["kind"]], "hinted": hinted.label})
    score_cpu = time.process_time() - begin
    for item, row in zip(notes, scored, strict=True):
        text = item["record"]["note"]
        detected = sentiment_score(text)
        row.update(detected=detected.label, detected_language=detected.language,
                   general=sentiment_score(text, row["language"], service_words=False).label)
    figures = evaluate(scored)
    by_language = Counter(n["language"] for n in scored)
    cost = {"without_text_us": cpu_per_event(plain_rows, 5), "with_text_us": cpu_per_event(note_rows, 3),
            "events_without_text": len(plain_rows), "note_events": len(note_rows),
            "score_cpu_us_per_note": round(score_cpu / len(notes) * 1e6, 1), "lexicons_load_ms": load_ms}
    log(f"done in {time.monotonic() - started:.1f} s")
    for language, figure in figures.items():
        print(f"{language}: {figure['notes']} notes  scorer {figure['scorer']}  "
              f"general lexicons {figure['general_lexicons_only']}  "
              f"always negative {figure['baseline_always_negative']}  "
              + "  ".join(f"{k} {v}" for k, v in figure.items() if k.startswith("baseline_majority")))
    print(f"cost per event: without text {cost['without_text_us']} µs, with text {cost['with_text_us']} µs")
    summary = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "scale": scale, "profiles": profiles,
               "seed": args.seed, "notes": len(notes), "notes_by_language": dict(by_language),
               "accuracy": {k: v["scorer"]["accuracy"] for k, v in figures.items()},
               "macro_f1": {k: v["scorer"]["macro_f1"] for k, v in figures.items()},
               "details": figures, "cost": cost, "machine": machine()}
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
