"""Splunk HTTP Event Collector: one HTTPS POST per batch to ``/services/collector/event``.

The body is the batch's event objects concatenated (HEC's batch form)::

    {"event": <OCSF>, "host": .., "source": "callvault", "sourcetype": "callvault:audit",
     "time": <entry time, epoch seconds>}{...}...

authorised by ``Authorization: Splunk <token>``. The batch counts as taken only
on HTTP 200 with a JSON body whose ``code`` is 0; anything else (a 503 of a
busy indexer, a 4xx, a redirect, which is never followed so the token cannot
travel to another host, an unreadable body) fails the whole batch and it is
sent again later. HEC's optional indexer acknowledgement (channels and
``/ack``) is not used: a 200 means the HEC node queued the events.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence

import httpx
from pydantic import SecretStr

from callvault.audit.sinks._record import EntryView, Record, epoch_seconds, ocsf_json
from callvault.audit.sinks._transport import Transport

EVENT_PATH = "/services/collector/event"
SOURCE = "callvault"
SOURCETYPE = "callvault:audit"


class SplunkHecTransport(Transport):
    """POSTs batches to a Splunk HEC endpoint (see the module docstring)."""

    kind = "splunk-hec"

    def __init__(
        self,
        sink_id: str,
        *,
        url: str,
        token: SecretStr,
        context: ssl.SSLContext,
        host: str | None = None,
        source: str = SOURCE,
        sourcetype: str = SOURCETYPE,
        index: str | None = None,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(sink_id)
        self._endpoint = url.rstrip("/") + EVENT_PATH
        self._fields: dict[str, str] = {"source": source, "sourcetype": sourcetype}
        if host is not None:
            self._fields["host"] = host
        if index is not None:
            self._fields["index"] = index
        self._client = httpx.Client(
            headers={
                "Authorization": f"Splunk {token.get_secret_value()}",
                "Content-Type": "application/json",
                "User-Agent": "callvault",
            },
            verify=context,
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    def body(self, records: Sequence[Record]) -> bytes:
        """The concatenated HEC event objects for ``records``."""
        parts = []
        for record in records:
            view = EntryView.parse(record.entry)
            # The OCSF bytes are spliced in verbatim, so the event is byte-stable across retries.
            head: dict[str, object] = dict(self._fields)
            seconds = epoch_seconds(view.time)
            if seconds is not None:
                head["time"] = round(seconds, 6)
            prefix = json.dumps(head, sort_keys=True, separators=(",", ":"))[:-1]
            parts.append(prefix.encode() + b',"event":' + ocsf_json(record, view) + b"}")
        return b"".join(parts)

    def _deliver(self, records: Sequence[Record]) -> None:
        response = self._client.post(self._endpoint, content=self.body(records))
        if response.status_code != 200:
            raise self._rejected("HTTPStatusError", response.status_code)
        try:
            code = json.loads(response.content).get("code")
        except (ValueError, AttributeError):
            raise self._rejected("MalformedResponse", response.status_code) from None
        if code != 0:
            raise self._rejected("HecErrorCode", response.status_code)

    def close(self) -> None:
        self._client.close()
