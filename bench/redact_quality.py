"""Redaction quality: per-entity precision, recall and F2 on the labelled development data.

Runs ``callvault.redact.Redactor`` over ``tests/data/redact/dev.jsonl`` and
``holdout.jsonl`` (made by ``tests/data/redact/make_dataset.py``; ``--data``
picks other files, repeatable). A record with ``segments`` goes through
``callvault.redact.RedactionStream`` segment by segment when the package has
it, and the released findings are mapped back to offsets in the record's
joined text; otherwise (and for records without segments) ``Redactor.find``
runs on the whole text, and the output says ``"stream": false``.

Scoring, per entity:

* recall: a gold span counts as found when findings of the same entity cover
  every letter and digit in it (half a masked card number is a leak);
* ``masked_any``: the same, with findings of any entity and spans a stream
  withheld (what stays hidden even when the label is wrong);
* precision: a finding is a true positive when it overlaps a gold span of
  its own entity, a false positive otherwise;
* F2 = 5PR / (4P + R).

Prints one JSON object: figures overall, by form (written/spoken) and by
file, the issue's targets with ``met`` flags, and for each entity up to five
ids of misses and of false positives (ids only: no text leaves this script
unless ``--show-errors N`` asks for it on stderr). Always exits 0.

    python bench/redact_quality.py [--data FILE ...] [--show-errors N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callvault import redact

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    ROOT / "tests" / "data" / "redact" / "dev.jsonl",
    ROOT / "tests" / "data" / "redact" / "holdout.jsonl",
)
# The targets.
RECALL_99 = ("CARD_NUMBER", "US_SSN", "UK_NINO", "NHS_NUMBER", "IBAN")  # written and spoken
RECALL_95 = ("DATE_OF_BIRTH", "UK_SORT_CODE", "BANK_ACCOUNT", "PHONE_NUMBER", "EMAIL_ADDRESS")
PRECISION_95 = RECALL_99 + RECALL_95
WORST = 5

Span = tuple[int, int, str]


@dataclass
class Tally:
    support: int = 0
    found: int = 0
    masked_any: int = 0
    tp: int = 0
    fp: int = 0

    def add(self, other: Tally) -> None:
        self.support += other.support
        self.found += other.found
        self.masked_any += other.masked_any
        self.tp += other.tp
        self.fp += other.fp

    def figures(self) -> dict[str, Any]:
        recall = self.found / self.support if self.support else None
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else None
        f2 = None
        if recall is not None and precision is not None:
            f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
        elif recall == 0.0:
            f2 = 0.0
        return {
            "precision": _round(precision),
            "recall": _round(recall),
            "f2": _round(f2),
            "support": self.support,
            "fp": self.fp,
            "masked_any": _round(self.masked_any / self.support if self.support else None),
        }


@dataclass
class Scores:
    # scope ("all", "form:spoken", "file:dev.jsonl") -> entity -> tally
    tallies: dict[str, dict[str, Tally]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Tally))
    )
    misses: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    false_positives: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)

    def table(self, scope: str) -> dict[str, dict[str, Any]]:
        entities = self.tallies.get(scope, {})
        return {e: entities[e].figures() for e in redact.ENTITIES if e in entities}

    def micro(self, scope: str, names: tuple[str, ...]) -> dict[str, Any]:
        total = Tally()
        for name in names:
            if name in self.tallies.get(scope, {}):
                total.add(self.tallies[scope][name])
        return total.figures()


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def stream_findings(
    record: dict[str, Any], redactor: Any, stream_cls: Any
) -> tuple[list[Span], list[tuple[int, int]]]:
    """Push the record's segments through a stream.

    Returns the released findings and the withheld spans (masked, no label;
    only when the stream has them), as offsets in the record's joined text.
    """
    stream = stream_cls(redactor)
    base: dict[str, int] = {}
    segments = []
    pos = 0
    for i, seg in enumerate(record["segments"]):
        words = tuple(
            redact.Word(w["text"], float(w["start"]), float(w["end"])) for w in seg["words"]
        )
        segment = redact.Segment(
            id=f"{record['id']}/{i}", words=words, final=seg.get("final", True)
        )
        base[segment.id] = pos
        pos += len(segment.text) + 1
        segments.append(segment)
    released = []
    for segment in segments:
        released.extend(stream.push(segment))
    released.extend(stream.flush())
    latest: dict[str, Any] = {}  # the last release of each segment, a final one over an interim
    for item in released:
        if item.segment_id in base and (
            item.final or not getattr(latest.get(item.segment_id), "final", False)
        ):
            latest[item.segment_id] = item
    found = [
        (base[sid] + f.start, base[sid] + f.end, f.entity)
        for sid, item in latest.items()
        for f in item.findings
    ]
    withheld = [
        (base[sid] + a, base[sid] + b)
        for sid, item in latest.items()
        for a, b in getattr(item, "withheld", ())
    ]
    return found, withheld


def covered(text: str, start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    """Every letter and digit of ``text[start:end]`` lies inside one of ``ranges``."""
    return all(any(a <= i < b for a, b in ranges) for i in range(start, end) if text[i].isalnum())


def score_record(
    record: dict[str, Any],
    found: list[Span],
    withheld: list[tuple[int, int]],
    scores: Scores,
    scopes: list[str],
) -> list[tuple[str, str, Any]]:
    """Add one record to the tallies; returns its errors as (kind, entity, detail)."""
    text = record["text"]
    gold = [(s["start"], s["end"], s["entity"]) for s in record["spans"]]
    errors: list[tuple[str, str, Any]] = []
    any_ranges = [(a, b) for a, b, _ in found] + withheld
    for start, end, entity in gold:
        same = [(a, b) for a, b, e in found if e == entity]
        hit = covered(text, start, end, same)
        masked = covered(text, start, end, any_ranges)
        for scope in scopes:
            t = scores.tallies[scope][entity]
            t.support += 1
            t.found += hit
            t.masked_any += masked
        if not hit:
            errors.append(("miss", entity, (start, end)))
    for a, b, entity in found:
        tp = any(e == entity and a < end and start < b for start, end, e in gold)
        for scope in scopes:
            t = scores.tallies[scope][entity]
            t.tp += tp
            t.fp += not tp
        if not tp:
            errors.append(("fp", entity, (a, b)))
    return errors


def show(
    record: dict[str, Any], kind: str, entity: str, where: tuple[int, int], found: list[Span]
) -> None:
    text = record["text"]
    got = [(e, text[a:b]) for a, b, e in found]
    print(
        f"{kind.upper():4s} {entity:15s} {record['id']}: {text[where[0] : where[1]]!r}\n"
        f"     text:  {text!r}\n     found: {got}",
        file=sys.stderr,
    )


def targets(scores: Scores, files: list[str]) -> list[dict[str, Any]]:
    out = []

    def add(entity: str, metric: str, form: str | None, threshold: float) -> None:
        scope = f"form:{form}" if form else "all"
        value = scores.table(scope).get(entity, {}).get(metric)
        per_file = {}
        for name in files:
            key = f"file:{name}" + (f"/form:{form}" if form else "")
            per_file[name] = scores.table(key).get(entity, {}).get(metric)
        out.append(
            {
                "entity": entity,
                "metric": metric,
                "form": form or "all",
                "threshold": threshold,
                "value": value,
                "by_file": per_file,
                "met": value is not None and value >= threshold,
            }
        )

    for entity in RECALL_99:
        for form in ("written", "spoken"):
            add(entity, "recall", form, 0.99)
    for entity in RECALL_95:
        add(entity, "recall", None, 0.95)
    for entity in PRECISION_95:
        add(entity, "precision", None, 0.95)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="a JSONL file (repeatable)")
    parser.add_argument(
        "--show-errors", type=int, default=0, metavar="N",
        help="print up to N misses and N false positives per entity, with text, to stderr",
    )  # fmt: skip
    args = parser.parse_args()
    paths = args.data or list(DEFAULT_DATA)

    redactor = redact.Redactor()
    stream_cls = getattr(redact, "RedactionStream", None)
    scores = Scores()
    shown: dict[tuple[str, str], int] = defaultdict(int)
    files = [p.name for p in paths]
    n_records = n_streamed = 0
    started = time.perf_counter()
    for path in paths:
        for record in load(path):
            n_records += 1
            withheld: list[tuple[int, int]] = []
            try:
                if record.get("segments") and stream_cls is not None:
                    found, withheld = stream_findings(record, redactor, stream_cls)
                    n_streamed += 1
                else:
                    found = [(f.start, f.end, f.entity) for f in redactor.find(record["text"])]
            except Exception as exc:  # noqa: BLE001 -- one failing record is reported, the bench goes on
                scores.errors.append(f"{record['id']}: {type(exc).__name__}")
                found = []
            form = record["form"]
            scopes = ["all", f"form:{form}", f"file:{path.name}", f"file:{path.name}/form:{form}"]
            for kind, entity, where in score_record(record, found, withheld, scores, scopes):
                ids = scores.misses if kind == "miss" else scores.false_positives
                if len(ids[entity]) < WORST and record["id"] not in ids[entity]:
                    ids[entity].append(record["id"])
                if shown[(kind, entity)] < args.show_errors:
                    shown[(kind, entity)] += 1
                    show(record, kind, entity, where, found)
    elapsed = time.perf_counter() - started

    target_list = targets(scores, files)
    result = {
        "stream": stream_cls is not None,
        "files": files,
        "records": n_records,
        "records_streamed": n_streamed,
        "seconds": round(elapsed, 2),
        "errors": scores.errors[:20],
        "error_count": len(scores.errors),
        "entities": scores.table("all"),
        "by_form": {form: scores.table(f"form:{form}") for form in ("written", "spoken")},
        "by_file": {name: scores.table(f"file:{name}") for name in files},
        "micro_target_entities": scores.micro("all", PRECISION_95),
        "targets": target_list,
        "targets_met": sum(t["met"] for t in target_list),
        "targets_total": len(target_list),
        "worst": {
            e: {
                "misses": scores.misses.get(e, []),
                "false_positives": scores.false_positives.get(e, []),
            }
            for e in redact.ENTITIES
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
