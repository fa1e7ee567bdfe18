"""One Twilio Media Streams connection driving a :class:`~callvault.calls._ingest.CallIngest`.

Transport-agnostic: the WebSocket route hands every text frame to
:meth:`TwilioCall.feed`, calls :meth:`TwilioCall.poll` every few hundred
milliseconds, and :meth:`TwilioCall.close` exactly once when the socket ends
(after ``stop``, a drop, or a :class:`ProtocolError` it then reports with the
error's close code). Ordering, duplicates and gaps are
:class:`~callvault.calls._twilio_stream.TwilioStream`'s job; this class maps
its events onto the call:

- ``start``: who is calling is settled by ``identify`` (the route's
  authentication: an API key on the upgrade, or the ``callvault_key`` custom
  parameter for Twilio, which cannot send headers); when the deployment has a
  Twilio auth token (:mod:`callvault.calls._twilio_token`), the upgrade MUST
  carry its ``X-Twilio-Signature`` (:meth:`TwilioCall._check_signature`); the
  agent is the ``agent_id`` custom parameter and MUST belong to the deployment
  in the URL; then the call is created and its recording opened.
- ``media`` of the inbound (caller) track: audio at its sample offset; the
  outbound (agent) track is counted, not recorded (the agent's audio is the
  agent's own output and is recorded by the agent side if at all).
- a chunk jump comes out as silence: the offset moves on and the guard fills
  the hole with silence; a sequence gap marks the call incomplete.
- ``dtmf``: counted, never stored as a digit. The first digit opens a
  secure card capture (:class:`~callvault.calls._capture.DtmfCapture`):
  audio from a second before it is silenced until the capture ends (``#``,
  19 digits, or 5 s without a key), and the digits go to the tokenization
  vault; the call keeps a ``card_token`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_AUTHENTICATION
from callvault.calls._capture import CaptureEvent, DtmfCapture
from callvault.calls._ingest import CallIngest, EndReason, IngestSettings, IngestSummary
from callvault.calls._twilio import FRAME_BYTES, Dtmf, Gap, Media, ProtocolError, Silence, Start
from callvault.calls._twilio_signature import verify_signature
from callvault.calls._twilio_stream import StreamSummary, TwilioStream
from callvault.calls._twilio_token import TwilioAuthTokens
from callvault.errors import Error
from callvault.runtime import Runtime
from callvault.store.rows import AgentFields

log = logging.getLogger("callvault.calls.twilio")

AGENT_PARAMETER = "agent_id"
KEY_PARAMETER = "callvault_key"
INBOUND = "inbound"
SIGNATURE_HEADER = "X-Twilio-Signature"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who streams the call: settled by the route from its credentials.

    ``permit`` is the route's gate for creating a call on that agent: it raises
    (:class:`~callvault.errors.PermissionDeniedError`, audited by the gate) or returns.
    """

    tenant_id: str
    actor_id: str
    request_id: str | None
    permit: Callable[[AgentFields], None]


@dataclass(frozen=True, slots=True)
class SignedUpgrade:
    """What Twilio signed on the WebSocket upgrade, as the route saw it.

    ``url`` is the URL the route rebuilt for the upgrade (``wss`` under TLS,
    the ``Host`` header, path and query string as sent), None when it could
    not (no ``Host`` header); ``signature`` the ``X-Twilio-Signature`` header,
    None when absent.
    """

    url: str | None
    signature: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class TwilioCallSummary:
    stream: StreamSummary
    call: IngestSummary | None


class RefusedError(ProtocolError):
    """The stream's ``start`` names an agent or credentials the route does not accept."""


