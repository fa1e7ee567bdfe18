"""`callvault demo` against a real `callvault serve`: its calls, each role's view, nothing leaked.

A data directory is made by `callvault init`, a server started on it, and
`callvault demo` run twice as a process (the owner key from `--key-file`,
the server from `--url`/`--ca`). While the server runs, every call is read
through the API as the owner (metadata), the QA reviewer and the compliance
officer (keys as the demo printed them). After it stops, every transcript
segment, event and recording of the demo's calls is decrypted through the
runtime and searched for the card numbers, and so is every file under the
data directory, raw.
"""

from __future__ import annotations

import json
import re
import subprocess
import wave
from array import array
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from callvault.calls._dtmf import detect_dtmf_mulaw
from callvault.calls._recording import open_recording, recording_context
from callvault.calls._store import _ctx
from callvault.config import load_settings
from callvault.demo import KEYED_CARD, SCRIPTS, SPOKEN_CARD
from callvault.keys import KeyOwner
from callvault.redact import mulaw_decode
from callvault.runtime import Runtime
from callvault.store.models import Call, CallEvent, Deployment, Recording, TranscriptSegment
from tests.integration.audio.speech import require_espeak
from tests.integration.test_serve_tls import (
    Server,
    child_env,
    line_value,
    run_cli,
    start_server,
    stderr_lines,
    stop_server,
)

pytestmark = pytest.mark.server

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DOB_SPOKEN = "fourteenth of March nineteen eighty four"
NHS = "9434765919"
ACCOUNT = "31926814"
NAME = "Jane Smith"
_CALL_LINE = re.compile(r"^call (\d) of 3: (.+?) \(.*\) streamed as (call_\w+): (\w+)$", re.M)
_TOKEN_DISPLAY = r"\[CARD tok_[A-Za-z0-9#]+ ending {last4}\]"


def spoken(digits: str) -> str:
    return " ".join(DIGIT_WORDS[int(d)] for d in digits)


#: Every card number as it could be written down, spoken or keyed.
CARD_FORMS = (KEYED_CARD, SPOKEN_CARD, spoken(KEYED_CARD), spoken(SPOKEN_CARD))


@dataclass
class Views:
    """One call as each principal got it through the API."""

    call_id: str
    script: str
    owner: dict[str, Any]
    qa: dict[str, Any]
    compliance: dict[str, Any]
    qa_full_transcript_status: int
    qa_full_recording_status: int
    qa_recording: bytes
    compliance_recording: bytes


@dataclass
class Stored:
    """One call as the runtime opens it from storage."""

    segments: list[dict[str, Any]]
    events: list[tuple[str, dict[str, Any] | None]]
    recording: bytes


@dataclass
class Seeded:
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    views: dict[str, Views]
    agent_calls: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    principals: list[dict[str, Any]]
    stored: dict[str, Stored]
    #: Every file under the data directory (database, object store, keyring), raw.
    files: dict[Path, bytes]


def _calls_of(stdout: str) -> dict[str, tuple[str, str]]:
    """script name -> (call id, status) from the demo's progress lines."""
    return {m.group(2): (m.group(3), m.group(4)) for m in _CALL_LINE.finditer(stdout)}


def _key(stdout: str, var: str) -> str:
    return line_value(stdout, f"  {var}=")


def _wav_pcm(data: bytes) -> array[int]:
    with wave.open(BytesIO(data)) as w:
        return array("h", w.readframes(w.getnframes()))


def _read_views(server: Server, owner_key: str, stdout: str) -> dict[str, Views]:
    qa_key, co_key = _key(stdout, "QA_KEY"), _key(stdout, "CO_KEY")
    views = {}
    with server.client() as c:

        def get(key: str, path: str, **params: str) -> httpx.Response:
            return c.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

        for script, (call_id, _) in _calls_of(stdout).items():
            base = f"/v1/calls/{call_id}"
            views[script] = Views(
                call_id=call_id,
                script=script,
                owner=get(owner_key, base).json(),
                qa=get(qa_key, f"{base}/transcript").json(),
                compliance=get(co_key, f"{base}/transcript").json(),
                qa_full_transcript_status=get(
                    qa_key, f"{base}/transcript", view="full"
                ).status_code,
                qa_full_recording_status=get(qa_key, f"{base}/recording", view="full").status_code,
                qa_recording=get(qa_key, f"{base}/recording").content,
                compliance_recording=get(co_key, f"{base}/recording").content,
            )
    return views


