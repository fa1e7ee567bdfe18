"""Logging: one JSON line per record, with a redaction filter on every handler.

Code logs ids, counts, hashes and durations only. The filter is a second
wall: it masks anything that looks like a number of 4+ digits or an e-mail
address in the message and its arguments, so a mistake does not write a card
number or NHS number to disk.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_DIGITS = re.compile(r"(?<![A-Za-z0-9_])\d[\d \-]{2,}\d(?![A-Za-z0-9_])")
_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+\.[A-Za-z]{2,}")


def scrub(text: str) -> str:
    text = _EMAIL.sub("[EMAIL]", text)
    return _DIGITS.sub(
        lambda m: "[NUMBER]" if sum(c.isdigit() for c in m.group()) >= 4 else m.group(), text
    )


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            # Exception messages may quote content; keep the type only.
            exc_type = record.exc_info[0]
            record.msg += f" [{exc_type.__name__ if exc_type else 'exception'}]"
            record.exc_info = None
            record.exc_text = None
        return True


_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                out[key] = scrub(str(value)) if isinstance(value, str) else value
        return json.dumps(out, default=str)


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
