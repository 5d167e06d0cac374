"""The fake OpenAI upstream's `POST /v1/responses` (the Responses API), answered with the
payloads of services/router/providers/openai/responses_payloads.py: a `response` object,
or with `stream: true` its typed events (`event:` and `data:` lines, no `[DONE]`). The
failure models of the fake (`fail-500`, `fail-429`, ...) fail here too; `stream-error`
streams its first events, then an `error` event. A function call when a function tool is
offered and the input does not end with its result; a reasoning item for `o*` models.
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from services.router.providers.openai import responses_payloads as rp

Json = dict[str, Any]


class ResponsesEndpoint:
    """Mixed into FakeOpenAI, whose request reading (recorded, key checked, failure models) it uses."""

    @abstractmethod
    async def _receive_model_request(self, request: Request) -> tuple[Json, Response | None]: ...

    async def _responses(self, request: Request) -> Response:
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        model: str = body["model"]
        if body.get("stream") is not True:
            return JSONResponse(rp.response(body, model), headers={"x-request-id": "req_fake_responses"})
        events = rp.response_events(body, model)
        if model == "stream-error":
            events = [*events[:3], {**rp.error_event("The fake upstream broke off."), "sequence_number": 3}]
        return StreamingResponse(_sse(events), media_type="text/event-stream")


async def _sse(events: list[Json]) -> AsyncIterator[bytes]:
    for event in events:
        yield rp.sse(event)
