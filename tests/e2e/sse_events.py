"""A small server-sent events reader for the event feed tests (frames and comments)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    id: int | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comment: str | None = None

    @property
    def body(self) -> dict[str, Any]:
        return json.loads("\n".join(self.data))  # type: ignore[no-any-return]


def frames(response: httpx.Response) -> Iterator[Frame]:
    """Each event (with its id) and each comment line, in order."""
    frame = Frame()
    for line in response.iter_lines():
        if line == "":
            if frame.data or frame.id is not None:
                yield frame
            frame = Frame()
        elif line.startswith(":"):
            yield Frame(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                frame.id = int(value)
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data.append(value)


def read_events(response: httpx.Response, count: int) -> list[Frame]:
    """The next `count` events (comments skipped)."""
    found: list[Frame] = []
    for frame in frames(response):
        if frame.comment is None:
            found.append(frame)
            if len(found) == count:
                break
    return found


def events_until_idle(response: httpx.Response, count: int) -> list[Frame]:
    """The next `count` events, then everything up to the next heartbeat (which comes only
    once the feed has nothing more to send): more than `count` shows as a longer list."""
    found: list[Frame] = []
    for frame in frames(response):
        if frame.comment is None:
            found.append(frame)
        elif frame.comment == "heartbeat" and len(found) >= count:
            break
    return found
