"""Speed of the redaction engine against Presidio's regex-only analyzer, on the same segments.

Both engines see the same list of call-centre segments (5-40 words, written
and spoken PII mixed with ordinary talk): ``tests/data/redact/dev.jsonl``
(records with a "text" field) if it exists, ``--data FILE`` to choose
another, otherwise ~2,000 generated here with a fixed seed.

Measured calls: ours is ``Redactor().find(text)``; Presidio's is
``AnalyzerEngine.analyze(text, language="en")`` with ``NoOpNlpEngine`` (no
spaCy model is loaded or needed), the predefined recognizers for English
(``RecognizerRegistry.load_predefined_recognizers``) plus every UK
recognizer that configuration leaves disabled (``--presidio-add-us`` adds
the disabled US ones too); ``presidio_config`` lists exactly which. Both
only find; neither rewrites the text. Presidio's e-mail check calls
tldextract, which is pinned here to its bundled suffix list (no network).

Method: one warm-up pass per engine, then ``--passes`` timed passes,
alternating engines pass by pass so that this shared VM's drift (up to 2x
from minute to minute) falls on both alike. Each segment is timed with
``time.perf_counter_ns``; texts/s is segments over the summed wall time of
the passes. Prints one JSON object. Targets: ours >= 20x Presidio's
throughput, and p99 <= 1 ms per segment of up to 40 words.

Presidio is a bench-only dependency: ``scripts/venv dev bench``.

    python bench/redact_speed.py [--data FILE] [--passes 3] [--segments 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _calibration import calibration_us
from callvault.redact import Redactor, _engine

ROOT = Path(__file__).resolve().parent.parent
DEV_DATA = ROOT / "tests" / "data" / "redact" / "dev.jsonl"
MAX_WORDS = 40

# -- segments -------------------------------------------------------------------------

_DIGIT_WORDS = ["oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_FIRST = ["James", "Priya", "Olivia", "Mohammed", "Siobhan", "Tom", "Grace", "Wei", "Aisha", "Dan"]
_LAST = ["Smith", "Patel", "O'Brien", "Nowak", "Okafor", "Jones", "Chen", "Murphy", "Khan", "Evans"]
_STREETS = ["Acacia Avenue", "High Street", "Station Road", "Mill Lane", "Church Road", "Park View"]
_TOWNS = ["Leeds", "Bristol", "Croydon", "Swansea", "Glasgow", "Norwich", "Derby"]
_MONTHS = ["January", "March", "April", "June", "August", "October", "December"]
_ORDINALS = ["first", "third", "fifth", "twelfth", "nineteenth", "twenty second", "thirtieth"]
_DOMAINS = ["gmail.com", "outlook.com", "example.co.uk", "btinternet.com", "yahoo.co.uk"]
_FILLER = [
    "thanks for calling how can I help you today",
    "I'd like to check the balance on my account please",
    "can you hold on a second while I find it",
    "sorry could you repeat that for me",
    "I'm calling about my last bill it seems a bit high",
    "the payment didn't go through on Tuesday",
    "yeah that's right",
    "okay no problem at all",
    "let me just bring up your details",
    "is there anything else I can help you with",
    "I moved house last month so the address has changed",
    "the line is quite bad sorry",
    "I was charged twice for the same order",
    "could you send me a copy by post",
    "right I see what you mean",
    "that should be sorted within three to five working days",
    "I've been a customer for about twelve years",
    "my daughter usually deals with this",
    "it's for the direct debit",
    "we'll need to run a quick security check first",
]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _nhs(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
    bban += "".join(rng.choice("0123456789") for _ in range(14))
    numeric = "".join(str(int(c, 36)) for c in bban + "GB00")
    check = 98 - int(numeric) % 97
    raw = f"GB{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _spoken(digits: str, rng: random.Random) -> str:
    words: list[str] = []
    i = 0
    while i < len(digits):
        run = 1
        while i + run < len(digits) and digits[i + run] == digits[i] and run < 3:
            run += 1
        word = _DIGIT_WORDS[int(digits[i])]
        if digits[i] == "0" and rng.random() < 0.4:
            word = "zero"
        if run > 1 and rng.random() < 0.7:
            words.append(("double " if run == 2 else "triple ") + word)
            i += run
        else:
            words.append(word)
            i += 1
    return " ".join(words)


def _grouped(digits: str, sizes: tuple[int, ...], sep: str = " ") -> str:
    out, pos = [], 0
    for size in sizes:
        out.append(digits[pos : pos + size])
        pos += size
    return sep.join(out)


def _card(rng: random.Random, spoken: bool) -> str:
    card = _luhn_complete(rng.choice(["4", "51", "53", "55"]), 16, rng)
    said = _spoken(card, rng) if spoken else _grouped(card, (4, 4, 4, 4), rng.choice(" -"))
    return f"the long number on the card is {said}"


def _expiry_and_cvv(rng: random.Random, spoken: bool) -> str:
    mm, yy = f"{rng.randrange(1, 13):02d}", f"{rng.randrange(25, 32)}"
    said = f"{_spoken(mm, rng)} {_spoken(yy, rng)}" if spoken else f"{mm}/{yy}"
    cvv = "".join(rng.choice("0123456789") for _ in range(3))
    return f"expiry {said} and the security code is {_spoken(cvv, rng) if spoken else cvv}"


def _phone(rng: random.Random, spoken: bool) -> str:
    phone = "07" + "".join(rng.choice("0123456789") for _ in range(9))
    said = _spoken(phone, rng) if spoken else _grouped(phone, (5, 6))
    return f"you can reach me on {said}"


def _nhs_number(rng: random.Random, spoken: bool) -> str:
    nhs = _nhs(rng)
    said = _spoken(nhs, rng) if spoken else _grouped(nhs, (3, 3, 4), rng.choice(" -"))
    return f"my NHS number is {said}"


def _nino(rng: random.Random, spoken: bool) -> str:
    letters = "".join(rng.choice("ABCEGHJKLMNPRSTWXYZ") for _ in range(2))
    num = "".join(rng.choice("0123456789") for _ in range(6))
    suffix = rng.choice("ABCD")
    if spoken:
        return f"national insurance {' '.join(letters)} {_spoken(num, rng)} {suffix}"
    return f"national insurance number {letters} {_grouped(num, (2, 2, 2))} {suffix}"


def _bank(rng: random.Random, spoken: bool) -> str:
    code = "".join(rng.choice("0123456789") for _ in range(6))
    said = _spoken(code, rng) if spoken else _grouped(code, (2, 2, 2), "-")
    account = "".join(rng.choice("0123456789") for _ in range(8))
    return f"sort code {said} account number {_spoken(account, rng) if spoken else account}"


def _birth(rng: random.Random, spoken: bool) -> str:
    if spoken:
        year = rng.choice(["forty", "sixty two", "seventy", "eighty four"])
        return f"date of birth the {rng.choice(_ORDINALS)} of {rng.choice(_MONTHS)} nineteen {year}"
    day, month, year_n = rng.randrange(1, 29), rng.randrange(1, 13), rng.randrange(1940, 2005)
    return f"I was born on {day:02d}/{month:02d}/{year_n}"


def _email(rng: random.Random, spoken: bool) -> str:
    user = f"{rng.choice(_FIRST).lower()}.{rng.choice(_LAST).lower().replace(chr(39), '')}"
    domain = rng.choice(_DOMAINS)
    if spoken:
        return f"my email is {user.replace('.', ' dot ')} at {domain.replace('.', ' dot ')}"
    return f"email it to {user}@{domain}"


def _postcode(rng: random.Random, spoken: bool) -> str:
    district = f"{rng.choice(['SW', 'M', 'LS', 'B', 'CF', 'G'])}{rng.randrange(1, 20)}"
    sector = f"{rng.randrange(1, 10)}" + "".join(rng.choices("ABDEFGHJLNPQRSTUWXYZ", k=2))
    if spoken:
        return f"postcode is {' '.join(district)} {' '.join(sector)}"
    return f"the postcode is {district} {sector}"


def _address(rng: random.Random, _spoken: bool) -> str:
    return f"I live at {rng.randrange(1, 200)} {rng.choice(_STREETS)} in {rng.choice(_TOWNS)}"


def _name(rng: random.Random, spoken: bool) -> str:
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return f"this is {name} speaking" if spoken else f"the account is in the name of {name}"


def _ssn(rng: random.Random, spoken: bool) -> str:
    ssn = f"{rng.randrange(1, 666):03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
    said = _spoken(ssn, rng) if spoken else _grouped(ssn, (3, 2, 4), "-")
    return f"my social security number is {said}"


def _iban_phrase(rng: random.Random, _spoken: bool) -> str:
    return f"pay it into {_iban(rng)} please"


_PHRASES: list[Callable[[random.Random, bool], str]] = [
    _card,
    _card,
    _expiry_and_cvv,
    _phone,
    _nhs_number,
    _nino,
    _bank,
    _birth,
    _email,
    _postcode,
    _address,
    _name,
    _ssn,
    _iban_phrase,
]


def _pii_phrase(rng: random.Random) -> str:
    return rng.choice(_PHRASES)(rng, rng.random() < 0.5)


def generate(n: int, seed: int) -> list[str]:
    """``n`` segments of 5-40 words; about 60% carry one or two PII phrases."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        parts: list[str] = []
        if rng.random() < 0.6:
            parts.append(_pii_phrase(rng))
            if rng.random() < 0.2:
                parts.append(_pii_phrase(rng))
        target = rng.choice([5, 8, 12, 16, 20, 25, 30, 40])
        while sum(len(p.split()) for p in parts) < target:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(_FILLER))
        words = " ".join(parts).split()
        if len(words) > MAX_WORDS:
            # Drop filler, never cut a PII phrase: rebuild from the fewest parts.
            while len(parts) > 1 and sum(len(p.split()) for p in parts) > MAX_WORDS:
                filler = [i for i, p in enumerate(parts) if p in _FILLER]
                parts.pop(filler[-1] if filler else -1)
            words = " ".join(parts).split()[:MAX_WORDS]
        out.append(" ".join(words))
    return out