def _open_stored(data: Path, tenant: str, call_ids: list[str]) -> dict[str, Stored]:
    """Each call's transcript segments, event details and recording, decrypted."""
    rt = Runtime.open(load_settings(child_env(data_dir=data)))
    stored = {}
    try:
        for call_id in call_ids:
            with rt.db.tenant_tx(tenant) as s:
                call = s.execute(select(Call).where(Call.id == call_id)).scalar_one()

                def opened(sealed: bytes, purpose: str, seq: int, call: Call = call) -> Any:
                    ctx = _ctx(call, purpose, f"{call.id}/{seq}")
                    return json.loads(rt.sealer.open(s, sealed, ctx))

                segments = [
                    opened(row.sealed, "transcript-segment", row.seq)
                    for row in s.execute(
                        select(TranscriptSegment).where(TranscriptSegment.call_id == call.id)
                    ).scalars()
                ]
                events = [
                    (row.kind, opened(row.detail_sealed, "call-event", row.seq))
                    if row.detail_sealed is not None
                    else (row.kind, None)
                    for row in s.execute(
                        select(CallEvent).where(CallEvent.call_id == call.id)
                    ).scalars()
                ]
                rec = s.execute(select(Recording).where(Recording.call_id == call.id)).scalar_one()
                owner = KeyOwner(tenant, call.deployment_id, "call", call.id)
                key = rt.keys.data_key(s, owner, create=False)
                region = s.execute(
                    select(Deployment.region).where(Deployment.id == call.deployment_id)
                ).scalar_one()
            audio = open_recording(
                key,
                rt.objects.for_region(region).get(rec.object_ref),
                recording_context(tenant, call.deployment_id, call.id),
            )
            stored[call_id] = Stored(segments, events, bytes(audio))
    finally:
        rt.close()
    return stored


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    require_espeak()
    root = tmp_path_factory.mktemp("demo")
    data = root / "data"
    init = run_cli("init", env=child_env(data_dir=data))
    assert init.returncode == 0, init.stderr
    owner_key, tenant = line_value(init.stdout, "api key"), line_value(init.stdout, "tenant")
    key_file = root / "owner.key"
    key_file.write_text(owner_key + "\n", encoding="ascii")
    key_file.chmod(0o600)
    server = start_server(data, root, "demo")
    try:
        argv = ("demo", "--url", server.url, "--ca", str(server.cert), "--key-file", str(key_file))
        env = child_env(data_dir=data)
        first = run_cli(*argv, env=env)
        assert first.returncode == 0, first.stderr
        second = run_cli(*argv, env=env)
        views = _read_views(server, owner_key, first.stdout)
        with server.client() as c:
            auth = {"Authorization": f"Bearer {owner_key}"}
            deployments = c.get("/v1/deployments", headers=auth).json()
            demo_dep = next(d for d in deployments if d["name"] == "demo")
            agents = c.get(f"/v1/deployments/{demo_dep['id']}/agents", headers=auth).json()
            agent_calls = c.get(
                "/v1/calls", params={"agent_id": agents[0]["id"]}, headers=auth
            ).json()
            principals = c.get("/v1/principals", headers=auth).json()
    finally:
        stop_server(server)
    stored = _open_stored(data, tenant, [v.call_id for v in views.values()])
    files = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    return Seeded(first, second, views, agent_calls, deployments, principals, stored, files)


def _texts(transcript: dict[str, Any]) -> list[str]:
    """Every piece of text a transcript view shows: segment texts and word texts."""
    out = []
    for seg in transcript["segments"]:
        out.append(seg["text"])
        out.extend(w["text"] for w in seg["words"])
    return out


