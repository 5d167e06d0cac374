"""OpenAI's other endpoints: legacy completions (plain and SSE), moderations, image
generation, speech (a binary answer) and transcriptions (a multipart upload), each sent
into the pipeline as one call, as chat and embeddings are (services/ingress/routes/openai.py):
validated once, policy (the model's `mode` must be the endpoint's), usage and audit the same.
Providers that do not offer an endpoint answer 400 `unsupported_endpoint`.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.ingress.audit import RequestAudit
from services.ingress.openapi import V1_ERRORS, body_of, errors
from services.ingress.routes.openai import admit, client_gone, ended, new_call, read_validated
from services.ingress.sse import SseResponse
from services.ingress.state import CurrentKey, State, request_id_of
from shared.openai_completions import CompletionsRequest
from shared.pipeline import Endpoint

router = APIRouter(prefix="/v1", responses=errors(*V1_ERRORS))


@router.post("/completions", openapi_extra=body_of(CompletionsRequest))
async def completions(request: Request, principal: CurrentKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, CompletionsRequest, audit)
    stream = bool(parsed.stream)
    audit.model, audit.stream = parsed.model, stream
    admit(state, audit, parsed.model, Endpoint.COMPLETIONS)
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    call = new_call(state, principal, audit.request_id, Endpoint.COMPLETIONS, parsed.model, raw, stream=stream,
                    include_usage=include_usage)
    try:
        with state.bus.call():
            if stream:
                return SseResponse(await state.pipeline.open_stream(call), audit)
            reply = await state.pipeline.call(call, client_gone(request))
    except Exception as error:
        ended(audit, error)
        raise
    audit.completed(reply.status)
    return Response(reply.body, status_code=reply.status, media_type="application/json")
