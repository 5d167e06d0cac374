"""A real local HTTP server that answers like the Anthropic Messages API, for tests on the wire.

`FakeAnthropic` serves `POST /v1/messages` (and `count_tokens`) with the payloads of
services/router/providers/anthropic/payloads.py. It checks requests as the API does
(tests/fakes/anthropic_checks.py): the key (when `expected_api_key` is set: `x-api-key`, or a
bearer token as anthropic SDK 2.x sends it) and `anthropic-version` headers; `model`,
`max_tokens` and `messages` required; only `user` / `assistant` roles; known block types;
image sources; every `tool_result` answering a `tool_use` of the turn before, and every
`tool_use` answered in the turn after; temperature within 0..1. The request's `model`
picks the behaviour:

- any name not listed below: a text reply (cut by `max_tokens` or `stop_sequences` as the
  API does); a tool call (after a short text block) when the request offers tools and
  `tool_choice` is not `none`
- `cache-hit`: usage reports prompt-cache reads and writes (`CACHE_READ_TOKENS`, `CACHE_CREATION_TOKENS`)
- `fail-400`, `fail-401`, `fail-403`, `fail-404`, `fail-429`, `fail-500`, `fail-529`: that
  status with Anthropic's error body (429 and 529 also send `retry-after`)
- `too-long`: 400 "prompt is too long: … tokens > 200000 maximum"
- `stream-overloaded`: a stream whose first event is an `overloaded_error` `error` event
- `stream-error-mid`: a stream that sends some text, then an `overloaded_error` event
- `stream-cut`: a stream that stops after some text, without `message_delta` / `message_stop`
- `hang`: sleeps `HANG_S` before answering

Every request is recorded (`.requests`) before anything else happens.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.router.providers.anthropic import payloads as p
from tests.fakes.anthropic_checks import request_problem
from tests.fakes.server import ThreadedServer

HANG_S = 30.0
MID_STREAM_PIECES = 3
_BEFORE_PIECES = 3  # message_start, ping, content_block_start

_FAILURES: dict[str, tuple[int, Callable[[str], p.Json]]] = {
    "fail-400": (400, lambda m: p.invalid_request("messages: fake upstream refused this request")),
    "fail-401": (401, lambda m: p.invalid_api_key()),
    "fail-403": (403, lambda m: p.permission_denied()),
    "fail-404": (404, p.model_not_found),
    "fail-429": (429, lambda m: p.rate_limited()),
    "fail-500": (500, lambda m: p.api_error()),
    "fail-529": (529, lambda m: p.overloaded()),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any  # parsed body; None when there was none or it was not JSON

    @property
    def api_key(self) -> str | None:
        """The key as sent: `x-api-key`, or a bearer token (what anthropic SDK 2.x sends for an api_key)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


class FakeAnthropic:
    """Start with `start()` (or `with FakeAnthropic() as fake:`); point clients at `.base_url`."""

    def __init__(self, *, expected_api_key: str | None = None, retry_after_s: int = 1) -> None:
        self.expected_api_key = expected_api_key
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = ThreadedServer(self._app(), "fake-anthropic")

    def start(self) -> FakeAnthropic:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API root, as the anthropic SDK and the provider config take it (no `/v1`)."""
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- HTTP ------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            Route("/{rest:path}", self._not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    async def _receive(self, request: Request) -> tuple[p.Json, Response | None]:
        """Record the request, then check its headers and body as the API does."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = RecordedRequest(request.method, request.url.path, headers, body)
        with self._lock:
            self._requests.append(recorded)
        if self.expected_api_key is not None:
            if recorded.api_key is None:
                return {}, _json(401, p.error_body("authentication_error", "x-api-key header is required"))
            if recorded.api_key != self.expected_api_key:
                return {}, _json(401, p.invalid_api_key())
        if "anthropic-version" not in headers:
            return {}, _json(400, p.invalid_request("anthropic-version: header is required"))
        if not isinstance(body, dict):
            return {}, _json(400, p.invalid_request("There was an issue with the format of your request: "
                                                    "the body is not a JSON object"))
        return body, None

    async def _messages(self, request: Request) -> Response:
        body, early = await self._receive(request)
        if early is not None:
            return early
        problem = request_problem(body)
        if problem is not None:
            return _json(400, p.invalid_request(problem))
        model: str = body["model"]
        if model in _FAILURES:
            status, build = _FAILURES[model]
            extra = {"retry-after": str(self.retry_after_s)} if status in (429, 529) else {}
            return _json(status, build(model), extra)
        if model == "too-long":
            return _json(400, p.prompt_too_long(p.CONTEXT_WINDOW + 4096))
        if model == "hang":
            await asyncio.sleep(HANG_S)
        return self._answer(body, model)

    def _usage(self, body: p.Json, model: str, output_tokens: int) -> p.Json:
        if model == "cache-hit":
            return p.usage(p.count_input_tokens(body), output_tokens, p.CACHE_READ_TOKENS, p.CACHE_CREATION_TOKENS)
        return p.usage(p.count_input_tokens(body), output_tokens)

    def _answer(self, body: p.Json, model: str) -> Response:
        stream = body.get("stream") is True
        tool = p.chosen_tool(body)
        if tool is not None:
            use = self._usage(body, model, p.COMPLETION_TOKENS)
            if stream:
                return _stream(p.tool_stream(model, tool[0], tool[1], use))
            content = [p.text_block(p.TOOL_PREAMBLE), p.tool_use_block(*tool)]
            return _json(200, p.message(model, content, "tool_use", use))
        pieces, stop_reason, stop_sequence = p.reply_pieces(body)
        use = self._usage(body, model, len(pieces))
        if not stream:
            return _json(200, p.message(model, [p.text_block("".join(pieces))], stop_reason, use, stop_sequence))
        events = p.text_stream(model, pieces, use, stop_reason, stop_sequence)
        if model == "stream-overloaded":
            events = [("error", p.overloaded())]
        elif model == "stream-error-mid":
            events = [*events[:_BEFORE_PIECES + MID_STREAM_PIECES], ("error", p.overloaded())]
        elif model == "stream-cut":
            events = events[:_BEFORE_PIECES + MID_STREAM_PIECES]
        return _stream(events)

    async def _count_tokens(self, request: Request) -> Response:
        body, early = await self._receive(request)
        return early or _json(200, {"input_tokens": p.count_input_tokens(body)})

    async def _not_found(self, request: Request) -> Response:
        await self._receive(request)
        return _json(404, p.error_body("not_found_error", "Not Found"))


async def _events(events: list[p.Event]) -> AsyncIterator[bytes]:
    for event, data in events:
        yield p.sse(event, data)


def _stream(events: list[p.Event]) -> Response:
    return StreamingResponse(_events(events), media_type="text/event-stream", headers=_headers())


def _headers() -> dict[str, str]:
    return {"request-id": p.request_id(), "anthropic-organization-id": "00000000-0000-4000-8000-00000fa4e000"}


def _json(status: int, body: p.Json, extra_headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**_headers(), **(extra_headers or {})})
