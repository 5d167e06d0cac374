"""The OpenAI-compatible API: chat completions (plain and SSE), embeddings, models.

A request is read and validated once, its model resolved once (policy), and sent into the
pipeline as one call: the envelope of what was decided, and the body as the client sent it.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.ingress.access import ChatKey, EmbeddingsKey
from services.ingress.audit import RequestAudit
from services.ingress.body import parse_body, read_body
from services.ingress.hot_lane import Lane
from services.ingress.limits.admission import Ticket
from services.ingress.openapi import V1_ERRORS, body_of, errors
from services.ingress.policy import resolve_model, visible_models
from services.ingress.sse import SseResponse
from services.ingress.state import CurrentKey, IngressState, State, request_id_of
from shared.errors import (
    GatewayError,
    InsufficientQuota,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
)
from shared.events import Principal
from shared.ids import uuid7
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest
from shared.pipeline import Endpoint
from shared.protocol import Call, CallEnvelope
from shared.tenancy import Scope

router = APIRouter(prefix="/v1", responses=errors(*V1_ERRORS))
CHAT_PATH, EMBEDDINGS_PATH = "/chat/completions", "/embeddings"

DENIALS = ("guardrail_blocked",)  # pipeline refusals recorded as `request.denied`, not failures


async def admit(state: IngressState, audit: RequestAudit, model: str, endpoint: Endpoint,
                body: Callable[[], dict[str, Any]]) -> Ticket:
    """Policy, then `request.received`; a key refused a model, or over a rate limit or
    budget on its path, leaves `request.denied`, an unknown model `request.failed`. While
    the event log is saturated nothing is taken (503) and nothing recorded, so the events
    waiting stay bounded. `body` gives the request as JSON (read only when a limit needs
    an estimate); the ticket settles the limits when the call ends and holds the
    x-ratelimit-* headers (`limited`)."""
    state.bus.require()  # NATS away: 503 at once, before anything is recorded
    if state.events.saturated:
        raise ServiceUnavailable("The event log is unreachable; the gateway accepts no work it cannot record.",
                                 retry_after="5")
    try:
        config = resolve_model(state.config, audit.principal, model, endpoint)
        ticket = await state.limiter.admit(audit.principal, endpoint, state.routes[model], config.max_output_tokens,
                                           body)
    except (PermissionDenied, RateLimited, InsufficientQuota) as error:
        audit.denied(error)
        raise
    except GatewayError as error:
        audit.failed(error)
        raise
    audit.received()
    return ticket


def json_of(raw: bytes) -> Callable[[], dict[str, Any]]:
    """The body as a JSON object, parsed when asked (it was validated already)."""
    def parse() -> dict[str, Any]:
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else {}
    return parse


R = TypeVar("R", bound=Response)


def limited(response: R, ticket: Ticket) -> R:
    """The response with the rate-limit (and budget warning) headers of its admission."""
    if ticket.headers:
        response.headers.update(ticket.headers)
    return response


def new_call(state: IngressState, principal: Principal, request_id: str, endpoint: Endpoint, model: str,
             raw: bytes, *, stream: bool = False, include_usage: bool = False) -> Call:
    route = state.routes[model]
    envelope = CallEnvelope(
        call_id=uuid7(), request_id=request_id, principal=principal, endpoint=endpoint, stream=stream,
        include_usage=include_usage, deadline=time.time() + (route.timeout_s or state.settings.ingress.worker_timeout_s),
        route=route, stages=list(state.pipelines[endpoint]))
    return Call(envelope, raw)


M = TypeVar("M", bound=BaseModel)

INTERNAL = "The gateway had an internal error."


def client_gone(request: Request) -> Callable[[], Awaitable[None]]:
    """Returns once the client has closed the connection (its body is already read, so the
    next ASGI message is the disconnect)."""
    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            continue

    return wait


async def read_validated(request: Request, state: IngressState, kind: type[M], audit: RequestAudit) -> tuple[bytes, M]:
    """The body, once: a refused one (413, 400) still leaves its audit trail, `request.failed`
    (unless the event log is saturated: then nothing more is queued)."""
    try:
        raw = await read_body(request, state.settings.ingress.max_body_bytes)
        return raw, parse_body(raw, kind, state.settings.ingress.max_json_depth)
    except GatewayError as error:
        if not state.events.saturated:
            audit.failed(error)
        raise


def ended(audit: RequestAudit, error: BaseException) -> None:
    """The last event of an admitted request that did not complete."""
    if not isinstance(error, GatewayError):
        audit.failed(GatewayError(INTERNAL, code="internal_error"), reason=type(error).__name__)
    elif error.code in DENIALS:
        audit.denied(error)
    else:
        audit.failed(error)


async def served(request: Request, state: IngressState, audit: RequestAudit, call: Call, ticket: Ticket,
                 media_type: str = "application/json") -> Response:
    """An admitted call through the pipeline, as SSE when it streams, else as one answer;
    recorded, its limits settled (a bus outage past its wait is cut by the pipeline client)."""
    try:
        if call.envelope.stream:
            return limited(SseResponse(await state.pipeline.open_stream(call, ticket.settle), audit), ticket)
        reply = await state.pipeline.call(call, client_gone(request), ticket.settle)
    except Exception as error:
        ended(audit, error)
        raise
    audit.completed(reply.status)
    return limited(Response(reply.body, status_code=reply.status, media_type=media_type, headers=reply.headers),
                   ticket)


@router.post(CHAT_PATH, openapi_extra=body_of(ChatCompletionRequest))
async def chat_completions(request: Request, principal: ChatKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, ChatCompletionRequest, audit)
    stream = bool(parsed.stream)
    audit.model, audit.stream = parsed.model, stream
    ticket = await admit(state, audit, parsed.model, Endpoint.CHAT, json_of(raw))
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    call = new_call(state, principal, audit.request_id, Endpoint.CHAT, parsed.model, raw, stream=stream,
                    include_usage=include_usage)
    return await served(request, state, audit, call, ticket)


@router.post(EMBEDDINGS_PATH, openapi_extra=body_of(EmbeddingsRequest))
async def embeddings(request: Request, principal: EmbeddingsKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, EmbeddingsRequest, audit)
    audit.model = parsed.model
    ticket = await admit(state, audit, parsed.model, Endpoint.EMBEDDINGS, json_of(raw))
    call = new_call(state, principal, audit.request_id, Endpoint.EMBEDDINGS, parsed.model, raw)
    return await served(request, state, audit, call, ticket)


# the two calls that carry the traffic, served past FastAPI's routing (services/ingress/hot_lane.py)
LANES = (Lane(router.prefix + CHAT_PATH, Scope.CHAT, chat_completions),
         Lane(router.prefix + EMBEDDINGS_PATH, Scope.EMBEDDINGS, embeddings))


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
