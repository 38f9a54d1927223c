"""List the PII hits on a corpus that the labelled real-text set does not cover yet, for labelling by hand.

    python scripts/pii_realtext_candidates.py FILE.jsonl [FILE.jsonl ...] --field text --out todo.jsonl

Each input line is a JSON record; `--field` names the string fields to scan (repeatable; default: every
string field). Every hit of the gate's recognizers *before* the context rules (`Scanner.matches`) and of
presidio's stock recognizers is written, one line per text, in the shape of
`tests/data/pii_realtext/texts.jsonl` with `label` set to `?` and the gate's current verdict beside it
(`gate`: high / low / placeholder / dropped: reason). Label each span pii, placeholder or not_pii, merge
overlapping spans of one type into the true span, and append the text to the set (with its source in
SOURCE.md). Texts already in the set (same source and id) are skipped. This is how the set was built;
SOURCE.md says which corpora it holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("DATA_CHECKS_NO_PROGRESS", "1")

from bench_pii import stock_engine  # noqa: E402

from data_checks.pii import LANGUAGE, PiiGateConfig  # noqa: E402
from data_checks.pii.labelled import load_labelled  # noqa: E402
from data_checks.pii.scanner import scanner  # noqa: E402

SET = ROOT / "tests" / "data" / "pii_realtext" / "texts.jsonl"


def texts_of(path: Path, fields: list[str]) -> list[tuple[str, str]]:
    """(id, text) for every chosen string field of every record of a JSONL file."""
    found = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            for key, value in record.items() if isinstance(record, dict) else []:
                if isinstance(value, str) and value.strip() and (not fields or key in fields):
                    found.append((f"{number}:{key}", value))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--field", action="append", default=[], help="a string field to scan (repeatable)")
    parser.add_argument("--source", help="the source name of these texts (default: the file's stem)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = PiiGateConfig()
    gate, stock = scanner(config), stock_engine()
    known = {(r["source"], r["id"]) for r in load_labelled(SET)}
    written = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for path in args.paths:
            source = args.source or path.stem
            for text_id, text in texts_of(path, args.field):
                key = f"{source}:{text_id}"
                if (source, key) in known:
                    continue
                spans = {(s, e, k) for s, e, k in gate.matches(text)}
                spans |= {(r.start, r.end, r.entity_type) for r in stock.analyze(
                    text, LANGUAGE, entities=list(config.entities), score_threshold=config.score_threshold)}
                if not spans:
                    continue
                dropped: list = []
                verdicts = {f.span: f.placeholder and "placeholder" or f.confidence
                            for f in gate.findings(text, dropped)}
                verdicts.update({(d.start, d.end, d.type): f"dropped: {d.reason}" for d in dropped})
                rows = [{"start": s, "end": e, "type": k, "label": "?", "value": text[s:e],
                         "gate": verdicts.get((s, e, k), "not reported")} for s, e, k in sorted(spans)]
                out.write(json.dumps({"id": key, "source": source, "text": text, "spans": rows},
                                     ensure_ascii=False) + "\n")
                written += 1
    print(f"{written} texts with hits to label: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
