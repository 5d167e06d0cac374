"""The Responses API for a provider that does not serve it: the request translated to a chat
completion (to_chat.py), the answer back to a `response` object (from_chat.py), a stream's
chunks to the typed events (events.py), one chunk each. The `response` echoes the request
with the gateway's model name; usage is the chat call's.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from pydantic import ValidationError

from services.router.providers.base import ChatCall, Chunk, Completion, Provider, ResponsesCall
from services.router.responses.events import ResponseEvents
from services.router.responses.from_chat import parse_answer, response_of, skeleton
from services.router.responses.to_chat import chat_body
from shared.errors import InvalidRequest
from shared.openai_responses import ResponsesRequest
from shared.openai_types import Usage


def _request(call: ResponsesCall) -> ResponsesRequest:
    try:
        return ResponsesRequest.model_validate(call.body)
    except ValidationError:  # the ingress validated it: only a changed call gets here
        raise InvalidRequest("The call's body is not a Responses API request.", code="invalid_call") from None


def _chat(call: ResponsesCall) -> tuple[ResponsesRequest, ChatCall]:
    request = _request(call)
    body, _ = chat_body(request, [])  # earlier turns are in `input` already (the ingress expanded them)
    return request, ChatCall(body, call.model)


async def translated_response(provider: Provider[Any], call: ResponsesCall) -> Completion:
    request, chat = _chat(call)
    completion = await provider.chat(chat)
    response = response_of(skeleton(request), completion.raw)
    return Completion(orjson.dumps(response.dump()), completion.usage, completion.headers)


def _event(event: dict[str, Any], text: str = "", usage: Usage | None = None) -> Chunk:
    return Chunk(orjson.dumps(event), usage, text)


async def translated_stream(provider: Provider[Any], call: ResponsesCall) -> AsyncGenerator[Chunk, None]:
    """Raises before the first event when the chat stream fails before its first chunk (so
    the router can still try the next deployment)."""
    request, chat = _chat(call)
    events = ResponseEvents(skeleton(request))
    upstream = provider.chat_stream(chat)
    try:
        try:
            chunk = await anext(upstream)
        except StopAsyncIteration:
            return
        started = events.start()
        yield Chunk(orjson.dumps(started[0]), headers=chunk.headers)
        for event in started[1:]:
            yield _event(event)
        usage: Usage | None = None
        while True:
            usage = chunk.usage or usage
            text = chunk.text  # on the first event the chunk makes: what a count reads when no usage comes
            for event in events.feed(parse_answer(chunk.raw)):
                yield _event(event, text)
                text = ""
            try:
                chunk = await anext(upstream)
            except StopAsyncIteration:
                break
        *closing, last = events.finish()
        for event in closing:
            yield _event(event)
        yield _event(last, usage=usage)
    finally:
        await upstream.aclose()
