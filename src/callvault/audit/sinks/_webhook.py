"""Signed webhook: one HTTPS POST per batch, a JSON array of OCSF events.

Headers::

    Content-Type: application/json
    Callvault-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, b"<t>." + body)>
    Callvault-Delivery-Id: <first 32 hex digits of SHA-256(body)>

The signature binds the timestamp to the exact body bytes, so a receiver that
checks it with :func:`verify_webhook_signature` rejects a tampered body and a
replay outside its tolerance window. The delivery id is a hash of the body:
a retry of the same batch carries the same id (and the same body; only ``t``
and the signature change), which receivers may use as an idempotency key;
per-record dedupe is still by (origin, index). Any 2xx takes the batch; every
other status, a redirect included (never followed), fails it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import ssl
import time
from collections.abc import Callable, Sequence

import httpx
from pydantic import SecretStr

from callvault.audit.sinks._record import Record, ocsf_json
from callvault.audit.sinks._transport import Transport
from callvault.errors import AuthenticationError

SIGNATURE_HEADER = "Callvault-Signature"
DELIVERY_ID_HEADER = "Callvault-Delivery-Id"
DEFAULT_TOLERANCE_SECONDS = 300
#: Bounds the work on a hostile header before any HMAC is computed.
MAX_SIGNATURE_HEADER = 1024

_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,15}", re.ASCII)


class WebhookSignatureError(AuthenticationError):
    """A webhook request's signature is missing, malformed, wrong, stale or from the future."""

    code = "bad-webhook-signature"


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def webhook_signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``Callvault-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(_secret_bytes(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise :class:`WebhookSignatureError` unless ``header`` signs ``body`` recently enough.

    Pure: the caller passes the current time. A receiver MUST call it on the
    raw request body, before parsing it.

    1. Parse ``header`` as comma-separated ``key=value`` pairs: exactly one
       ``t`` (decimal seconds) and at least one ``v1`` (64 lowercase hex
       digits); other keys are ignored, so later schemes can be added beside v1.
    2. ``t`` MUST be within ``tolerance_seconds`` of ``now``, in either
       direction: older is a replay, newer is a clock or a forgery problem.
    3. Some ``v1`` MUST equal HMAC-SHA256(secret, ``t`` + "." + body),
       compared in constant time.
    """
    if not secret:
        raise ValueError("the webhook secret is empty")
    # (1):
    if not isinstance(header, str) or len(header) > MAX_SIGNATURE_HEADER:
        raise WebhookSignatureError("malformed webhook signature header")
    stamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed webhook signature header")
        if key == "t":
            stamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(stamps) != 1 or not _DECIMAL.fullmatch(stamps[0]) or not signatures:
        raise WebhookSignatureError("malformed webhook signature header")
    if not all(_HEX64.fullmatch(s) for s in signatures):
        raise WebhookSignatureError("malformed webhook signature header")
    timestamp = int(stamps[0])
    # (2):
    if not math.isfinite(now) or abs(now - timestamp) > tolerance_seconds:
        raise WebhookSignatureError("webhook signature timestamp is outside the tolerance")
    # (3):
    expected = webhook_signature(secret, timestamp, body).rpartition("v1=")[2]
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise WebhookSignatureError("webhook signature does not match")


def delivery_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


class WebhookTransport(Transport):
    """POSTs signed batches (see the module docstring)."""

    kind = "webhook"

    def __init__(
        self,
        sink_id: str,
        *,
        url: str,
        secret: SecretStr,
        context: ssl.SSLContext,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(sink_id)
        self._url = url
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(
            headers={"Content-Type": "application/json", "User-Agent": "callvault"},
            verify=context,
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    @staticmethod
    def body(records: Sequence[Record]) -> bytes:
        """The JSON array of the records' OCSF events."""
        return b"[" + b",".join(ocsf_json(r) for r in records) + b"]"

    def _deliver(self, records: Sequence[Record]) -> None:
        body = self.body(records)
        signature = webhook_signature(self._secret.get_secret_value(), int(self._clock()), body)
        response = self._client.post(
            self._url,
            content=body,
            headers={SIGNATURE_HEADER: signature, DELIVERY_ID_HEADER: delivery_id(body)},
        )
        if not 200 <= response.status_code < 300:
            raise self._rejected("HTTPStatusError", response.status_code)

    def close(self) -> None:
        self._client.close()
