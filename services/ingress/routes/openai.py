"""The OpenAI-compatible API: chat completions (plain and SSE), embeddings, models."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.ingress.audit import RequestAudit
from services.ingress.body import parse_body, read_body
from services.ingress.policy import resolve_model, visible_models
from services.ingress.sse import SseResponse
from services.ingress.state import CurrentKey, IngressState, State, request_id_of
from shared.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, ServiceUnavailable
from shared.ids import uuid7
from shared.messages import ChatRouteRequest, EmbeddingsRouteRequest
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest
from shared.subjects import GUARDRAILS_CHAT, ROUTER_CHAT, ROUTER_EMBEDDINGS

router = APIRouter(prefix="/v1")

def admit(state: IngressState, audit: RequestAudit, model: str, mode: Literal["chat", "embedding"]) -> None:
    """Policy, then `request.received`; a key refused a model leaves `request.denied`."""
    if state.events.saturated:
        raise ServiceUnavailable("The event log is unreachable; the gateway accepts no work it cannot record.",
                                 headers={"Retry-After": "5"})
    try:
        resolve_model(state.config, audit.principal, model, mode)
    except PermissionDenied as error:
        audit.denied(error)
        raise
    audit.received()


@router.post("/chat/completions")
async def chat_completions(request: Request, principal: CurrentKey, state: State) -> Response:
    body = parse_body(await read_body(request, state.settings.max_body_bytes), ChatCompletionRequest)
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, body.model,
                         bool(body.stream))
    admit(state, audit, body.model, "chat")
    # with guardrails on, the call enters the pipeline at guardrails, which hands it to the
    # router; either way the answer comes straight back here
    subject = GUARDRAILS_CHAT if state.config.guardrails.enabled else ROUTER_CHAT
    route = ChatRouteRequest(request_id=audit.request_id, principal=principal, body=body, call_id=uuid7())
    try:
        if body.stream:
            return SseResponse(await state.workers.open_stream(subject, route), audit)
        reply = await state.workers.call(subject, route)
    except GatewayError as error:
        if error.code == "guardrail_blocked":
            audit.denied(error)
        else:
            audit.failed(error)
        raise
    audit.completed(reply.status)
    return Response(reply.body, status_code=reply.status, media_type="application/json")


@router.post("/embeddings")
async def embeddings(request: Request, principal: CurrentKey, state: State) -> Response:
    body = parse_body(await read_body(request, state.settings.max_body_bytes), EmbeddingsRequest)
    if body.input == "" or body.input == []:
        raise InvalidRequest("'input' must not be empty.", param="input")
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, body.model)
    admit(state, audit, body.model, "embedding")
    try:
        reply = await state.workers.call(
            ROUTER_EMBEDDINGS, EmbeddingsRouteRequest(request_id=audit.request_id, principal=principal, body=body))
    except GatewayError as error:
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


