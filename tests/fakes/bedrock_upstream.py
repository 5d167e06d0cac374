"""A real local HTTP server that answers like the Bedrock runtime
(`bedrock-runtime.{region}.amazonaws.com`), for tests on the wire.

`FakeBedrock` serves `POST /model/{modelId}/converse`, `/converse-stream` (AWS event-stream
binary framing, each message split across socket writes as a real network would) and
`/invoke` (Titan Text Embeddings) with the payloads of
services/router/providers/bedrock/payloads.py. It verifies every request as the service
does (tests/fakes/bedrock_checks.py): the SigV4 signature, recomputed with botocore from the
known test credentials (service `bedrock`, the fake's region, within 5 minutes), or a
Bedrock API key as `Authorization: Bearer`; then the Converse body's shape. The model id
picks the behaviour:

- any id not listed below: a text reply (cut by `maxTokens` or `stopSequences`); a tool
  call after a short text block when the request has a `toolConfig`
- an id containing `cache-hit`: usage with prompt-cache reads and writes
- `meta.llama…`: refuses `toolChoice` `any` / `tool`, as Llama models on Bedrock do
- `fail-throttling`, `fail-unavailable`, `fail-not-ready`, `fail-internal`, `fail-access`,
  `fail-not-found`, `fail-timeout`, `fail-validation`, `too-long`: that exception
- `stream-throttled`: a stream whose first message is a `throttlingException`
- `stream-error-mid`: a stream that sends some text, then a `modelStreamErrorException`
- `stream-cut`: a stream that stops after some text, without `messageStop` / `metadata`
- `guardrail`: a reply that stops with `guardrail_intervened`
- `hang`: sleeps `HANG_S` before answering
- `amazon.titan-embed-text-v2:0` (`/invoke`): an embedding (256, 512 or 1024 dimensions)

Every request is recorded (`.requests`) before anything else happens.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.router.providers.bedrock import payloads as p
from tests.fakes.bedrock_checks import AwsCredentials, converse_problem, signature_problem
from tests.fakes.event_stream import event, exception
from tests.fakes.server import ThreadedServer

HANG_S = 30.0
MID_STREAM_PIECES = 3
REGION = "us-west-2"
CREDENTIALS = AwsCredentials("AKIDEXAMPLEJETGATE01", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

_FAILURES: dict[str, p.ErrorSpec] = {
    "fail-throttling": p.THROTTLING, "fail-unavailable": p.SERVICE_UNAVAILABLE, "fail-not-ready": p.MODEL_NOT_READY,
    "fail-internal": p.INTERNAL, "fail-access": p.ACCESS_DENIED, "fail-not-found": p.NOT_FOUND,
    "fail-timeout": p.MODEL_TIMEOUT, "fail-validation": p.validation("Malformed input request: fake runtime refused "
                                                                      "this request"),
    "too-long": p.INPUT_TOO_LONG,
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as sent, still percent-encoded
    model: str  # decoded
    headers: dict[str, str]  # lower-case names
    json: Any


class FakeBedrock:
    """Start with `start()` (or `with FakeBedrock() as fake:`); point the provider's `endpoint_url` at `.endpoint`."""

    def __init__(self, *, credentials: AwsCredentials = CREDENTIALS, region: str = REGION,
                 api_key: str | None = None) -> None:
        self.credentials = credentials
        self.region = region
        self.api_key = api_key
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = ThreadedServer(self._app(), "fake-bedrock")

    def start(self) -> FakeBedrock:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeBedrock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
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
            Route("/model/{model_id:path}/converse", self._converse, methods=["POST"]),
            Route("/model/{model_id:path}/converse-stream", self._converse_stream, methods=["POST"]),
            Route("/model/{model_id:path}/invoke", self._invoke, methods=["POST"]),
            Route("/{rest:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE"]),
        ])

    async def _receive(self, request: Request) -> tuple[str, Any, Response | None]:
        """Record the request, then verify its credentials."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw_path = request.scope["raw_path"].decode()
        model = str(request.path_params.get("model_id", ""))
        with self._lock:
            self._requests.append(RecordedRequest(request.method, raw_path, model, headers, body))
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth.startswith("Bearer "):
            problem = None if auth[7:] == self.api_key else p.UNRECOGNIZED_CLIENT
        else:
            problem = signature_problem(request.method, f"http://{headers.get('host', '')}", raw_path,
                                        request.scope["query_string"].decode(), headers, raw, self.credentials,
                                        self.region)
        return model, body, (_error(problem) if problem is not None else None)

    async def _converse(self, request: Request) -> Response:
        model, body, early = await self._receive(request)
        if early is not None:
            return early
        failed = await self._refusal(model, body)
        if failed is not None:
            return failed
        tool = p.chosen_tool(body)
        if tool is not None:
            content = [p.text_block(p.TOOL_PREAMBLE), p.tool_use_block(*tool)]
            return _json(200, p.converse_response(content, "tool_use", self._usage(body, model, p.COMPLETION_TOKENS)))
        pieces, stop_reason = p.reply_pieces(body)
        if model == "guardrail":
            pieces, stop_reason = ["Sorry, the model cannot answer this question."], "guardrail_intervened"
        use = self._usage(body, model, len(pieces))
        return _json(200, p.converse_response([p.text_block("".join(pieces))], stop_reason, use))

    async def _converse_stream(self, request: Request) -> Response:
        model, body, early = await self._receive(request)
        if early is not None:
            return early
        failed = await self._refusal(model, body)
        if failed is not None:
            return failed
        tool = p.chosen_tool(body)
        if tool is not None:
            frames = [event(*e) for e in p.tool_stream(tool[0], tool[1], self._usage(body, model, p.COMPLETION_TOKENS))]
            return _stream(frames)
        pieces, stop_reason = p.reply_pieces(body)
        frames = [event(*e) for e in p.text_stream(pieces, stop_reason, self._usage(body, model, len(pieces)))]
        if model == "stream-throttled":
            frames = [exception(p.stream_exception_type(p.THROTTLING[0]), p.THROTTLING[2])]
        elif model == "stream-error-mid":
            frames = [*frames[:1 + MID_STREAM_PIECES],
                      exception("modelStreamErrorException", "The model stream failed: upstream model error")]
        elif model == "stream-cut":
            frames = frames[:1 + MID_STREAM_PIECES]
        return _stream(frames)

    async def _refusal(self, model: str, body: Any) -> Response | None:
        if model in _FAILURES:
            return _error(_FAILURES[model])
        if "embed" in model:
            return _error(p.validation("This action doesn't support the model that you provided. Try again with a "
                                       "supported text or chat model."))
        problem = converse_problem(body, model)
        if problem is not None:
            return _error(p.validation(problem))
        if model == "hang":
            await asyncio.sleep(HANG_S)
        return None

    def _usage(self, body: dict[str, Any], model: str, output_tokens: int) -> p.Json:
        if "cache-hit" in model:
            return p.usage(p.count_input_tokens(body), output_tokens, p.CACHE_READ_TOKENS, p.CACHE_WRITE_TOKENS)
        return p.usage(p.count_input_tokens(body), output_tokens)

    async def _invoke(self, request: Request) -> Response:
        model, body, early = await self._receive(request)
        if early is not None:
            return early
        if not model.startswith("amazon.titan-embed-text-v2"):
            return _error(p.validation("The provided model identifier is invalid."))
        if not isinstance(body, dict) or not isinstance(body.get("inputText"), str) or not body["inputText"]:
            return _error(p.validation("Malformed input request: #: required key [inputText] not found, please "
                                       "reformat your input and try again."))
        dimensions = body.get("dimensions", p.TITAN_V2_DIMENSIONS[0])
        if dimensions not in p.TITAN_V2_DIMENSIONS:
            return _error(p.validation(f"Malformed input request: #/dimensions: {dimensions} is not a valid enum "
                                       "value, please reformat your input and try again."))
        return _json(200, p.titan_response(body["inputText"], dimensions))

    async def _unknown(self, request: Request) -> Response:
        await self._receive(request)
        return _error(("UnknownOperationException", 404, "UnknownOperationException"))


def _headers() -> dict[str, str]:
    return {"x-amzn-requestid": p.request_id()}


def _json(status: int, body: p.Json, extra: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**_headers(), **(extra or {})})


def _error(spec: p.ErrorSpec) -> JSONResponse:
    return _json(spec[1], p.error_body(spec), {"x-amzn-errortype": p.error_type_header(spec[0])})


async def _pieces(frames: list[bytes]) -> AsyncIterator[bytes]:
    """The frames as a network delivers them: a message split across writes, and two messages in one."""
    data = b"".join(frames)
    start, sizes = 0, (37, 311)  # short writes cut messages; long ones carry several
    while start < len(data):
        size = sizes[(start // 7) % 2]
        yield data[start:start + size]
        start += size
        await asyncio.sleep(0)


def _stream(frames: list[bytes]) -> Response:
    return StreamingResponse(_pieces(frames), media_type="application/vnd.amazon.eventstream", headers=_headers())