class TwilioCall:
    def __init__(
        self,
        rt: Runtime,
        *,
        deployment_id: str,
        identify: Callable[[Start], Caller],
        settings: IngestSettings | None = None,
        stream: TwilioStream | None = None,
        upgrade: SignedUpgrade | None = None,
    ) -> None:
        self.rt = rt
        self.deployment_id = deployment_id
        self._identify = identify
        self._upgrade = upgrade or SignedUpgrade(url=None, signature=None)
        self._settings = settings
        self.stream = stream or TwilioStream()
        self.ingest: CallIngest | None = None
        self._offset = 0  # next inbound sample number
        self._capture = DtmfCapture()
        self._outbound_frames = 0
        self._summary: TwilioCallSummary | None = None

    @property
    def call_id(self) -> str | None:
        return self.ingest.call_id if self.ingest else None

    def feed(self, frame: str | bytes) -> None:
        """One frame from Twilio. Raises :class:`ProtocolError` (the route closes the socket
        with its ``close_code`` and then calls :meth:`close`)."""
        for event in self.stream.feed(frame):
            self._handle(event)

    def poll(self) -> None:
        for event in self.stream.poll():
            self._handle(event)

    def close(self, reason: EndReason) -> TwilioCallSummary:
        """End the connection: seal what is held, store the recording, set the status."""
        if self._summary is not None:
            return self._summary
        end = self.stream.close(reason)
        for event in end.events:
            self._handle(event)
        call = None
        if self.ingest is not None:
            self._captured(self.ingest, self._capture.close(self._offset))
            # A stream that lost frames is not complete even if it ended with 'stop'.
            done = end.summary.status == "completed"
            ending: EndReason = "stop" if done else ("disconnect" if reason == "stop" else reason)
            call = self.ingest.close(ending)
        self._summary = TwilioCallSummary(end.summary, call)
        log.info(
            "twilio stream ended",
            extra={
                "call_id": self.call_id,
                "status": call.status if call else end.summary.status,
                "reason": reason,
                "frames": end.summary.frames,
                "lost": end.summary.lost,
                "error": end.summary.error,
                "chunks": call.chunks if call else 0,
                "chunk_p99_us": call.chunk_p99_us if call else 0,
            },
        )
        return self._summary

    # -- events --------------------------------------------------------------------------

    def _handle(self, event: object) -> None:
        if isinstance(event, Start):
            self._start(event)
            return
        ingest = self.ingest
        if ingest is None:
            return  # 'connected' (the stream refuses anything else before 'start')
        if isinstance(event, Media):
            if event.track == INBOUND:
                ingest.audio(event.payload, self._offset)
                self._offset += len(event.payload)
                if self._capture.capturing:
                    self._captured(ingest, self._capture.tick(self._offset))
            else:
                self._outbound_frames += 1
        elif isinstance(event, Silence):
            if event.track == INBOUND:
                self._offset += event.chunks * FRAME_BYTES
        elif isinstance(event, Gap):
            ingest.mark_broken()
        elif isinstance(event, Dtmf):
            ingest.dtmf_event()
            self._captured(ingest, self._capture.key(event.digit, self._offset))

    def _captured(self, ingest: CallIngest, events: list[CaptureEvent]) -> None:
        for ev in events:
            if ev.kind == "begin":
                ingest.begin_capture(ev.at)
            else:
                ingest.end_capture(ev.at)
                digits = self._capture.finish()
                if digits is not None:
                    ingest.tokenize_card(digits, "dtmf")

    def _start(self, start: Start) -> None:
        agent_id = start.custom_parameters.get(AGENT_PARAMETER)
        if not agent_id:
            raise RefusedError("missing-field", "customParameters.agent_id is required")
        caller = self._identify(start)
        self._check_signature(caller)
        from callvault import tenancy  # noqa: PLC0415 - tenancy imports calls' neighbours

        try:
            with self.rt.db.tenant_tx(caller.tenant_id) as s:
                agent = tenancy.read_agent(s, caller.tenant_id, agent_id)
        except Error:
            raise RefusedError("bad-field", "agent not found", field="agent_id") from None
        if agent.deployment_id != self.deployment_id:
            raise RefusedError("bad-field", "agent not found", field="agent_id")
        caller.permit(agent)
        self.ingest = CallIngest.start(
            self.rt,
            tenant_id=caller.tenant_id,
            agent_id=agent_id,
            actor_id=caller.actor_id,
            request_id=caller.request_id,
            codec="mulaw",
            sample_rate=start.sample_rate,
            settings=self._settings,
        )

    def _check_signature(self, caller: Caller) -> None:
        """Refuse the stream unless its upgrade carries the deployment's Twilio signature.

        Runs once the caller is authenticated (its tenant is known) and before
        the agent is looked up, the call created or any media accepted.

        1. Open the deployment's token in the caller's own tenant. A deployment
           of another tenant has none there: its stream goes on to be refused
           exactly as before (agent not found), and nothing says whether it has
           a token. A token that does not open raises (the route refuses).
        2. No token: nothing to check (the stream goes on as without one).
        3. The signature MUST sign the upgrade's URL under the token
           (:func:`verify_signature`: constant-time, URL with and without port).
        4. Missing or wrong: audit the denial (committed), log ids only, and
           refuse with 1008 and a reason naming the header, never a value.
           No call exists yet, so there is nothing to mark.
        """
        # (1):
        tokens = TwilioAuthTokens(self.rt.keys, self.rt.sealer)
        with self.rt.db.tenant_tx(caller.tenant_id) as s:
            token = tokens.open(s, caller.tenant_id, self.deployment_id)
        # (2):
        if token is None:
            return
        # (3):
        url, signature = self._upgrade.url, self._upgrade.signature
        if url is not None and signature and verify_signature(token.reveal(), url, signature):
            return
        # (4):
        reason = "missing" if not signature else "mismatch"
        self.rt.audit.append(
            caller.tenant_id,
            AuditEvent(
                action="ingest.twilio_signature",
                outcome=Outcome.DENIED,
                actor=caller.actor_id,
                resource_kind="deployment",
                resource_id=self.deployment_id,
                request_id=caller.request_id,
                ocsf_class=OCSF_AUTHENTICATION,
                detail={"reason": reason},
            ),
        )
        log.warning(
            "twilio stream refused: signature %s",
            reason,
            extra={"tenant_id": caller.tenant_id, "deployment_id": self.deployment_id},
        )
        if reason == "missing":
            raise RefusedError(
                "missing-field", f"{SIGNATURE_HEADER} is required", field=SIGNATURE_HEADER
            )
        raise RefusedError(
            "bad-field", f"{SIGNATURE_HEADER} does not match", field=SIGNATURE_HEADER
        )
