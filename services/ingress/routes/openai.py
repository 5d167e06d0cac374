"""The OpenAI-compatible API: chat completions (plain and SSE), embeddings, models."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.ingress.audit import RequestAudit
from services.ingress.body import parse_body, read_body
from services.ingress.policy import resolve_model, visible_models
from services.ingress.sse import sse_events
from services.ingress.state import CurrentKey, IngressState, State, request_id_of
from shared.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from shared.messages import ChatRouteRequest, EmbeddingsRouteRequest, GuardrailRequest
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest
from shared.subjects import ROUTER_CHAT, ROUTER_EMBEDDINGS

router = APIRouter(prefix="/v1")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def admit(state: IngressState, audit: RequestAudit, model: str, mode: Literal["chat", "embedding"]) -> None:
    """Policy, then `request.received`; a key refused a model leaves `request.denied`."""
    try:
        resolve_model(state.config, audit.principal, model, mode)
    except PermissionDenied as error:
        audit.denied(error)
        raise
    audit.received()


async def guard_input(state: IngressState, audit: RequestAudit, body: ChatCompletionRequest) -> None:
    """Input guardrails: a block is a 400 naming the rule; redactions replace the messages."""
    if not state.config.guardrails.enabled:
        return
    verdict = await state.workers.check_input(GuardrailRequest(
        request_id=audit.request_id, principal=audit.principal, model=body.model, messages=body.messages))
    if verdict.verdict == "block":
        error = InvalidRequest(verdict.message or f"Request blocked by guardrail rule '{verdict.rule}'.",
                               code="guardrail_blocked", param="messages")
        audit.denied(error)
        raise error
    if verdict.verdict == "modify" and verdict.messages is not None:
        body.messages = verdict.messages


@router.post("/chat/completions")
async def chat_completions(request: Request, principal: CurrentKey, state: State) -> Response:
    body = parse_body(await read_body(request, state.settings.max_body_bytes), ChatCompletionRequest)
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path, body.model,
                         bool(body.stream))
    admit(state, audit, body.model, "chat")
    try:
        await guard_input(state, audit, body)
        route = ChatRouteRequest(request_id=audit.request_id, principal=principal, body=body)
        if body.stream:
            frames = await state.workers.open_stream(ROUTER_CHAT, route, audit.request_id)
            return StreamingResponse(sse_events(frames, audit), media_type="text/event-stream",
                                     headers=SSE_HEADERS)
        reply = await state.workers.call(ROUTER_CHAT, route)
    except GatewayError as error:
        if error.code != "guardrail_blocked":
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


