"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation only.

It sends one precomputed request and reads one response (Content-Length, chunked, or
until close), timing the response head and the first body bytes. Only 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Target:
    port: int
    path: str
    body: bytes
    api_key: str | None = None

    def request_bytes(self) -> bytes:
        auth = f"Authorization: Bearer {self.api_key}\r\n" if self.api_key else ""
        return (f"POST {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Accept: application/json\r\nUser-Agent: jetgate-bench\r\n{auth}"
                f"Content-Length: {len(self.body)}\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class Reply:
    status: int
    t_head: float  # perf_counter when the response head was read
    t_first_body: float  # perf_counter when the first body bytes were read
    size: int
    tail: bytes  # the last bytes of the body, to check a stream ended with [DONE]


class Connection:
    """One keep-alive connection; `closed` once the server or an error ended it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closed = False
        self.answered = 0  # responses read on this connection

    @property
    def reusable(self) -> bool:
        """Open on our side, and the server has not closed it while it sat idle."""
        return not self.closed and not self.reader.at_eof()

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        return cls(reader, writer)

    def close(self) -> None:
        self.closed = True
        self.writer.close()

    async def send(self, request: bytes) -> Reply:
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            t_head = time.perf_counter()
            status, length, chunked, keep_alive = _parse_head(head)
            if chunked:
                t_first, size, tail = await self._read_chunked()
            elif length is not None:
                body = await self.reader.readexactly(length)
                t_first, size, tail = time.perf_counter(), length, body[-32:]
            else:
                body = await self.reader.read()
                t_first, size, tail, keep_alive = time.perf_counter(), len(body), body[-32:], False
        except BaseException:
            self.close()
            raise
        self.answered += 1
        if not keep_alive:
            self.close()
        return Reply(status, t_head, t_first, size, tail)

    async def _read_chunked(self) -> tuple[float, int, bytes]:
        t_first, size, tail = 0.0, 0, b""
        while True:
            line = await self.reader.readuntil(b"\r\n")
            length = int(line.split(b";", 1)[0].strip(), 16)
            if length == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                    pass
                return t_first or time.perf_counter(), size, tail
            data = await self.reader.readexactly(length + 2)
            if not t_first:
                t_first = time.perf_counter()
            size += length
            tail = (tail + data[:-2])[-32:]


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, content length, chunked, keep-alive) of a response head."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked, keep_alive = False, not lines[0].startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = value.strip().lower() == b"keep-alive" or (keep_alive and b"close" not in value.lower())
    if status in (204, 304) or 100 <= status < 200:
        length = 0
    return status, length, chunked, keep_alive
