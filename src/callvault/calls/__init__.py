"""Call lifecycle: metadata, sealed transcript segments and events.

Live ingest (Twilio Media Streams, audio) arrives with the calls issue; this
package already owns the data model and the sealed read path.
"""

from callvault.calls._store import (
    Event,
    Segment,
    StoredSegment,
    TranscriptView,
    Word,
    append_events,
    append_segments,
    create_call,
    end_call,
    get_call,
    list_calls,
    read_call,
    read_transcript,
)

__all__ = [
    "Event",
    "Segment",
    "StoredSegment",
    "TranscriptView",
    "Word",
    "append_events",
    "append_segments",
    "create_call",
    "end_call",
    "get_call",
    "list_calls",
    "read_call",
    "read_transcript",
]
