"""The OpenAI Responses API: `POST /v1/responses` (plain and typed SSE events), `GET` and
`DELETE /v1/responses/{id}`.

A request is validated (shared/openai_responses.py: what the gateway does not translate
is kept as sent) and sent down its own pipeline (`Endpoint.RESPONSES`: policy,
guardrails, router; usage and audit events as for chat completions). The router serves
each deployment natively where its provider has the Responses API, else translates to
chat completions (services/router/responses/). The answer is the `response` object as the
client sees it (responses_api/conversation.py), kept in the store for the key's org with
its conversation unless `store` is false, so a later `previous_response_id` goes on from it.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.ingress.access import ChatKey
from services.ingress.audit import RequestAudit
from services.ingress.openapi import V1_ERRORS, body_of, errors
from services.ingress.responses_api.conversation import kept_items, outgoing, presented
from services.ingress.responses_api.relay import ResponseEventStream
from services.ingress.responses_api.store import ResponseStore
from services.ingress.routes.openai import admit, client_gone, ended, limited, new_call, read_validated
from services.ingress.state import IngressState, State, request_id_of
from shared.errors import GatewayError, UpstreamError
from shared.events import Principal
from shared.openai_responses import ResponsesRequest
from shared.pipeline import Endpoint

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", responses=errors(*V1_ERRORS))

Json = dict[str, Any]


def _store(state: IngressState) -> ResponseStore:
    return ResponseStore(state.engine, state.settings.ingress.response_store_timeout_s)


async def _keep(store: ResponseStore, principal: Principal, request: ResponsesRequest, response: Json,
                conversation: list[Json]) -> None:
    """Store a finished response; the client has paid for it, so a store failure is logged, not raised."""
    if not request.stored:
        return
    try:
        await store.save(principal, response, kept_items(conversation, response))
    except GatewayError as error:
        log.warning("response %s not stored: %s", response.get("id"), error.message)


def _answer(raw: bytes, request: ResponsesRequest) -> Json:
    try:
        response = orjson.loads(raw)
    except orjson.JSONDecodeError:
        response = None
    if not isinstance(response, dict):
        raise UpstreamError("The provider's answer is not a response object.")
    return presented(response, request)


@router.post("/responses", openapi_extra=body_of(ResponsesRequest))
async def create_response(request: Request, principal: ChatKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, ResponsesRequest, audit)
    stream = bool(parsed.stream)
    audit.model, audit.stream = parsed.model, stream
    store = _store(state)
    try:
        history = (await store.get(principal, parsed.previous_response_id, "previous_response_id")).items \
            if parsed.previous_response_id else []
        body, conversation = outgoing(parsed, orjson.loads(raw), history)
    except GatewayError as error:
        audit.failed(error)
        raise
    ticket = await admit(state, audit, parsed.model, Endpoint.RESPONSES, lambda: body)
    call = new_call(state, principal, audit.request_id, Endpoint.RESPONSES, parsed.model, orjson.dumps(body),
                    stream=stream, include_usage=stream)
    try:
        if stream:
            frames = await state.pipeline.open_stream(call, ticket.settle)

            async def on_done(response: Json) -> None:
                await _keep(store, principal, parsed, response, conversation)

            return limited(ResponseEventStream(frames, audit, lambda response: presented(response, parsed), on_done),
                           ticket)
        reply = await state.pipeline.call(call, client_gone(request), ticket.settle)
        if reply.status != 200:
            audit.completed(reply.status)
            return limited(Response(reply.body, status_code=reply.status, media_type="application/json",
                                    headers=reply.headers), ticket)
        response = _answer(reply.body, parsed)
    except Exception as error:
        ended(audit, error)
        raise
    await _keep(store, principal, parsed, response, conversation)
    audit.completed(200)
    return limited(Response(orjson.dumps(response), media_type="application/json", headers=reply.headers), ticket)


@router.get("/responses/{response_id}")
async def get_response(response_id: str, principal: ChatKey, state: State) -> dict[str, Any]:
    return (await _store(state).get(principal, response_id)).response


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, principal: ChatKey, state: State) -> dict[str, Any]:
    await _store(state).delete(principal, response_id)
    return {"id": response_id, "object": "response", "deleted": True}
