"""Server-sent event frames of the feed: `id:` is the event's stream sequence, so a client
that reconnects with `Last-Event-ID` resumes right after the last event it saw."""
from __future__ import annotations

HEARTBEAT = b": heartbeat\n\n"


def event_frame(seq: int, event_type: str, data: bytes) -> bytes:
    lines = b"".join(b"data: " + line + b"\n" for line in data.splitlines() or [b""])
    return b"id: %d\nevent: %s\n%s\n" % (seq, event_type.encode(), lines)
