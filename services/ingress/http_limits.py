"""Header limits where the headers are read: uvicorn's httptools protocol, bounded. A
request with more header fields than `max_header_count`, or more bytes of request line and
headers than `max_header_bytes`, is answered 431 in OpenAI's shape and its connection
closed as soon as the limit is passed, before the rest is buffered or the app sees it."""
from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.errors import HeadersTooLarge
from shared.ids import uuid7


class _Refused(Exception):
    """Raised from a parser callback: httptools stops parsing, uvicorn answers the error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_header_count = 100
    max_header_bytes = 32 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._refused: HeadersTooLarge | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._refused = HeadersTooLarge(
                f"The request line and headers are larger than the limit of {self.max_header_bytes} bytes.")
            raise _Refused

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.max_header_count:
            self._refused = HeadersTooLarge(f"The request has more than {self.max_header_count} header fields.")
            raise _Refused
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; ours when the error was a refused head."""
        if self._refused is None:
            super().send_400_response(msg)
            return
        body = self._refused.body().model_dump_json().encode()
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                 b"x-request-id: " + uuid7().encode() + b"\r\n", b"connection: close\r\n", b"\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_protocol(max_header_count: int, max_header_bytes: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`, with these limits."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,),
                {"max_header_count": max_header_count, "max_header_bytes": max_header_bytes})
