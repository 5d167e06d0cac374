"""Pass-through: `/p/{provider}/...` to a configured provider's native API (Anthropic's
Messages, OpenAI's whole API, Gemini's `generateContent`, ...), with the gateway's key,
policy, usage and audit, and the provider's credentials added by the router.

The ingress checks the key (in `Authorization: Bearer`, `x-api-key` or `x-goog-api-key`,
so each provider's own SDK can send it), the provider, the path and query
(shared/native.py: 400 for anything that could leave the provider's base URL) and the
model (services/ingress/native_policy.py), then sends one call down the pass-through
pipeline (the router only: guardrails cannot read formats they do not know, so these
calls are not checked by them). The body travels as sent; of the client's headers only
FORWARDED_REQUEST_HEADERS do. The answer is the upstream's, relayed as it comes
(services/ingress/native_relay.py).
"""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.ingress.access import requires_scope
from services.ingress.audit import RequestAudit
from services.ingress.body import read_body
from services.ingress.native_policy import native_model, native_route
from services.ingress.native_relay import NativeResponse
from services.ingress.routes.openai import ended, json_of, limited
from services.ingress.state import State, current_principal, request_id_of
from shared.errors import GatewayError, InsufficientQuota, InvalidRequest, PermissionDenied, RateLimited, ServiceUnavailable
from shared.events import Principal
from shared.ids import uuid7
from shared.native import FORWARDED_REQUEST_HEADERS, NativeRequest, native_path, native_query
from shared.pipeline import Endpoint
from shared.protocol import Call, CallEnvelope
from shared.tenancy import Scope

router = APIRouter()

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PREFIX = "/p/"


async def passthrough_principal(request: Request, state: State) -> Principal:
    """The gateway key, wherever the provider's own SDK puts its key (Gemini's: `x-goog-api-key`),
    with the `chat` scope (a pass-through reaches a provider's generation APIs)."""
    google = request.headers.get("x-goog-api-key")
    if google and not request.headers.get("authorization") and not request.headers.get("x-api-key"):
        principal = await state.keys.authenticate(google.strip())
    else:
        principal = await current_principal(request, state)
    return await requires_scope(Scope.CHAT)(principal)


PassthroughKey = Annotated[Principal, Depends(passthrough_principal)]


def _native_parts(request: Request, provider: str) -> tuple[str, str]:
    """The path after `/p/{provider}` and the query, as the client sent them (still encoded)."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("The pass-through path must be ASCII (percent-encode the rest).", param="path",
                             code="invalid_path") from None
    head = PREFIX + provider
    rest = text[len(head):] if text.startswith(head) else text[len(PREFIX):].partition("/")[2]
    if rest and not rest.startswith("/"):
        rest = "/" + rest
    query = request.scope.get("query_string", b"").decode("latin-1")
    return native_path(rest), native_query(query)


@router.api_route("/p/{provider}/{path:path}", methods=METHODS, include_in_schema=False)
@router.api_route("/p/{provider}", methods=METHODS, include_in_schema=False)
async def passthrough(provider: str, request: Request, principal: PassthroughKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    try:
        path, query = _native_parts(request, provider)
        raw = await read_body(request, state.settings.ingress.max_body_bytes)
    except GatewayError as error:
        if not state.events.saturated:
            audit.failed(error)
        raise
    model = native_model(raw, path)
    audit.model = model
    state.bus.require()
    if state.events.saturated:
        raise ServiceUnavailable("The event log is unreachable; the gateway accepts no work it cannot record.",
                                 retry_after="5")
    try:
        route = native_route(state.config, principal, provider, model)
        mapped = state.config.model(route.model)
        ticket = await state.limiter.admit(principal, Endpoint.PASSTHROUGH, route,
                                           mapped.max_output_tokens if mapped is not None else None, json_of(raw))
    except (PermissionDenied, RateLimited, InsufficientQuota) as error:
        audit.denied(error)
        raise
    except GatewayError as error:
        audit.failed(error)
        raise
    audit.received()
    headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name)) is not None}
    envelope = CallEnvelope(
        call_id=uuid7(), request_id=audit.request_id, principal=principal, endpoint=Endpoint.PASSTHROUGH,
        deadline=time.time() + (route.timeout_s or state.settings.ingress.worker_timeout_s), route=route,
        stages=list(state.pipelines[Endpoint.PASSTHROUGH]),
        native=NativeRequest(method=request.method, path=path, query=query, headers=headers))
    try:
        stream = await state.pipeline.open_stream(Call(envelope, raw), ticket.settle)
    except Exception as error:
        ended(audit, error)
        raise
    return limited(NativeResponse(stream, stream.first, audit), ticket)
