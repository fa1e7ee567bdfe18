"""What ``callvault demo`` prints: who was made, what each role reads, how to read it yourself.

The keys are printed here once (as ``callvault init`` prints the owner's);
the lines quoted from transcripts are the demo's synthetic calls, read back
through the API with each reviewer's own key.
"""

from __future__ import annotations

import shlex

from callvault.demo._run import DemoCall, DemoResult, Line
from callvault.demo._setup import KEY_TTL_DAYS, NAME


def _lines(title: str, lines: tuple[Line, ...]) -> list[str]:
    return [f"  {title}", *(f"    {line.speaker}: {line.text}" for line in lines)]


def _curl(key_var: str, path: str, out: str | None = None) -> str:
    save = f" -o {out}" if out else ""
    return f'  curl -s --cacert "$CA" -H "Authorization: Bearer ${key_var}"{save} "$CV{path}"'


def _call(n: int, total: int, call: DemoCall) -> list[str]:
    cid = call.call_id
    return [
        "",
        f"Call {n} of {total}: {call.script.name}, {call.script.shows}",
        f"  {cid}: {call.status}, {call.audio_seconds:.1f} s",
        *_lines("the QA reviewer reads:", call.qa_lines),
        *_lines("the compliance officer reads:", call.compliance_lines),
        _curl("QA_KEY", f"/v1/calls/{cid}/transcript"),
        _curl("QA_KEY", f"/v1/calls/{cid}/recording", f"{cid}-masked.wav"),
        _curl("CO_KEY", f"/v1/calls/{cid}/transcript"),
        _curl("CO_KEY", f"/v1/calls/{cid}/recording", f"{cid}-full.wav"),
    ]


def format_report(result: DemoResult) -> str:
    s = result.setup
    out = [
        (
            f"callvault demo: {len(result.calls)} calls seeded in {result.seconds:.1f} s "
            f"on {result.target.url}"
        ),
        "",
        (
            f"Deployment {s.deployment_id} and agent {s.agent_id} are both named {NAME!r}. "
            "Two reviewers hold roles on that deployment,"
        ),
        (
            f"each with a new API key (valid {KEY_TTL_DAYS} days; shown once, only a salted "
            "hash is kept):"
        ),
        (
            f"  QA reviewer          {s.qa.principal_id}  {s.qa.role}: "
            "redacted transcripts, masked recordings"
        ),
        (
            f"  compliance officer   {s.compliance.principal_id}  {s.compliance.role}: "
            "full transcripts and recordings"
        ),
        "",
        "To read the calls yourself, set these in a shell, then run the commands under each call:",
        f"  CV={shlex.quote(result.target.url)}",
        f"  CA={shlex.quote(str(result.target.ca.resolve()))}",
        f"  QA_KEY={s.qa.key}",
        f"  CO_KEY={s.compliance.key}",
    ]
    for n, call in enumerate(result.calls, 1):
        out += _call(n, len(result.calls), call)
    out += [
        "",
        (
            "The masked recording beeps what the transcript's redaction finds and silences "
            "audio no transcript segment accounts for."
        ),
        (
            "A QA reviewer asking for the full recording (?view=full) gets "
            f"{result.qa_full_recording_status}; the denial, and every read above, is in the "
            "audit log (/v1/audit/entries, as the owner)."
        ),
        (
            "Card numbers: neither is stored. The keyed one's tones and the spoken one's words "
            "were silenced while the audio was still held, before sealing; each became a token "
            "in the payments vault, and transcripts show only [CARD tok_… ending NNNN]."
        ),
    ]
    return "\n".join(out)
