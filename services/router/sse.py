"""One server-sent-events reader for every adapter (the WHATWG event-stream format).

Lines are `field: value` (one optional space after the colon); `data` lines of one event
are joined with `\\n`; `event` names the event (Anthropic's and Gemini's streams use it);
`id` and `retry` are kept or ignored as the spec says; lines starting with `:` are
comments (keep-alives); a blank line ends an event. CRLF, LF and CR all end a line.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class SseEvent:
    data: str
    event: str | None = None
    id: str | None = None


async def read_sse(lines: AsyncIterator[bytes]) -> AsyncIterator[SseEvent]:
    data: list[str] = []
    event: str | None = None
    last_id: str | None = None
    async for raw in lines:
        # lines arrive split at LF; a CR before it, or CR alone, also ends a line
        for line in raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r").split("\r"):
            if not line:
                if data:
                    yield SseEvent("\n".join(data), event, last_id)
                data, event = [], None
                continue
            if line[0] == ":":
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id" and "\0" not in value:
                last_id = value
            # `retry` and unknown fields: nothing to do for a client that does not reconnect
    if data:  # a stream cut before its last blank line still delivers what it carried
        yield SseEvent("\n".join(data), event, last_id)