def load(path: Path) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as f:
        for raw in f:
            if raw.strip():
                record = json.loads(raw)
                if isinstance(record, dict) and isinstance(record.get("text"), str):
                    texts.append(record["text"])
    if not texts:
        raise SystemExit(f"redact_speed: no records with a 'text' field in {path}")
    return texts


# -- Presidio -------------------------------------------------------------------------


def presidio(add_us: bool) -> tuple[Callable[[str], list[Any]], dict[str, Any]]:
    """Presidio's AnalyzerEngine, regex-only, and what it was configured with."""
    # No network: tldextract (Presidio's e-mail check) would fetch the public
    # suffix list on first use; pin it to the snapshot it ships.
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    try:
        import tldextract  # noqa: PLC0415 - a bench-only dependency, imported when measured
        import tldextract.tldextract  # noqa: PLC0415 - same
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # noqa: PLC0415 - same
        from presidio_analyzer.nlp_engine import NoOpNlpEngine  # noqa: PLC0415 - same
        from presidio_analyzer.predefined_recognizers.country_specific import (  # noqa: PLC0415 - same
            uk,
            us,
        )
    except ImportError:
        print(
            "redact_speed: presidio-analyzer is not installed; run `scripts/venv dev bench`",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    import logging  # noqa: PLC0415 - only to quiet Presidio's per-call warnings

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    defaults = sorted(r.name for r in registry.recognizers)
    added: list[str] = []
    not_added: list[str] = []
    extra = [(uk, name) for name in uk.__all__] + [(us, name) for name in us.__all__]
    for module, name in extra:
        if name in defaults:
            continue
        if module is us and not add_us:
            not_added.append(name)
            continue
        recognizer = getattr(module, name)()
        registry.add_recognizer(recognizer)
        added.append(recognizer.name)
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])

    def analyze(text: str) -> list[Any]:
        return list(engine.analyze(text=text, language="en"))

    config = {
        "version": importlib.metadata.version("presidio-analyzer"),
        "nlp_engine": f"{type(nlp).__module__}.{type(nlp).__name__}",
        "language": "en",
        "measured": 'AnalyzerEngine.analyze(text, language="en")',
        "predefined_recognizers": defaults,
        "added_recognizers": sorted(added),
        "disabled_us_recognizers_not_added": sorted(not_added),
        "recognizers_total": len(registry.recognizers),
        "tldextract": "bundled suffix-list snapshot, no fetch",
    }
    return analyze, config


