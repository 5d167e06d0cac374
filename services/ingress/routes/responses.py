"""The OpenAI Responses API: `POST /v1/responses` (plain and typed SSE events), `GET` and
`DELETE /v1/responses/{id}`.

A request is translated into the gateway's chat body (responses_api/to_chat.py) and sent
down the same pipeline as `/v1/chat/completions`: policy, guardrails, router, usage and
audit events alike. The answer is translated back into a `response` object, kept in the
store for the key's org unless `store` is false, so a later `previous_response_id` goes on
from its conversation.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.ingress.access import ChatKey
from services.ingress.audit import RequestAudit
from services.ingress.body import parse_body, read_body
from services.ingress.openapi import V1_ERRORS, body_of, errors
from services.ingress.responses_api.events import ResponseEvents
from services.ingress.responses_api.from_chat import assistant_message, response_of, skeleton
from services.ingress.responses_api.objects import ResponseObject
from services.ingress.responses_api.relay import ResponseEventStream
from services.ingress.responses_api.request import ResponsesRequest
from services.ingress.responses_api.store import ResponseStore
from services.ingress.responses_api.to_chat import chat_body
from services.ingress.routes.openai import DENIALS, admit, limited, new_call
from services.ingress.state import IngressState, State, request_id_of
from shared.errors import GatewayError
from shared.events import Principal
from shared.pipeline import Endpoint

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", responses=errors(*V1_ERRORS))


def _store(state: IngressState) -> ResponseStore:
    return ResponseStore(state.engine, state.settings.ingress.response_store_timeout_s)


async def _keep(store: ResponseStore, principal: Principal, response: ResponseObject,
                conversation: list[dict[str, Any]]) -> None:
    """Store a finished response; the client has paid for it, so a store failure is logged, not raised."""
    if not response.store:
        return
    answer = assistant_message(response)
    try:
        await store.save(principal, response, [*conversation, *([answer] if answer else [])])
    except GatewayError as error:
        log.warning("response %s not stored: %s", response.id, error.message)


@router.post("/responses", openapi_extra=body_of(ResponsesRequest))
async def create_response(request: Request, principal: ChatKey, state: State) -> Response:
    raw = await read_body(request, state.settings.ingress.max_body_bytes)
    parsed = parse_body(raw, ResponsesRequest)
    store = _store(state)
    history: list[dict[str, Any]] = []
    if parsed.previous_response_id:
        history = (await store.get(principal, parsed.previous_response_id, "previous_response_id")).messages
    body, conversation = chat_body(parsed, history)
    stream = bool(parsed.stream)
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, parsed.model, stream)
    ticket = await admit(state, audit, parsed.model, Endpoint.CHAT, lambda: body)
    call = new_call(state, principal, audit.request_id, Endpoint.CHAT, parsed.model, orjson.dumps(body),
                    stream=stream, include_usage=stream)
    base = skeleton(parsed)
    try:
        if stream:
            frames = await state.pipeline.open_stream(call, ticket.settle)

            async def on_done(response: ResponseObject) -> None:
                await _keep(store, principal, response, conversation)

            return limited(ResponseEventStream(frames, ResponseEvents(base), audit, on_done), ticket)
        reply = await state.pipeline.call(call, settle=ticket.settle)
        if reply.status != 200:
            audit.completed(reply.status)
            return limited(Response(reply.body, status_code=reply.status, media_type="application/json",
                                    headers=reply.headers), ticket)
        response = response_of(base, reply.body)
    except GatewayError as error:
        if error.code in DENIALS:
            audit.denied(error)
        else:
            audit.failed(error)
        raise
    await _keep(store, principal, response, conversation)
    audit.completed(200)
    return limited(Response(orjson.dumps(response.dump()), media_type="application/json"), ticket)


@router.get("/responses/{response_id}")
async def get_response(response_id: str, principal: ChatKey, state: State) -> dict[str, Any]:
    return (await _store(state).get(principal, response_id)).response


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, principal: ChatKey, state: State) -> dict[str, Any]:
    await _store(state).delete(principal, response_id)
    return {"id": response_id, "object": "response", "deleted": True}
