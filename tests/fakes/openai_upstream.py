"""A real local HTTP server that answers like the OpenAI API, for tests on the wire.

`FakeOpenAI` runs a Starlette app under uvicorn in a background thread (its own event
loop) on a free 127.0.0.1 port. The request's `model` field picks the behaviour, so a
gateway config can point different deployments at different behaviours:

- any name not listed below: a normal answer echoing the model; a tool call when the request has
  `tools` and `tool_choice` is not "none", unless the last message is a tool result (then the
  model answers in text, as a model does once it has what it asked for)
- `fail-400`, `fail-401`, `fail-404`, `fail-429`, `fail-500`, `fail-503`: that status with
  OpenAI's error body (429 also sends `retry-after`)
- `flaky-500`: the first such request to this server gets a 500, later ones are answered
- any model a test told to fail (`.fail(model, status)`, until `.recover(model)`): that status
  with OpenAI's error body, as `fail-<status>` answers
- `stream-no-usage`: streams never end with a usage chunk, even when asked for one
- `cache-hit`: its prompt had a cached prefix; an o-series name (`o3-mini`): it reasoned
  (counts in `prompt_tokens_details` / `completion_tokens_details`: `payloads.model_usage`)
- `slow-stream`: streams `SLOW_STREAM_CHUNKS` (200) content chunks 50 ms apart; a client
  that leaves early is counted in `.streams_aborted`
- `hang`: sleeps `HANG_S` (30 s) before answering
- `slow`: sleeps `SLOW_S` (1.5 s) before a normal answer; `.slow_answered` counts those sent
- `POST /v1/responses`: the Responses API (tests/fakes/openai_responses.py)
- the other endpoints (tests/fakes/openai_endpoints.py): `POST /v1/completions` (legacy): a
  `text_completion` (streamed: one chunk per piece, then usage when asked for)
- `POST /v1/audio/transcriptions`: a multipart upload (`.uploads`), its transcript (text,
  srt, vtt, json or verbose_json; usage by duration for `whisper-1`, else by tokens)
- `POST /v1/audio/speech`: bytes of the asked format (`tests.fakes` digest of the input) in
  its media type
- `POST /v1/images/generations`: n images (base64, with token usage, for `gpt-image-*`;
  URLs or base64 as asked for others)
- `POST /v1/moderations`: a result per input, flagged for violence when it says "attack"
- `echo-key*`: an upstream that echoes the key it was sent (`Authorization: Bearer <key>`),
  always in an `x-echoed-key` response header, and: `echo-key` in the answer's content,
  `echo-key-400` / `echo-key-500` in that error's message (and the 400's `param`),
  `echo-key-stream` (streamed) in a content chunk, `echo-key-stream-error` (streamed) in an
  error event after the first chunk

With `expected_api_key`, a request without `Authorization: Bearer <that key>` gets 401.
Every request is recorded (`.requests`) before anything else happens, so tests can assert
what the gateway sent. Token counts are deterministic: see `tests.fakes.payloads`.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from services.router.providers.openai import payloads as p
from tests.fakes.openai_endpoints import OtherEndpoints
from tests.fakes.openai_responses import ResponsesEndpoint
from tests.fakes.openai_wire import json_response, openai_headers
from tests.fakes.server import ThreadedServer

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
SLOW_STREAM_CHUNKS = 200
SLOW_STREAM_DELAY_S = 0.05
HANG_S = 30.0
SLOW_S = 1.5
STALL_AFTER_CHUNKS = 2

_FAILURES: dict[str, tuple[int, Callable[[str], p.Json]]] = {
    "fail-400": (400, lambda m: p.invalid_request("Invalid value for 'messages': fake upstream refused.", "messages")),
    "fail-401": (401, lambda m: p.invalid_api_key("sk-fake-upstream-rejected-key")),
    "fail-404": (404, p.model_not_found),
    "fail-429": (429, p.rate_limited),
    "fail-500": (500, lambda m: p.server_error()),
    "fail-503": (503, lambda m: p.error_body("The server is overloaded or not ready yet.", "server_error")),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any  # parsed body; None when there was none or it was not JSON

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


class FakeOpenAI(ResponsesEndpoint, OtherEndpoints):
    """Start with `start()` (or `with FakeOpenAI() as fake:`); point clients at `.base_url`."""

    def __init__(self, *, expected_api_key: str | None = None, models: Sequence[str] = DEFAULT_MODELS,
                 retry_after_s: int = 1) -> None:
        self.expected_api_key = expected_api_key
        self.models = list(models)
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._flaky_seen = 0
        self._failing: dict[str, int] = {}
        self._streams_aborted = 0
        self._slow_answered = 0
        self._uploads: list[dict[str, bytes]] = []
        self._server: ThreadedServer | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> FakeOpenAI:
        self._server = ThreadedServer(self._app(), "fake-openai")
        self._server.start(timeout)
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- what tests read -------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def streams_aborted(self) -> int:
        """Streams whose client went away before `data: [DONE]` was sent."""
        with self._lock:
            return self._streams_aborted

    @property
    def slow_answered(self) -> int:
        with self._lock:
            return self._slow_answered

    @property
    def uploads(self) -> list[dict[str, bytes]]:
        """Every multipart upload received (its fields, files too, by name), oldest first."""
        with self._lock:
            return list(self._uploads)

    def fail(self, model: str, status: int = 503) -> None:
        """Requests for `model` get `status` (one of the `fail-*` statuses) until `recover`."""
        assert f"fail-{status}" in _FAILURES, status
        with self._lock:
            self._failing[model] = status

    def recover(self, model: str) -> None:
        with self._lock:
            self._failing.pop(model, None)

    def requests_for(self, model: str) -> int:
        """How many requests named `model`."""
        return sum(1 for r in self.requests if isinstance(r.json, dict) and r.json.get("model") == model)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while len(seen := self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake OpenAI got {len(seen)} requests, expected {count}")
            time.sleep(0.01)
        return seen

    # -- HTTP ------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/v1/moderations", self._moderations, methods=["POST"]),
            Route("/v1/images/generations", self._images, methods=["POST"]),
            Route("/v1/audio/speech", self._speech, methods=["POST"]),
            Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
            Route("/v1/models", self._list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", self._get_model, methods=["GET"]),
            Route("/{rest:path}", self._not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    async def _receive(self, request: Request) -> tuple[Any, Response | None]:
        """Record the request, then check its key. Returns (parsed body, early response)."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = RecordedRequest(request.method, request.url.path, headers, body)
        with self._lock:
            self._requests.append(recorded)
        if self.expected_api_key is not None and recorded.bearer != self.expected_api_key:
            return body, json_response(401, p.invalid_api_key(recorded.bearer))
        return body, None

    async def _receive_model_request(self, request: Request) -> tuple[p.Json, Response | None]:
        body, early = await self._receive(request)
        if early is not None:
            return {}, early
        if not isinstance(body, dict):
            return {}, json_response(400, p.invalid_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload.)"))
        if not isinstance(body.get("model"), str) or not body["model"]:
            return {}, json_response(400, p.invalid_request("you must provide a model parameter"))
        return body, self._failure(body["model"])

    def _failure(self, model: str) -> Response | None:
        with self._lock:
            told = self._failing.get(model)
        if told is not None:
            model = f"fail-{told}"
        if model in _FAILURES:
            status, build = _FAILURES[model]
            extra = {"retry-after": str(self.retry_after_s)} if status == 429 else {}
            return json_response(status, build(model), extra)
        if model == "flaky-500":
            with self._lock:
                self._flaky_seen += 1
                first = self._flaky_seen == 1
            if first:
                return json_response(500, p.server_error())
        return None

    async def _chat(self, request: Request) -> Response:
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        model: str = body["model"]
        if model == "hang":
            await asyncio.sleep(HANG_S)
        if model == "slow":
            await asyncio.sleep(SLOW_S)
            with self._lock:
                self._slow_answered += 1
        prompt_tokens = p.count_prompt_tokens(body.get("messages"))
        if model.startswith("echo-key"):
            key = RecordedRequest("POST", "", {k.lower(): v for k, v in request.headers.items()}, None).bearer or ""
            return self._echo(body, model, prompt_tokens, key)
        tool = None if _answers_tool_result(body) else p.chosen_tool(body)
        if body.get("stream") is True:
            return self._stream(body, model, prompt_tokens, tool)
        if tool is not None:
            return json_response(200, p.tool_call_completion(model, prompt_tokens, *tool))
        return json_response(200, p.chat_completion(model, prompt_tokens))

    def _stream(self, body: p.Json, model: str, prompt_tokens: int, tool: tuple[str, str] | None) -> Response:
        asked = (body.get("stream_options") or {}).get("include_usage") is True and model != "stream-no-usage"
        slow = model == "slow-stream"
        if tool is not None:
            cid, created, chunks = p.tool_call_stream(model, tool[0], tool[1], asked)
        else:
            pieces = [f" tok{i}" for i in range(SLOW_STREAM_CHUNKS)] if slow else p.REPLY_PIECES
            cid, created, chunks = p.content_stream(model, pieces, asked)
        completion_tokens = SLOW_STREAM_CHUNKS if slow else p.COMPLETION_TOKENS
        if asked:
            chunks.append(p.usage_chunk(cid, created, model, p.model_usage(model, prompt_tokens, completion_tokens)))
        delay = SLOW_STREAM_DELAY_S if slow else 0.0
        stall_after = STALL_AFTER_CHUNKS if model == "stall-stream" else None
        return StreamingResponse(self._events(chunks, delay, stall_after), media_type="text/event-stream",
                                 headers=openai_headers())

    def _echo(self, body: p.Json, model: str, prompt_tokens: int, key: str) -> Response:
        """An upstream that writes the caller's key back: in a header, an answer, an error, a stream."""
        header = {"x-echoed-key": key}
        said = f"Incorrect API key provided: {key}."
        if model == "echo-key-400":
            return json_response(400, p.invalid_request(said, f"key {key}"), header)
        if model == "echo-key-500":
            return json_response(500, p.error_body(f"Internal error while checking {key}", "server_error"), header)
        if body.get("stream") is not True:
            return json_response(200, p.chat_completion(model, prompt_tokens, f"You sent me {key}, right?"), header)
        _, _, chunks = p.content_stream(model, ["You sent me ", key, ", right?"], False)
        if model == "echo-key-stream-error":
            chunks = [*chunks[:2], p.error_body(f"The stream broke while holding {key}", "server_error")]
        return StreamingResponse(self._events(chunks, 0.0), media_type="text/event-stream",
                                 headers={**openai_headers(), **header})

    async def _events(self, chunks: list[p.Json], delay: float, stall_after: int | None = None) -> AsyncIterator[bytes]:
        finished = False
        try:
            for index, event in enumerate(chunks):
                if delay:
                    await asyncio.sleep(delay)
                if index == stall_after:
                    await asyncio.sleep(HANG_S)  # a long silence mid-stream (a model "thinking")
                yield p.sse(event)
            yield p.sse("[DONE]")
            finished = True
        finally:
            if not finished:
                with self._lock:
                    self._streams_aborted += 1

    def _record_upload(self, form: dict[str, bytes]) -> None:
        with self._lock:
            self._uploads.append(form)

    async def _embeddings(self, request: Request) -> Response:
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        if body["model"] == "hang":
            await asyncio.sleep(HANG_S)
        inputs = body.get("input")
        if inputs is None or inputs == "" or inputs == []:
            return json_response(400, p.invalid_request("'input' is a required property", "input"))
        encoding = "base64" if body.get("encoding_format") == "base64" else "float"
        dimensions = body.get("dimensions") or p.EMBEDDING_DIMENSIONS
        # orjson: a batch of 2,048 x 3,072 floats is ~55 MB of JSON (json.dumps takes seconds)
        answer = orjson.dumps(p.embeddings_list(body["model"], inputs, encoding, int(dimensions)))
        return Response(answer, media_type="application/json", headers=openai_headers())

    async def _list_models(self, request: Request) -> Response:
        _, early = await self._receive(request)
        return early or json_response(200, p.models_list(self.models))

    async def _get_model(self, request: Request) -> Response:
        _, early = await self._receive(request)
        model = request.path_params["model"]
        if early is not None:
            return early
        if model not in self.models:
            return json_response(404, p.model_not_found(model))
        return json_response(200, p.model_object(model))

    async def _not_found(self, request: Request) -> Response:
        _, early = await self._receive(request)
        return early or json_response(404, p.invalid_url(request.method, request.url.path))


def _answers_tool_result(body: p.Json) -> bool:
    messages = body.get("messages")
    return isinstance(messages, list) and bool(messages) and isinstance(messages[-1], dict) \
        and messages[-1].get("role") == "tool"
