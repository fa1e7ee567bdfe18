"""Request and response bodies. Requests refuse unknown fields and coerce no types."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from callvault.access import Role, ScopeKind
from callvault.store.ids import ID_PATTERN
from callvault.tenancy import KnowledgeDocument, Region, ToolDefinition
from callvault.tenancy._settings import JsonObject, Name

if TYPE_CHECKING:
    from callvault.calls import TranscriptView

Id = Annotated[StrictStr, Field(pattern=ID_PATTERN, max_length=40)]
Millis = Annotated[StrictInt, Field(ge=0, le=86_400_000)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Patch(In):
    """A partial update: absent fields stay as they are; ``null`` is not a value here."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None:
                    raise PydanticCustomError(
                        "null_in_patch",
                        "{field}: null is not allowed; omit the field to keep it",
                        {"field": str(name)},
                    )
        return data


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- tenants, deployments, agents --------------------------------------------


class TenantPatch(Patch):
    name: Name | None = None


class RetentionPatch(Patch):
    recordings_days: Annotated[StrictInt, Field(ge=1, le=3650)] | None = None
    transcripts_days: Annotated[StrictInt, Field(ge=1, le=3650)] | None = None


class DeploymentPatch(Patch):
    name: Name | None = None
    region: Region | None = None
    retention: RetentionPatch | None = None
    key_provider: Literal["local", "aws-kms", "gcp-kms", "pkcs11", "vault-transit"] | None = None
    key_ref: Annotated[StrictStr, Field(min_length=1, max_length=400)] | None = None


class AgentPatch(Patch):
    name: Name | None = None
    prompt: Annotated[StrictStr, Field(max_length=200_000)] | None = None
    documents: Annotated[list[KnowledgeDocument], Field(max_length=100)] | None = None
    tools: Annotated[list[ToolDefinition], Field(max_length=64)] | None = None


class TenantOut(Out):
    id: str
    name: str
    created_at: datetime
    current_version_id: str | None


class RetentionOut(Out):
    recordings_days: int
    transcripts_days: int


class DeploymentOut(Out):
    id: str
    name: str
    region: str
    retention: RetentionOut
    key_provider: str
    key_ref: str | None
    created_at: datetime
    current_version_id: str | None


class AgentOut(Out):
    id: str
    deployment_id: str
    name: str
    created_at: datetime
    current_version_id: str | None


class AgentConfigOut(Out):
    agent_id: str
    version_id: str | None
    config: dict[str, Any]


class VersionOut(Out):
    id: str
    subject_kind: str
    subject_id: str
    seq: int
    parent_id: str | None
    actor_id: str
    op: str
    created_at: datetime


class VersionContentOut(Out):
    version: VersionOut
    content: dict[str, Any]


class DiffOut(Out):
    from_version: str
    to_version: str
    #: RFC 6902 JSON Patch from ``from_version`` to ``to_version``.
    patch: list[dict[str, Any]]


# -- principals and keys -----------------------------------------------------


class PrincipalCreate(In):
    name: Name
    kind: Literal["user", "service"] = "user"


class PrincipalUpdate(In):
    """``PATCH /v1/principals/{id}``: deactivate (keys revoked, sessions ended) or activate."""

    active: StrictBool


class ScopeIn(In):
    kind: ScopeKind
    id: Id


class BindingCreate(In):
    role: Role
    scope: ScopeIn


class KeyCreate(In):
    label: Annotated[StrictStr, Field(min_length=1, max_length=200)] = "api key"
    ttl_days: Annotated[StrictInt, Field(ge=1, le=730)] | None = None


class BindingOut(Out):
    id: str
    role: str
    scope_kind: str
    scope_id: str


class PrincipalOut(Out):
    id: str
    kind: str
    name: str
    active: bool
    created_at: datetime
    bindings: list[BindingOut]


class KeyOut(Out):
    id: str
    principal_id: str
    expires_at: datetime
    #: Shown once, at creation; only a salted hash is kept.
    token: str | None = None


# -- calls -------------------------------------------------------------------


class CallCreate(In):
    direction: Literal["inbound", "outbound"]
    caller_number: Annotated[StrictStr, Field(pattern=r"^\+?[0-9][0-9 ()-]{2,31}$")] | None = None
    started_at: datetime | None = None


class WordIn(In):
    text: Annotated[StrictStr, Field(max_length=200)]
    start_ms: Millis
    end_ms: Millis

    @model_validator(mode="after")
    def _ordered(self) -> WordIn:
        if self.end_ms < self.start_ms:
            raise ValueError("end_ms must not be before start_ms")
        return self


