"""The OpenAI-compatible API: chat completions (plain and SSE), embeddings, models.

A request is read and validated once, its model resolved once (policy), and sent into the
pipeline as one call: the envelope of what was decided, and the body as the client sent it.
"""
from __future__ import annotations

import time
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.ingress.audit import RequestAudit
from services.ingress.body import parse_body, read_body
from services.ingress.policy import resolve_model, visible_models
from services.ingress.sse import SseResponse
from services.ingress.state import CurrentKey, IngressState, State, request_id_of
from shared.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, ServiceUnavailable
from shared.events import Principal
from shared.ids import uuid7
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest
from shared.pipeline import Endpoint
from shared.protocol import Call, CallEnvelope

router = APIRouter(prefix="/v1")

DENIALS = ("guardrail_blocked",)  # pipeline refusals recorded as `request.denied`, not failures


def admit(state: IngressState, audit: RequestAudit, model: str, endpoint: Endpoint) -> None:
    """Policy, then `request.received`; a key refused a model leaves `request.denied`."""
    if state.events.saturated:
        raise ServiceUnavailable("The event log is unreachable; the gateway accepts no work it cannot record.",
                                 retry_after="5")
    try:
        resolve_model(state.config, audit.principal, model, endpoint)
    except PermissionDenied as error:
        audit.denied(error)
        raise
    audit.received()


def new_call(state: IngressState, principal: Principal, request_id: str, endpoint: Endpoint, model: str,
             raw: bytes, *, stream: bool = False, include_usage: bool = False) -> Call:
    envelope = CallEnvelope(
        call_id=uuid7(), request_id=request_id, principal=principal, endpoint=endpoint, stream=stream,
        include_usage=include_usage, deadline=time.time() + state.settings.ingress.worker_timeout_s,
        route=state.routes[model], stages=list(state.pipelines[endpoint]))
    return Call(envelope, raw)


M = TypeVar("M", bound=BaseModel)


async def _read(request: Request, state: IngressState, kind: type[M]) -> tuple[bytes, M]:
    raw = await read_body(request, state.settings.ingress.max_body_bytes)
    return raw, parse_body(raw, kind)


@router.post("/chat/completions")
async def chat_completions(request: Request, principal: CurrentKey, state: State) -> Response:
    raw, parsed = await _read(request, state, ChatCompletionRequest)
    stream = bool(parsed.stream)
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, parsed.model, stream)
    admit(state, audit, parsed.model, Endpoint.CHAT)
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    call = new_call(state, principal, audit.request_id, Endpoint.CHAT, parsed.model, raw, stream=stream,
                    include_usage=include_usage)
    try:
        if stream:
            return SseResponse(await state.pipeline.open_stream(call), audit)
        reply = await state.pipeline.call(call)
    except GatewayError as error:
        if error.code in DENIALS:
            audit.denied(error)
        else:
            audit.failed(error)
        raise
    audit.completed(reply.status)
    return Response(reply.body, status_code=reply.status, media_type="application/json")


@router.post("/embeddings")
async def embeddings(request: Request, principal: CurrentKey, state: State) -> Response:
    raw, parsed = await _read(request, state, EmbeddingsRequest)
    if parsed.input == "" or parsed.input == []:
        raise InvalidRequest("'input' must not be empty.", param="input")
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, parsed.model)
    admit(state, audit, parsed.model, Endpoint.EMBEDDINGS)
    call = new_call(state, principal, audit.request_id, Endpoint.EMBEDDINGS, parsed.model, raw)
    try:
        reply = await state.pipeline.call(call)
    except GatewayError as error:
        if error.code in DENIALS:
            audit.denied(error)
        else:
            audit.failed(error)
        raise
    audit.completed(reply.status)
    return Response(reply.body, status_code=reply.status, media_type="application/json")


def _model_object(name: str, owned_by: str, created: int) -> dict[str, object]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}


@router.get("/models")
async def list_models(principal: CurrentKey, state: State) -> dict[str, object]:
    models = visible_models(state.config, principal)
    return {"object": "list", "data": [_model_object(m.name, m.owned_by, state.started) for m in models]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, principal: CurrentKey, state: State) -> dict[str, object]:
    for model in visible_models(state.config, principal):
        if model.name == model_id:
            return _model_object(model.name, model.owned_by, state.started)
    raise NotFound(f"The model '{model_id}' does not exist", param="model")