def _caller_text(transcript: dict[str, Any]) -> str:
    return "\n".join(s["text"] for s in transcript["segments"] if s["speaker"] == "caller")


# -- the run -----------------------------------------------------------------------------


def test_demo_streams_three_calls_that_complete(seeded: Seeded) -> None:
    assert seeded.first.returncode == 0, seeded.first.stderr
    assert {v.script for v in seeded.views.values()} == {s.name for s in SCRIPTS}
    for v in seeded.views.values():
        assert v.owner["status"] == "completed", v.script
        assert v.owner["segment_count"] == len(v.compliance["segments"]) > 0
        assert v.qa["call_id"] == v.compliance["call_id"] == v.call_id


def test_a_second_run_adds_calls_and_reuses_the_setup(seeded: Seeded) -> None:
    assert seeded.second.returncode == 0, seeded.second.stderr
    assert len(seeded.agent_calls) == 6
    assert {c["status"] for c in seeded.agent_calls} == {"completed"}
    assert [d["name"] for d in seeded.deployments].count("demo") == 1
    demo = [p for p in seeded.principals if p["name"].startswith("demo-")]
    assert sorted(p["name"] for p in demo) == [
        "demo-compliance-officer",
        "demo-ingest",
        "demo-qa-reviewer",
    ]
    roles = {p["name"]: [b["role"] for b in p["bindings"]] for p in demo}
    assert roles == {
        "demo-compliance-officer": ["compliance_officer"],
        "demo-ingest": ["ingest"],
        "demo-qa-reviewer": ["qa_reviewer"],
    }
    # Each run printed its own keys (a key is shown once).
    assert _key(seeded.first.stdout, "QA_KEY") != _key(seeded.second.stdout, "QA_KEY")


def test_the_report_prints_the_read_commands_for_both_roles(seeded: Seeded) -> None:
    out = seeded.first.stdout
    for v in seeded.views.values():
        for var in ("QA_KEY", "CO_KEY"):
            assert f'Bearer ${var}" "$CV/v1/calls/{v.call_id}/transcript"' in out
            assert f'"$CV/v1/calls/{v.call_id}/recording"' in out


# -- what each role reads ----------------------------------------------------------------


def test_the_qa_reviewer_reads_redacted_transcripts(seeded: Seeded) -> None:
    for v in seeded.views.values():
        assert v.qa["view"] == "redacted"
        for text in _texts(v.qa):
            digits = re.sub(r"\D", "", text)
            for number in (NHS, ACCOUNT, KEYED_CARD, SPOKEN_CARD):
                assert number not in digits, v.script
            assert not set(text.lower().split()) & set(DIGIT_WORDS), (v.script, text)
            assert NAME not in text
            assert "fourteenth" not in text
    booking = _caller_text(seeded.views["appointment booking"].qa)
    assert "[DATE_OF_BIRTH]" in booking
    assert "[NHS_NUMBER]" in booking
    enquiry = _caller_text(seeded.views["account enquiry"].qa)
    assert "[BANK_ACCOUNT]" in enquiry
    assert "[PERSON]" in enquiry
    # The spoken card is its token's display (the numeric mask hides its last four too).
    card = _caller_text(seeded.views["card payment"].qa)
    assert re.search(_TOKEN_DISPLAY.format(last4="(?:####|4444)"), card), card


def test_the_compliance_officer_reads_full_transcripts_with_card_tokens_only(
    seeded: Seeded,
) -> None:
    views = seeded.views
    assert {v.compliance["view"] for v in views.values()} == {"full"}
    booking = _caller_text(views["appointment booking"].compliance)
    assert DOB_SPOKEN in booking
    assert spoken(NHS) in booking
    enquiry = _caller_text(views["account enquiry"].compliance)
    assert spoken(ACCOUNT) in enquiry
    assert NAME in enquiry
    card = views["card payment"].compliance
    assert re.search(_TOKEN_DISPLAY.format(last4=SPOKEN_CARD[-4:]), _caller_text(card))
    words = [w["text"] for s in card["segments"] for w in s["words"]]
    assert words.count("[CARD]") == len(SPOKEN_CARD)
    for v in views.values():
        for text in _texts(v.compliance):
            for form in CARD_FORMS:
                assert form not in text, v.script