# -- measuring ------------------------------------------------------------------------


def one_pass(fn: Callable[[str], object], texts: list[str]) -> tuple[list[int], int]:
    """Per-segment nanoseconds, and the pass's wall time in nanoseconds."""
    samples = []
    gc.collect()
    start = time.perf_counter_ns()
    for text in texts:
        t0 = time.perf_counter_ns()
        fn(text)
        samples.append(time.perf_counter_ns() - t0)
    return samples, time.perf_counter_ns() - start


def _pct(ordered: list[int], q: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000, 1)


def summary(samples: list[int], wall_ns: int, short: list[int]) -> dict[str, Any]:
    ordered, short_ordered = sorted(samples), sorted(short)
    return {
        "texts_per_s": round(len(samples) / (wall_ns / 1e9), 1),
        "p50_us": _pct(ordered, 0.50),
        "p99_us": _pct(ordered, 0.99),
        "max_us": round(ordered[-1] / 1000, 1),
        "mean_us": round(statistics.fmean(ordered) / 1000, 1),
        "p99_le_40_words_us": _pct(short_ordered, 0.99) if short_ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="JSONL with a 'text' field per record")
    parser.add_argument("--segments", type=int, default=2000, help="how many to generate")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per engine (>= 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--presidio-add-us",
        action="store_true",
        help="also add the US recognizers Presidio's default configuration disables",
    )
    args = parser.parse_args()
    passes = max(3, args.passes)

    analyze, presidio_config = presidio(args.presidio_add_us)
    data_path = args.data or (DEV_DATA if DEV_DATA.exists() else None)
    if data_path is not None:
        texts, source = load(data_path), str(data_path)
    else:
        texts, source = generate(args.segments, args.seed), f"generated (seed {args.seed})"
    words = [len(t.split()) for t in texts]
    short = [i for i, w in enumerate(words) if w <= MAX_WORDS]

    redactor = Redactor()
    engines: dict[str, Callable[[str], object]] = {"ours": redactor.find, "presidio": analyze}
    for fn in engines.values():  # warm-up: compiled patterns, caches, first-call imports
        one_pass(fn, texts)
    samples: dict[str, list[int]] = {name: [] for name in engines}
    walls = dict.fromkeys(engines, 0)
    calibration = [calibration_us()]  # before the first pass and after each
    for _ in range(passes):
        for name, fn in engines.items():
            s, wall = one_pass(fn, texts)
            samples[name] += s
            walls[name] += wall
        calibration.append(calibration_us())

    results = {
        name: {
            **summary(
                samples[name],
                walls[name],
                [samples[name][p * len(texts) + i] for p in range(passes) for i in short],
            ),
        }
        for name in engines
    }
    results["ours"]["measured"] = "callvault.redact.Redactor().find(text)"
    # Which core ran: the mypyc build (scripts/build-redact-fast) or the interpreted modules.
    results["ours"]["core"] = _engine.CORE.__name__
    findings = sum(len(redactor.find(t)) for t in texts)
    results["ours"]["findings"] = findings
    results["presidio"]["findings"] = sum(len(analyze(t)) for t in texts)
    ratio = results["ours"]["texts_per_s"] / results["presidio"]["texts_per_s"]
    p99_short = results["ours"]["p99_le_40_words_us"]
    print(
        json.dumps(
            {
                "bench": "redact_speed",
                "data": {
                    "source": source,
                    "segments": len(texts),
                    "segments_le_40_words": len(short),
                    "words_per_segment": {
                        "min": min(words),
                        "p50": statistics.median(words),
                        "mean": round(statistics.fmean(words), 1),
                        "max": max(words),
                    },
                },
                "passes": passes,
                "ours": results["ours"],
                "presidio": results["presidio"],
                "ratio_throughput": round(ratio, 2),
                "targets": {
                    "ratio_ge_20": ratio >= 20,
                    "p99_le_1ms": p99_short is not None and p99_short <= 1000,
                },
                "presidio_config": presidio_config,
                "python": f"{platform.python_implementation()} {platform.python_version()}",
                "machine": platform.machine(),
                "calibration_us": statistics.median(calibration),
            }
        )
    )


if __name__ == "__main__":
    main()
