"""``callvault demo``: seed the demo deployment with three calls through the real ingest path.

Steps (each through the server's own API or ingest WebSocket, so every
check, seal and audit entry a real call gets, these get):

1. Find espeak-ng (one readable error if it is missing), wait for the
   server to be ready.
2. With the owner's key: find or create the deployment and agent ``demo``
   and the QA reviewer, compliance officer and ingest principals; issue
   this run's keys (``_setup.py``).
3. Synthesise the three calls (``_speech.py``).
4. For each call, as the ingest principal: stream it over the generic live
   stream ``wss://…/v1/ingest/stream/{agent}`` as an agent with its own
   recogniser would (``_live.py``): audio, interim and final transcript
   segments as the audio passes them (word times from the synthesis), keypad
   reports. Card numbers said aloud are silenced while the audio is held and
   tokenized in the text; keyed ones are captured and tokenized.
5. Read each transcript back as the QA reviewer and as the compliance
   officer, so the report shows what each role is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from callvault.demo._http import Api, Target, wait_ready
from callvault.demo._live import stream_live
from callvault.demo._scripts import SCRIPTS, CallScript
from callvault.demo._setup import DemoSetup, ensure_setup
from callvault.demo._speech import CallAudio, Synthesiser, find_espeak, render
from callvault.errors import UnavailableError


@dataclass(frozen=True, slots=True)
class Line:
    speaker: str
    text: str


@dataclass(frozen=True, slots=True)
class DemoCall:
    call_id: str
    script: CallScript
    status: str
    audio_seconds: float
    #: The segments whose text differs between the two roles' views, as each sees them.
    qa_lines: tuple[Line, ...]
    compliance_lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class DemoResult:
    target: Target
    setup: DemoSetup
    calls: tuple[DemoCall, ...]
    #: The status a QA reviewer gets asking for a full (unmasked) recording.
    qa_full_recording_status: int
    seconds: float


def run_demo(
    target: Target, *, wait_s: float = 0.0, say: Callable[[str], None] = lambda _: None
) -> DemoResult:
    """Seed the demo (steps in the module docstring); ``say`` gets one progress line at a time."""
    began = time.monotonic()
    # (1)
    espeak = find_espeak()
    wait_ready(target, wait_s)
    context = target.context()
    # (2)
    with Api(target, target.key, context) as owner:
        setup = ensure_setup(owner)
        say(f"deployment {setup.deployment_id} and agent {setup.agent_id} (both named demo) ready")
        # (3)
        say("synthesising 3 calls with espeak-ng")
        speech = Synthesiser(espeak)
        audios = [render(script, speech) for script in SCRIPTS]
        # (4)
        done: list[tuple[str, CallAudio]] = []
        for n, audio in enumerate(audios, 1):
            live = stream_live(
                f"{target.ws_url}/v1/ingest/stream/{setup.agent_id}",
                audio,
                api_key=setup.ingest.key,
                context=context,
            )
            if live.late:
                raise UnavailableError(
                    f"the server silenced {live.late} span(s) of the {audio.script.name} call late"
                )
            say(
                f"call {n} of {len(audios)}: {audio.script.name} "
                f"({audio.seconds:.1f} s of audio) streamed as {live.call_id}: {live.status}"
            )
            done.append((live.call_id, audio))
    # (5)
    calls = []
    with (
        Api(target, setup.qa.key, context) as qa,
        Api(target, setup.compliance.key, context) as officer,
    ):
        for call_id, audio in done:
            seen_qa = qa.get(f"/v1/calls/{call_id}/transcript")["segments"]
            seen_co = officer.get(f"/v1/calls/{call_id}/transcript")["segments"]
            differ = [
                (a, b) for a, b in zip(seen_qa, seen_co, strict=True) if a["text"] != b["text"]
            ]
            calls.append(
                DemoCall(
                    call_id=call_id,
                    script=audio.script,
                    status=str(officer.get(f"/v1/calls/{call_id}")["status"]),
                    audio_seconds=audio.seconds,
                    qa_lines=tuple(Line(a["speaker"], a["text"]) for a, _ in differ),
                    compliance_lines=tuple(Line(b["speaker"], b["text"]) for _, b in differ),
                )
            )
        denied = qa.status(f"/v1/calls/{done[0][0]}/recording", {"view": "full"})
    return DemoResult(target, setup, tuple(calls), denied, time.monotonic() - began)
