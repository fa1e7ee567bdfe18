"""Logging: one JSON line per record, with a redaction filter on every handler.

Code logs ids, counts, hashes and durations only. The filter is belt and
braces behind that rule: every string of a record (the formatted message,
each extra attribute, and the strings inside dict, list and tuple extras, to
:data:`MAX_DEPTH`) goes through :func:`scrub`, which

1. runs the redaction engine (:class:`callvault.redact.Redactor`, created on
   first use so importing this module stays cheap), then
2. masks e-mail addresses and any run of 4+ digits that is not part of an
   identifier, whether or not the engine classified it.

A record is always written: a text over the engine's limit becomes
``[too long: N chars]`` and a text the engine fails on becomes
``[redaction failed]`` (fail closed on content, never on logging). Both masks
in step 2 scan in linear time, so a huge string cannot stall the logger. A
record logged by the engine itself while it scrubs gets step 2 only, so the
pipeline cannot recurse.
"""

from __future__ import annotations

import json
import logging
import re
import string
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from callvault.redact import Redactor

#: How deep :func:`scrub_value` descends into dicts and lists of an extra.
MAX_DEPTH: Final = 6
REDACTION_FAILED: Final = "[redaction failed]"

_WORD: Final = frozenset(string.ascii_letters + string.digits + "_")
_DIGIT_RUN = re.compile(r"\d[\d \-]*")
_AT = re.compile("@")
_SCRUBBED: Final = "_callvault_scrubbed"

_redactor: Redactor | None = None
_redactor_lock = threading.Lock()
_inside = threading.local()  # set while this thread's engine runs: a log from it skips step 1


def _engine() -> Redactor:
    global _redactor  # noqa: PLW0603 - one lazily built engine per process, by design
    if _redactor is None:
        with _redactor_lock:
            if _redactor is None:
                # Deferred: the engine's tables load on the first record, not on import.
                from callvault.redact import Redactor  # noqa: PLC0415 - see the line above

                _redactor = Redactor()
    return _redactor


def scrub(text: str) -> str:
    """``text`` with every entity the engine finds, e-mail and 4+ digit run masked."""
    if not getattr(_inside, "engine", False):
        _inside.engine = True
        try:
            redactor = _engine()
            if len(text) > redactor.max_chars:
                return f"[too long: {len(text)} chars]"
            text = redactor.redact(text)
        except Exception:  # noqa: BLE001 - fail closed on content, never on writing the record
            return REDACTION_FAILED
        finally:
            _inside.engine = False
    return _mask_digits(_mask_emails(text))


def _mask_emails(text: str) -> str:
    r"""Replace what ``[^\s@"']+@[^\s@"']+\.[A-Za-z]{2,}`` matches, in linear time.

    (That regex backtracks quadratically on a long run without an ``@``.) For
    each ``@``: the local part is the run of allowed characters before it; the
    domain ends at the last ``.`` of the run after it that two ASCII letters
    follow, plus all the letters that follow it.
    """
    out: list[str] = []
    pos = 0  # end of the text already copied (or masked)
    for at_match in _AT.finditer(text):
        at = at_match.start()
        if at < pos:
            continue
        start = at
        while start > pos and _in_address(text[start - 1]):
            start -= 1
        end = at + 1
        while end < len(text) and _in_address(text[end]):
            end += 1
        dot = end - 3
        while dot >= at + 2 and not (
            text[dot] == "." and _ascii_letter(text[dot + 1]) and _ascii_letter(text[dot + 2])
        ):
            dot -= 1
        if start == at or dot < at + 2:
            continue
        stop = dot + 3
        while stop < end and _ascii_letter(text[stop]):
            stop += 1
        out += (text[pos:start], "[EMAIL]")
        pos = stop
    out.append(text[pos:])
    return "".join(out)


def _in_address(ch: str) -> bool:
    # The regex's [^\s@"'] (str.isspace() is exactly re's Unicode \s).
    return not (ch.isspace() or ch in "@\"'")


def _ascii_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _mask_digits(text: str) -> str:
    r"""Replace runs ``(?<!\w)\d[\d \-]{2,}\d(?!\w)`` (ASCII ``\w``) of 4+ digits, in linear time.

    The regex itself backtracks quadratically on long runs; but within one
    maximal run of digits, spaces and hyphens it can match only once, from the
    first digit not preceded by a word character to the last digit not
    followed by one, so each run is scanned from both ends instead.
    """

    def mask(m: re.Match[str]) -> str:
        a, b = m.span()
        first = next(
            (
                i
                for i in range(a, b)
                if text[i].isdecimal() and (i == 0 or text[i - 1] not in _WORD)
            ),
            -1,
        )
        if first < 0:
            return m.group()
        last = next(
            (
                j
                for j in range(b - 1, first + 2, -1)
                if text[j].isdecimal() and (j + 1 == len(text) or text[j + 1] not in _WORD)
            ),
            -1,
        )
        if last < 0 or sum(ch.isdecimal() for ch in text[first : last + 1]) < 4:
            return m.group()
        return f"{text[a:first]}[NUMBER]{text[last + 1 : b]}"

    return _DIGIT_RUN.sub(mask, text)


def scrub_value(value: object, depth: int = 0) -> object:
    """A JSON-ready copy of ``value`` with every string in it scrubbed (keys too).

    Numbers, booleans and None pass; any other object is logged as its
    scrubbed ``str()``; containers deeper than :data:`MAX_DEPTH` become
    ``[too deep]``.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value)
    if depth >= MAX_DEPTH and isinstance(value, dict | list | tuple | set | frozenset):
        return "[too deep]"
    if isinstance(value, dict):
        return {_scrub_key(k): scrub_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_value(v, depth + 1) for v in value]
    return _scrub_object(value)


def _scrub_key(key: object) -> object:
    # JSON keys: strings, or scalars json.dumps turns into strings itself.
    if key is None or isinstance(key, bool | int | float):
        return key
    return scrub(key) if isinstance(key, str) else _scrub_object(key)


def _scrub_object(value: object) -> str:
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - an object whose str() raises is logged as a marker
        return REDACTION_FAILED
    return scrub(text)


_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> list[str]:
    return [k for k in vars(record) if k not in _STD and not k.startswith("_")]


def scrub_record(record: logging.LogRecord) -> None:
    """Scrub ``record`` in place (once: a record passing several handlers is done once)."""
    if getattr(record, _SCRUBBED, False):
        return
    try:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not stop the record
            message = "[message could not be formatted]"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info:
            # Exception messages may quote content; keep the type only.
            exc_type = record.exc_info[0]
            record.msg += f" [{exc_type.__name__ if exc_type else 'exception'}]"
            record.exc_info = None
            record.exc_text = None
        for key in _extras(record):
            setattr(record, key, scrub_value(getattr(record, key)))
    except Exception:  # noqa: BLE001 - fail closed: drop what could not be scrubbed, keep the line
        record.msg = REDACTION_FAILED
        record.args = record.exc_info = record.exc_text = None
        for key in _extras(record):
            delattr(record, key)
    setattr(record, _SCRUBBED, True)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        scrub_record(record)  # a no-op behind RedactingFilter; the wall when used alone
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _extras(record):
            out[key] = getattr(record, key)
        return json.dumps(out, default=lambda _: REDACTION_FAILED)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
