"""A very fast fake OpenAI upstream for load tests: raw asyncio HTTP/1.1 with keep-alive and
static, precomputed answers, so it is never the bottleneck.

    python -m bench.upstream --port 18080     # prints "ready http://127.0.0.1:PORT" when listening

Endpoints: POST /v1/chat/completions (a chat.completion, or an SSE stream of chat.completion.chunk
events ending in a usage chunk and `data: [DONE]` when the body has `"stream": true`),
POST /v1/embeddings, GET /v1/models, GET /health. Anything else: an OpenAI error body.
Requests may arrive pipelined or split across reads; bodies must carry Content-Length.
Binds 127.0.0.1 only. Stops on SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
from typing import Any, NamedTuple

from bench.loop import run_loop

_USAGE = {"prompt_tokens": 27, "completion_tokens": 9, "total_tokens": 36,
          "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
          "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                        "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
_CHAT = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "Hello! The capital of France is Paris. It is known for the Eiffel Tower.",
        "refusal": None, "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
    "usage": _USAGE, "service_tier": "default", "system_fingerprint": "fp_06737a9306",
}
_EMBEDDINGS = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [
    0.0023064255, -0.009327292, -0.0028842222, 0.021545229, -0.016598491, 0.0091237305, -0.024418946, 0.0041379035]}],
    "model": "text-embedding-3-small", "usage": {"prompt_tokens": 5, "total_tokens": 5}}
_MODELS = {"object": "list", "data": [
    {"id": m, "object": "model", "created": 1721172741, "owned_by": "system"}
    for m in ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")]}
_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_MAX_HEAD = 64 * 1024
_MAX_BODY = 8 * 1024 * 1024


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sse_body() -> bytes:
    base = {"id": "chatcmpl-B9MBsStream0001", "object": "chat.completion.chunk", "created": 1741569952,
            "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_06737a9306"}
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": "", "refusal": None}, None)]
    deltas += [({"content": piece}, None) for piece in ("Hello!", " The capital", " of France", " is Paris.")]
    deltas.append(({}, "stop"))
    events = [{**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}], "usage": None}
              for d, f in deltas]
    events.append({**base, "choices": [], "usage": _USAGE})
    return b"".join(b"data: " + _dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


class Canned(NamedTuple):
    """A precomputed answer: `head` lacks the blank line, so a header can still be added."""

    head: bytes
    body: bytes
    full: bytes


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> Canned:
    head = (f"HTTP/1.1 {status}\r\n".encode() + b"content-type: " + content_type +
            f"\r\ncontent-length: {len(body)}\r\nx-request-id: req_bench_0001\r\n".encode())
    return Canned(head, body, head + b"\r\n" + body)


def _error(status: str, message: str) -> Canned:
    return _response(status, _dumps({"error": {"message": message, "type": "invalid_request_error",
                                               "param": None, "code": None}}))


CHAT = _response("200 OK", _dumps(_CHAT))
STREAM = _response("200 OK", _sse_body(), b"text/event-stream; charset=utf-8")
EMBEDDINGS = _response("200 OK", _dumps(_EMBEDDINGS))
MODELS = _response("200 OK", _dumps(_MODELS))
HEALTH = _response("200 OK", b'{"status":"ok"}')
NOT_FOUND = _error("404 Not Found", "Invalid URL")
NOT_ALLOWED = _error("405 Method Not Allowed", "Method not allowed")
TOO_LARGE = _error("413 Payload Too Large", "Request too large")
BAD_REQUEST = _error("400 Bad Request", "Malformed request; a Content-Length body is required")
_ROUTES: dict[bytes, tuple[bytes, Canned]] = {
    b"/v1/chat/completions": (b"POST", CHAT), b"/v1/embeddings": (b"POST", EMBEDDINGS),
    b"/v1/models": (b"GET", MODELS), b"/health": (b"GET", HEALTH),
}


def answer(method: bytes, target: bytes, body: bytes) -> Canned:
    path = target.split(b"?", 1)[0]
    route = _ROUTES.get(path)
    if route is None:
        return NOT_FOUND
    if method != route[0]:
        return NOT_ALLOWED
    if route[1] is CHAT and _STREAM_RE.search(body):
        return STREAM
    return route[1]


class UpstreamProtocol(asyncio.Protocol):
    """One connection: parse as many complete requests as the buffer holds, answer each in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self._send(BAD_REQUEST, close=True)
                return
            head = bytes(self.buffer[:end]).lower()
            length = _content_length(head)
            if length is None or length > _MAX_BODY:
                self._send(TOO_LARGE if length else BAD_REQUEST, close=True)
                return
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4:total])
            del self.buffer[:total]
            request_line = head.split(b"\r\n", 1)[0].split(b" ")
            if len(request_line) != 3:
                self._send(BAD_REQUEST, close=True)
                return
            method, target, version = request_line
            close = b"connection: close" in head or (version == b"http/1.0" and b"connection: keep-alive" not in head)
            self._send(answer(method.upper(), target, body), close)

    def _send(self, response: Canned, close: bool) -> None:
        assert self.transport is not None
        if close:
            self.transport.write(response.head + b"connection: close\r\n\r\n" + response.body)
            self.transport.close()
        else:
            self.transport.write(response.full)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _content_length(head: bytes) -> int | None:
    """The body length of a lower-cased request head: 0 without a body, None if unsupported."""
    if b"transfer-encoding:" in head:
        return None
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    line_end = head.find(b"\r\n", start + 2)
    value = head[start + 17:line_end if line_end >= 0 else len(head)].strip()
    return int(value) if value.isdigit() else None


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready http://127.0.0.1:{bound}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=18080, help="0 picks a free port")
    args = parser.parse_args()
    run_loop(serve(args.port))


if __name__ == "__main__":
    main()
