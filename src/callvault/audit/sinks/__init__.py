"""SIEM streaming of the per-tenant audit logs: at-least-once, behind durable cursors.

Every record a sink receives names its log and position, ``(origin, index)``,
and carries the untouched canonical entry: receivers dedupe on the pair and
see a gap as a jump in ``index``. A cursor per (tenant, sink) moves only after
the sink acknowledged a batch; a failing sink backs off and keeps its backlog.

- :class:`Record`, :func:`ocsf_event`: the OCSF-shaped body every transport sends.
- Transports (``deliver(records)`` returns on acknowledgement, else
  :class:`SinkError`): :class:`SyslogTlsTransport` (RFC 5424 over RFC 5425),
  :class:`SplunkHecTransport`, :class:`WebhookTransport` (HMAC-signed; receivers
  check with :func:`verify_webhook_signature`).
- Settings: :func:`parse_sink_config`, :func:`build_transport` (kind, non-secret
  settings, secret), :class:`SinkConfigError`.
- :class:`SinkCursors` over ``audit_sink_cursors``; :class:`SinkDispatcher`,
  the background worker, never on the request path.
"""

from __future__ import annotations

from callvault.audit.sinks._config import (
    SinkConfig,
    SinkConfigError,
    SplunkHecConfig,
    SyslogTlsConfig,
    WebhookConfig,
    build_transport,
    canonical_config,
    parse_sink_config,
)
from callvault.audit.sinks._cursor import Cursor, SinkCursors
from callvault.audit.sinks._dispatch import (
    Backoff,
    DrainResult,
    LogGapError,
    SinkDispatcher,
    SinkTarget,
)
from callvault.audit.sinks._hec import SplunkHecTransport
from callvault.audit.sinks._record import Record, ocsf_event, ocsf_json
from callvault.audit.sinks._syslog import (
    SyslogTlsTransport,
    escape_param_value,
    frame,
    syslog_message,
)
from callvault.audit.sinks._transport import SinkError, Transport, client_tls_context
from callvault.audit.sinks._webhook import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookSignatureError,
    WebhookTransport,
    verify_webhook_signature,
    webhook_signature,
)

#: The sink kinds, as ``audit_sinks.kind`` stores them.
KINDS = (SyslogTlsTransport.kind, SplunkHecTransport.kind, WebhookTransport.kind)

__all__ = [
    "DELIVERY_ID_HEADER",
    "KINDS",
    "SIGNATURE_HEADER",
    "Backoff",
    "Cursor",
    "DrainResult",
    "LogGapError",
    "Record",
    "SinkConfig",
    "SinkConfigError",
    "SinkCursors",
    "SinkDispatcher",
    "SinkError",
    "SinkTarget",
    "SplunkHecConfig",
    "SplunkHecTransport",
    "SyslogTlsConfig",
    "SyslogTlsTransport",
    "Transport",
    "WebhookConfig",
    "WebhookSignatureError",
    "WebhookTransport",
    "build_transport",
    "canonical_config",
    "client_tls_context",
    "escape_param_value",
    "frame",
    "ocsf_event",
    "ocsf_json",
    "parse_sink_config",
    "syslog_message",
    "verify_webhook_signature",
    "webhook_signature",
]
