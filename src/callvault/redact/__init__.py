"""PII/PHI redaction: the engine, its streaming form, audio masking.

:class:`Redactor` finds entities (:data:`ENTITIES`) in written and ASR-style
text, including numbers said as words; :func:`mask_numbers` is the older,
over-broad mask kept for callers not yet moved to the engine.
"""

from callvault.redact._audio import (
    AudioMasker,
    mask_intervals,
    mask_intervals_for_segments,
    mask_mulaw,
    mask_pcm16,
    mulaw_decode,
    mulaw_encode,
)
from callvault.redact._engine import (
    DEFAULT_MAX_CHARS,
    NerBackend,
    Pseudonyms,
    Redactor,
    apply,
    spoken_digits,
)
from callvault.redact._interim import mask_numbers
from callvault.redact._stream import RedactionStream, Released
from callvault.redact._types import ENTITIES, Finding, Segment, Word, word_spans

__all__ = [
    "DEFAULT_MAX_CHARS",
    "ENTITIES",
    "AudioMasker",
    "Finding",
    "NerBackend",
    "Pseudonyms",
    "RedactionStream",
    "Redactor",
    "Released",
    "Segment",
    "Word",
    "apply",
    "mask_intervals",
    "mask_intervals_for_segments",
    "mask_mulaw",
    "mask_numbers",
    "mask_pcm16",
    "mulaw_decode",
    "mulaw_encode",
    "spoken_digits",
    "word_spans",
]
