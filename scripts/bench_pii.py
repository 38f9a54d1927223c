"""Benchmark the PII gate (`data_checks.pii.scan_pii`) against plain presidio, in one process.

    python scripts/bench_pii.py [--n 20000] [--pii-fraction 0.2] [--plain-n N] [--seed 0]

Two parts. Accuracy: precision and recall per type on the project's hand-labelled real-text set
(`tests/data/pii_realtext/`, two views: `pii`, where a placeholder is not PII, and `detection`, any value of
the type) and on presidio-research's synthetic set, for the gate and for presidio with its stock
recognizers; then what each context rule drops on the real-text set (false hits removed, true values lost).
Speed: texts/s on a synthetic mix, as follows.

The mix is seeded: `--pii-fraction` of the texts are templates of presidio-research's synthetic PII set
(`../shared/datasets/presidio_synth_pii`) that hold at least one type the gate checks, refilled with
values drawn from the set's own values of each type; the rest are PII-free short sentences, some with
years, prices, times, dates, versions and counts, plus the set's 113 PII-free records.

"Plain presidio" is `AnalyzerEngine.analyze` (no-op NLP engine, the gate's own recognizers, the same
entities and score threshold) on every text (or on a seeded subset of `--plain-n` texts), with no
prefilter, no conflict and no context rules. Prints texts/s of each, the ratio, and the agreement of the two
on which texts hold PII; exits 1 if the gate misses a text built with PII that plain presidio flags.
For reference it also
times presidio with its stock recognizers for the same types (phonenumbers-based phone recognizer,
stock card and IBAN patterns; the offline email recognizer, as the stock one downloads the public
suffix list) on `--stock-n` texts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATA_CHECKS_NO_PROGRESS", "1")  # the bar's own output would clutter the numbers

from data_checks.pii import LANGUAGE, PiiGateConfig, analyzer_engine, pii_findings, scan_pii  # noqa: E402
from data_checks.pii.labelled import load_labelled, score  # noqa: E402

SYNTH = ROOT.parent / "shared" / "datasets" / "presidio_synth_pii" / "synth_dataset_v2.json"
REALTEXT = ROOT / "tests" / "data" / "pii_realtext" / "texts.jsonl"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

SUBJECTS = ["The model", "Our team", "This recipe", "The function", "A student", "The committee", "My neighbour",
            "The new policy", "Each worker", "The library", "That old bridge", "The assistant", "Your answer",
            "The museum", "A small village", "The training loop", "Every chapter", "The orchestra"]
VERBS = ["improved", "described", "needed", "rejected", "summarised", "found", "explained", "compared",
         "reviewed", "kept", "changed", "opened", "measured", "listed", "repaired", "translated"]
OBJECTS = ["the results", "a short story", "the main idea", "three options", "the old rules", "the data",
           "a better plan", "the first draft", "two examples", "the whole process", "a long list", "the problem",
           "the weather report", "an essay on trees", "the budget", "the recipe for bread"]
TAILS = ["", "", "", " quickly", " again", " last week", " without help", " in the end", ", as expected",
         " (see the appendix)", " for the second time", ", e.g. in chapter two", " - mostly"]


def _number_phrase(rng: random.Random) -> str:
    kind = rng.randrange(12)
    if kind == 0:
        return f" in {rng.randint(1850, 2030)}"
    if kind == 1:
        return f" for ${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"
    if kind == 2:
        return f" at {rng.randint(0, 23)}:{rng.randint(0, 59):02d}"
    if kind == 3:
        return f" on {rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 4:
        return f" with version {rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    if kind == 5:
        return f" by {rng.randint(1, 99)}%"
    if kind == 6:
        return f" on page {rng.randint(1, 900)}"
    if kind == 7:
        return f" with {rng.randint(2, 10**6):,} items"
    if kind == 8:
        return f" between {rng.randint(1900, 1990)} and {rng.randint(1991, 2024)}"
    if kind == 9:
        return f" in step {rng.randint(1, 30)} of {rng.randint(30, 60)}"
    return ""


def clean_sentence(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
    if rng.random() < 0.5:
        text += _number_phrase(rng)
    text += "."
    if rng.random() < 0.4:
        text += f" {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{_number_phrase(rng)}."
    return text


def build_mix(n: int, pii_fraction: float, seed: int, entities: list[str]) -> tuple[list[str], list[bool]]:
    """`n` texts and, for each, whether it was built with a value of a checked type."""
    records = json.loads(SYNTH.read_text(encoding="utf-8"))
    pools: dict[str, list[str]] = {}
    for record in records:
        for span in record["spans"]:
            pools.setdefault(span["entity_type"], []).append(span["entity_value"])
    templates = [r["masked"] for r in records if set(PLACEHOLDER.findall(r["masked"])) & set(entities)]
    negatives = [r["full_text"] for r in records if not r["spans"]]
    rng = random.Random(seed)
    texts, has_pii = [], []
    for _ in range(n):
        if rng.random() < pii_fraction:
            template = rng.choice(templates)
            texts.append(PLACEHOLDER.sub(lambda m: rng.choice(pools[m[1]]), template))
            has_pii.append(True)
        else:
            texts.append(rng.choice(negatives) if rng.random() < 0.05 else clean_sentence(rng))
            has_pii.append(False)
    return texts, has_pii


def stock_engine() -> object:
    """presidio's stock recognizers for the default types, behind the same no-op NLP engine."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        IbanRecognizer,
        IpRecognizer,
        MacAddressRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    from data_checks.pii import _presidio

    nlp_engine = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "no_op"}])
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for recognizer in (_presidio().recognizers["EMAIL_ADDRESS"], PhoneRecognizer(), CreditCardRecognizer(),
                       IbanRecognizer(), UsSsnRecognizer(), IpRecognizer(), MacAddressRecognizer(), CryptoRecognizer()):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])