def test_the_qa_reviewer_may_open_neither_full_view(seeded: Seeded) -> None:
    for v in seeded.views.values():
        assert v.qa_full_transcript_status == 403
        assert v.qa_full_recording_status == 403


def test_the_qa_reviewer_hears_a_masked_recording_and_the_officer_the_full_one(
    seeded: Seeded,
) -> None:
    for v in seeded.views.values():
        masked, full = _wav_pcm(v.qa_recording), _wav_pcm(v.compliance_recording)
        assert len(masked) == len(full) > 8000 * 10
        assert any(full), v.script
        # Over the caller's spoken numbers the two differ (beeped for the QA reviewer).
        numbers = [
            w
            for s in v.compliance["segments"]
            if s["speaker"] == "caller"
            for w in s["words"]
            if w["text"] in DIGIT_WORDS or w["text"] == "[CARD]"
        ]
        assert numbers, v.script
        for w in numbers:
            span = slice(w["start_ms"] * 8, w["end_ms"] * 8)
            assert masked[span] != full[span], (v.script, w["start_ms"])


# -- what is stored ----------------------------------------------------------------------


def test_no_stored_byte_or_decrypted_transcript_or_event_holds_a_card_number(
    seeded: Seeded,
) -> None:
    assert seeded.stored
    for call_id, stored in seeded.stored.items():
        body = json.dumps([stored.segments, stored.events])
        for form in CARD_FORMS:
            assert form not in body, call_id
    assert any(p.name == "callvault.db" for p in seeded.files)
    for path, raw in seeded.files.items():
        for form in CARD_FORMS:
            assert form.encode() not in raw, path
    # The keyed card was captured: its token event (last four only) is on the card call.
    card_call = seeded.views["card payment"].call_id
    tokens = [d for kind, d in seeded.stored[card_call].events if kind == "card_token"]
    assert tokens, seeded.stored[card_call].events
    assert [(t["source"], t["last4"], t["digits"]) for t in tokens] == [
        ("dtmf", KEYED_CARD[-4:], len(KEYED_CARD))
    ]


def test_no_keypad_tone_survives_in_a_stored_recording(seeded: Seeded) -> None:
    for call_id, stored in seeded.stored.items():
        assert len(stored.recording) > 8000 * 10, call_id
        assert any(b != 0xFF for b in stored.recording), call_id  # not all silence
        assert detect_dtmf_mulaw(stored.recording) == [], call_id


def test_the_spoken_card_is_silent_in_the_stored_recording(seeded: Seeded) -> None:
    view = seeded.views["card payment"]
    pcm = array("h", mulaw_decode(seeded.stored[view.call_id].recording))
    words = [w for s in view.compliance["segments"] for w in s["words"] if w["text"] == "[CARD]"]
    assert words
    for w in words:
        assert not any(pcm[w["start_ms"] * 8 : w["end_ms"] * 8]), w["start_ms"]


# -- failures: one line, non-zero --------------------------------------------------------


def test_without_espeak_ng_the_demo_says_how_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = child_env(data_dir=tmp_path / "data") | {
        "PATH": str(empty),
        "CALLVAULT_API_KEY": "cv1.not.a.key",
    }
    proc = run_cli("demo", env=env)
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("callvault: ")
    assert "apt-get install espeak-ng" in lines[0]


def test_without_an_owner_key_the_demo_says_where_to_put_it(tmp_path: Path) -> None:
    proc = run_cli("demo", env=child_env(data_dir=tmp_path / "data"))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "CALLVAULT_API_KEY" in lines[0]
    assert "--key-file" in lines[0]


def test_a_key_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.key"
    proc = run_cli("demo", "--key-file", str(missing), env=child_env(data_dir=tmp_path / "d"))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert str(missing) in lines[0]
    assert not (tmp_path / "d").exists()  # the demo never touches a data directory
