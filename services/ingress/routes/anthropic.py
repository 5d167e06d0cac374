"""The Anthropic Messages API: `POST /v1/messages` (plain and SSE) and
`POST /v1/messages/count_tokens`, in front of any chat model of the gateway.

A request is validated once (services/ingress/anthropic_api/request.py), translated into
the gateway's chat-completions body and sent down the chat pipeline exactly as
`/v1/chat/completions` sends its calls (policy, guardrails, router, usage, audit); the
answer is translated back. Every GatewayError on these routes leaves in Anthropic's error
shape, here, in `AnthropicRoute`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from services.ingress.access import ChatKey
from services.ingress.anthropic_api.answer import message_of
from services.ingress.anthropic_api.errors import AnthropicErrorBody, error_response
from services.ingress.anthropic_api.relay import MessagesSseResponse
from services.ingress.anthropic_api.request import CountTokensRequest, MessagesRequest
from services.ingress.anthropic_api.stream import StreamTranslator
from services.ingress.anthropic_api.to_openai import chat_body, prompt_body
from services.ingress.anthropic_api.tokens import prompt_tokens
from services.ingress.audit import RequestAudit
from services.ingress.body import parse_body, read_body
from services.ingress.openapi import V1_ERRORS, body_of, errors
from services.ingress.policy import resolve_model
from services.ingress.routes.openai import DENIALS, admit, limited, new_call
from services.ingress.state import State, request_id_of
from shared.errors import GatewayError, UpstreamError
from shared.pipeline import Endpoint

log = logging.getLogger(__name__)


class AnthropicRoute(APIRoute):
    """A route whose errors (its dependencies' too: a bad key) are answered in Anthropic's shape,
    and whose responses carry the request id in `request-id` too, as Anthropic's do."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            request_id = request_id_of(request)
            try:
                response = await handler(request)
            except GatewayError as error:
                response = error_response(error, request_id)
            except Exception as exc:
                log.exception("unhandled error in request %s: %s", request_id, type(exc).__name__)
                response = error_response(GatewayError("The gateway had an internal error."), request_id)
            response.headers["request-id"] = request_id  # where Anthropic's SDKs read it (`_request_id`)
            return response

        return answer


router = APIRouter(prefix="/v1", route_class=AnthropicRoute, responses=errors(*V1_ERRORS, shape=AnthropicErrorBody))


def _completion(body: bytes) -> dict[str, Any]:
    try:
        completion = orjson.loads(body)
    except orjson.JSONDecodeError:
        completion = None
    if not isinstance(completion, dict):
        raise UpstreamError("The upstream's answer is not a JSON object.")
    return completion


@router.post("/messages", openapi_extra=body_of(MessagesRequest))
async def messages(request: Request, principal: ChatKey, state: State) -> Response:
    raw = await read_body(request, state.settings.ingress.max_body_bytes)
    parsed = parse_body(raw, MessagesRequest)
    body = chat_body(parsed)
    stream = bool(parsed.stream)
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, parsed.model, stream)
    ticket = await admit(state, audit, parsed.model, Endpoint.CHAT, lambda: body)
    # usage always comes back on the bus: message_delta carries the output tokens
    call = new_call(state, principal, audit.request_id, Endpoint.CHAT, parsed.model, orjson.dumps(body),
                    stream=stream, include_usage=True)
    try:
        if stream:
            translator = StreamTranslator(parsed.model, prompt_tokens(body), parsed.stop_sequences)
            return limited(MessagesSseResponse(await state.pipeline.open_stream(call, ticket.settle), audit,
                                               translator), ticket)
        reply = await state.pipeline.call(call, settle=ticket.settle)
        message = message_of(_completion(reply.body), parsed.model, parsed.stop_sequences)
    except GatewayError as error:
        if error.code in DENIALS:
            audit.denied(error)
        else:
            audit.failed(error)
        raise
    audit.completed(reply.status)
    return limited(Response(orjson.dumps(message), status_code=reply.status, media_type="application/json"), ticket)


@router.post("/messages/count_tokens", openapi_extra=body_of(CountTokensRequest))
async def count_tokens(request: Request, principal: ChatKey, state: State) -> dict[str, int]:
    """Counted in the ingress with the gateway's estimate; no upstream call, nothing charged."""
    raw = await read_body(request, state.settings.ingress.max_body_bytes)
    parsed = parse_body(raw, CountTokensRequest)
    resolve_model(state.config, principal, parsed.model, Endpoint.CHAT)
    return {"input_tokens": prompt_tokens(prompt_body(parsed))}
