"""One deployment's answer to a Responses API call: the provider's own Responses API where it
serves one (`Provider.serves_responses`), else the translation to its chat completions.
Chosen per deployment, so a route's failover may go from one kind to the other."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from services.router.providers.base import Chunk, Completion, ResponsesCall
from services.router.registry import Target
from services.router.responses.translated import translated_response, translated_stream


async def response_from(target: Target, body: dict[str, Any]) -> Completion:
    call = ResponsesCall(body, target.model)
    if target.provider.serves_responses():
        return await target.provider.responses(call)
    return await translated_response(target.provider, call)


def events_from(target: Target, body: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
    call = ResponsesCall(body, target.model)
    if target.provider.serves_responses():
        return target.provider.responses_stream(call)
    return translated_stream(target.provider, call)