def synthetic_as_labelled(entities: list[str]) -> list[dict]:
    """presidio-research's records in the labelled-set shape (DOMAIN_NAME is presidio's URL)."""
    names = {"DOMAIN_NAME": "URL"}
    labelled = []
    for i, record in enumerate(json.loads(SYNTH.read_text(encoding="utf-8"))):
        spans = [{"start": s["start_position"], "end": s["end_position"], "label": "pii",
                  "type": names.get(s["entity_type"], s["entity_type"])} for s in record["spans"]]
        labelled.append({"id": str(i), "text": record["full_text"],
                         "spans": [s for s in spans if s["type"] in entities]})
    return labelled


def _cell(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def accuracy_table(title: str, texts: list[dict], entities: list[str], views: tuple[str, ...]) -> None:
    """Per type and view: truth count, then precision / recall of the gate and of stock presidio."""
    config = PiiGateConfig(entities=entities)
    stock = stock_engine()

    def ours(text: str) -> list:
        return [(f.start, f.end, f.type, f.placeholder is not None) for f in pii_findings(text, config)]

    def plain(text: str) -> list:
        return [(r.start, r.end, r.entity_type, False) for r in stock.analyze(text, LANGUAGE, entities=entities,
                                                                             score_threshold=config.score_threshold)]

    gate, presidio = score(texts, ours, entities), score(texts, plain, entities)
    print(f"\n{title} ({len(texts)} texts): precision / recall per type, overlap match")
    print(f"{'view':10s} {'type':14s} {'truth':>6s} {'ours P':>7s} {'ours R':>7s} {'found':>6s}   "
          f"{'presidio P':>10s} {'presidio R':>10s} {'found':>6s}")
    for view in views:
        for kind in entities:
            a, b = gate[view][kind], presidio[view][kind]
            if not (a.truth or a.predicted or b.predicted):
                continue
            print(f"{view:10s} {kind:14s} {a.truth:6d} {_cell(a.precision):>7s} {_cell(a.recall):>7s} "
                  f"{a.predicted:6d}   "
                  f"{_cell(b.precision):>10s} {_cell(b.recall):>10s} {b.predicted:6d}")


def rule_effects(texts: list[dict], entities: list[str]) -> None:
    """What each context rule drops on the labelled set: hits labelled not_pii, and true values or placeholders."""
    from data_checks.pii import _scanner

    scanner = _scanner(PiiGateConfig(entities=entities))
    removed: dict[tuple[str, str], list[int]] = {}
    for record in texts:
        dropped: list = []
        scanner.findings(record["text"], dropped)
        for d in dropped:
            true = any(s["start"] < d.end and d.start < s["end"] and s["type"] == d.type and s["label"] != "not_pii"
                       for s in record["spans"])
            counts = removed.setdefault((d.type, d.reason), [0, 0])
            counts[1 if true else 0] += 1
    print("\ncontext rules on the real-text set (type, rule: false hits removed / true values lost)")
    for (kind, reason), (fp, lost) in sorted(removed.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:14s} {reason:42s} {fp:5d} / {lost}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="texts in the mix")
    parser.add_argument("--pii-fraction", type=float, default=0.2)
    parser.add_argument("--plain-n", type=int, default=None, help="texts plain presidio analyses (default: all)")
    parser.add_argument("--stock-n", type=int, default=2000, help="texts for the stock-recognizer timing (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="time the gate this many times, report the best")
    args = parser.parse_args()
    if not SYNTH.is_file():
        print(f"{SYNTH} is absent: this benchmark needs the shared synthetic PII set", file=sys.stderr)
        return 2

    config = PiiGateConfig()
    start = time.perf_counter()
    engine = analyzer_engine()
    scan_pii(["warm up: call 555-123-4567"], config)  # build the scanner, load the recognizers
    print(f"presidio import + engine build: {time.perf_counter() - start:.1f} s (once per process)")
    real = load_labelled(REALTEXT)
    accuracy_table("real-text set (tests/data/pii_realtext)", real, list(config.entities), ("pii", "detection"))
    rule_effects(real, list(config.entities))
    accuracy_table("presidio-research synth_dataset_v2", synthetic_as_labelled(list(config.entities)),
                   list(config.entities), ("detection",))
    print()
    real_texts = [r["text"] for r in real]
    start = time.perf_counter()
    scan_pii(real_texts, config)
    print(f"real-text set: {len(real_texts) / (time.perf_counter() - start):,.0f} texts/s "
          f"(mean length {sum(map(len, real_texts)) / len(real_texts):.0f} chars, every one with a hit)")

    texts, has_pii = build_mix(args.n, args.pii_fraction, args.seed, config.entities)
    scan_pii(texts[:50], config)

    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = scan_pii(texts, config)
        best = min(best, time.perf_counter() - start)
    from data_checks.pii import _scanner

    scanner = _scanner(config)
    ours = [bool(scanner.find(t)) for t in texts]
    passed_prefilter = sum(scanner.might_have_pii(t) for t in texts)
    ours_rate = len(texts) / best
    assert result.records_with_pii == sum(any(config.counts(f.confidence, f.placeholder) for f in scanner.findings(t))
                                          for t in texts)

    subset = list(range(len(texts)))
    if args.plain_n is not None and args.plain_n < len(texts):
        subset = sorted(random.Random(args.seed + 1).sample(subset, args.plain_n))
    start = time.perf_counter()
    plain = {i: bool(engine.analyze(texts[i], LANGUAGE, entities=list(config.entities),
                                    score_threshold=config.score_threshold)) for i in subset}
    plain_rate = len(subset) / (time.perf_counter() - start)

    stock_rate = None
    if args.stock_n:
        stock = stock_engine()
        sample = random.Random(args.seed + 2).sample(texts, min(args.stock_n, len(texts)))
        stock.analyze(sample[0], LANGUAGE)
        start = time.perf_counter()
        for text in sample:
            stock.analyze(text, LANGUAGE, score_threshold=config.score_threshold)
        stock_rate = len(sample) / (time.perf_counter() - start)

    # texts built with PII that plain presidio flags and the gate does not: the context rules dropped PII
    missed = [i for i in subset if plain[i] and not ours[i] and has_pii[i]]
    extra = [i for i in subset if ours[i] and not plain[i]]
    pii_texts = sum(has_pii)
    print(f"mix: {len(texts)} texts, {pii_texts} built with PII ({pii_texts / len(texts):.0%}), seed {args.seed}, "
          f"mean length {sum(map(len, texts)) / len(texts):.0f} chars")
    print(f"prefilter passes {passed_prefilter} texts ({passed_prefilter / len(texts):.1%}) to the recognizers")
    print(f"ours (scan_pii):     {ours_rate:10,.0f} texts/s  (best of {args.repeat})")
    print(f"plain presidio:      {plain_rate:10,.0f} texts/s  ({len(subset)} texts)")
    print(f"speed-up:            {ours_rate / plain_rate:10.1f}x")
    if stock_rate is not None:
        print(f"presidio, stock recognizers: {stock_rate:,.0f} texts/s ({args.stock_n} texts; "
              f"{ours_rate / stock_rate:.0f}x slower than ours)")
    print(f"agreement on {len(subset)} texts: plain flags {sum(plain.values())}, ours {sum(ours[i] for i in subset)}, "
          f"PII texts missed by ours {len(missed)}, extra in ours {len(extra)}")
    hits = sum(o and h for o, h in zip(ours, has_pii, strict=True))
    false_alarms = sum(o and not h for o, h in zip(ours, has_pii, strict=True))
    print(f"against the mix's construction: {hits}/{pii_texts} PII texts flagged, "
          f"{false_alarms}/{len(texts) - pii_texts} PII-free texts flagged")
    if missed:
        print(f"MISSED (first 5): {[texts[i] for i in missed[:5]]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