class SegmentIn(In):
    speaker: Literal["caller", "agent"]
    start_ms: Millis
    end_ms: Millis
    is_final: StrictBool = True
    text: Annotated[StrictStr, Field(max_length=20_000)]
    words: Annotated[list[WordIn], Field(max_length=5_000)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> SegmentIn:
        if self.end_ms < self.start_ms:
            raise ValueError("end_ms must not be before start_ms")
        # Playback masks a range from the segments near it: words lie within their segment.
        slack = 1000
        if any(
            w.start_ms < self.start_ms - slack or w.end_ms > self.end_ms + slack for w in self.words
        ):
            raise ValueError("words must lie within their segment (1 s of slack)")
        return self


class SegmentsAppend(In):
    segments: Annotated[list[SegmentIn], Field(min_length=1, max_length=500)]


class EventIn(In):
    kind: Literal["dtmf", "tool_call", "agent_turn", "mark", "hold", "transfer", "custom"]
    at_ms: Millis
    detail: JsonObject | None = None


class EventsAppend(In):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=500)]


class CallEnd(In):
    status: Literal["completed", "failed", "incomplete"] = "completed"


class CallOut(Out):
    id: str
    deployment_id: str
    agent_id: str
    direction: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    segment_count: int
    event_count: int
    has_caller_number: bool


class AppendOut(Out):
    seqs: list[int]


class PlaybackUrlOut(Out):
    """A signed, short-lived path to the recording for a browser player."""

    url: str
    view: Literal["full", "masked"]
    expires_at: datetime


class HandoffOut(Out):
    """The processor's answer to a card hand-off: ids only, never the card."""

    token_id: str
    connector: str
    status: str
    reference: str


class WordOut(Out):
    text: str
    start_ms: int
    end_ms: int


class SegmentOut(Out):
    seq: int
    speaker: str
    start_ms: int
    end_ms: int
    is_final: bool
    text: str
    words: list[WordOut]


class TranscriptOut(Out):
    call_id: str
    view: Literal["full", "redacted"]
    caller_number: str | None
    segments: list[SegmentOut]

    @classmethod
    def of(cls, t: TranscriptView) -> TranscriptOut:
        """The response for a transcript as the grant opened it (full or redacted)."""
        return cls(
            call_id=t.call_id,
            view="redacted" if t.redacted else "full",
            caller_number=t.caller_number,
            segments=[
                SegmentOut(
                    seq=x.seq,
                    speaker=x.segment.speaker,
                    start_ms=x.segment.start_ms,
                    end_ms=x.segment.end_ms,
                    is_final=x.segment.is_final,
                    text=x.segment.text,
                    words=[
                        WordOut(text=w.text, start_ms=w.start_ms, end_ms=w.end_ms)
                        for w in x.segment.words
                    ],
                )
                for x in t.segments
            ],
        )


class AuditEntryOut(Out):
    index: int
    entry: dict[str, Any]
    #: The exact RFC 8785 bytes the leaf hash is taken over (UTF-8).
    canonical: str


class AuditEntriesOut(Out):
    #: The log's size when read.
    size: int
    entries: list[AuditEntryOut]


class InclusionProofOut(Out):
    index: int
    size: int
    #: Base64 hashes, leaf end first (RFC 9162 §2.1.3).
    proof: list[str]


class ConsistencyProofOut(Out):
    first: int
    second: int
    #: Base64 hashes (RFC 9162 §2.1.4).
    proof: list[str]


class LogKeyOut(Out):
    origin: str
    #: ``<name>+<key id hex>+<base64(0x01 || Ed25519 public key)>`` (C2SP signed-note).
    verifier_key: str


class AuditSinkCreate(In):
    kind: Literal["syslog-tls", "splunk-hec", "webhook"]
    name: str = Field(min_length=1, max_length=200)
    #: Non-secret settings of the kind (address, CA PEM, options).
    config: dict[str, Any]
    #: HEC token, webhook HMAC key, or the syslog client key PEM; stored sealed.
    secret: SecretStr | None = Field(default=None)


class AuditSinkOut(Out):
    id: str
    kind: str
    name: str
    enabled: bool
    config: dict[str, Any]
    has_secret: bool
    created_at: datetime
    #: Every entry below this index has been delivered.
    next_index: int
    backlog: int
    failures: int
    last_error: str | None


# -- Twilio (live ingest) -----------------------------------------------------


class TwilioAuthTokenIn(In):
    #: The Twilio account's auth token (32 hex characters as Twilio issues it; 16 to 128
    #: visible ASCII characters are accepted). Stored sealed; never returned.
    auth_token: SecretStr


class TwilioAuthTokenOut(Out):
    """Whether the deployment has a Twilio auth token, and since when; never the token."""

    configured: bool
    configured_at: datetime | None
