"""OpenAI's other endpoints: legacy completions (plain and SSE), moderations, image
generation, speech (a binary answer) and transcriptions (a multipart upload), each sent
into the pipeline as one call, as chat and embeddings are (services/ingress/routes/openai.py):
validated once, policy (the model's `mode` must be the endpoint's), usage and audit the same.
Providers that do not offer an endpoint answer 400 `unsupported_endpoint`.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.ingress.access import ChatKey
from services.ingress.audit import RequestAudit
from services.ingress.body import read_body
from services.ingress.multipart_form import read_form
from services.ingress.openapi import V1_ERRORS, body_of, errors
from services.ingress.policy import MODE_OF, visible_models
from services.ingress.routes.openai import admit, json_of, new_call, read_validated, served
from services.ingress.state import IngressState, State, request_id_of
from services.ingress.validation_errors import invalid_request
from shared.errors import GatewayError, InvalidRequest
from shared.events import Principal
from shared.native import NativeRequest
from shared.openai_audio import SpeechRequest, TranscriptionForm
from shared.openai_completions import CompletionsRequest
from shared.openai_images import ImagesRequest
from shared.openai_moderations import ModerationsRequest
from shared.pipeline import Endpoint

router = APIRouter(prefix="/v1", responses=errors(*V1_ERRORS))


async def answered(request: Request, state: IngressState, audit: RequestAudit, endpoint: Endpoint, model: str,
                   raw: bytes, media_type: str = "application/json", native: NativeRequest | None = None) -> Response:
    """A whole answer of one call: admitted (policy, limits and budgets, `request.received`),
    sent, recorded, settled. `native`: the request's content type, for a body that is not
    JSON (a multipart form: its estimate is the model's output allowance alone)."""
    audit.model = model
    ticket = await admit(state, audit, model, endpoint, json_of(raw) if native is None else dict)
    call = new_call(state, audit.principal, audit.request_id, endpoint, model, raw)
    call.envelope.native = native
    return await served(request, state, audit, call, ticket, media_type)


def default_model(state: IngressState, principal: Principal, mode: str, param: str = "model") -> str:
    """The model of a request that names none (moderations: OpenAI picks its latest): the
    first model of that mode the key may use."""
    for model in visible_models(state.config, principal):
        if model.mode == mode:
            return model.name
    raise InvalidRequest(f"No {mode} model is configured for this key; name one in `model`.", param=param,
                         code="model_not_found")


@router.post("/moderations", openapi_extra=body_of(ModerationsRequest))
async def moderations(request: Request, principal: ChatKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, ModerationsRequest, audit)
    model = parsed.model or default_model(state, principal, MODE_OF[Endpoint.MODERATIONS])
    return await answered(request, state, audit, Endpoint.MODERATIONS, model, raw)


@router.post("/images/generations", openapi_extra=body_of(ImagesRequest))
async def image_generations(request: Request, principal: ChatKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, ImagesRequest, audit)
    model = parsed.model or default_model(state, principal, MODE_OF[Endpoint.IMAGES])
    return await answered(request, state, audit, Endpoint.IMAGES, model, raw)


@router.post("/audio/speech", openapi_extra=body_of(SpeechRequest))
async def speech(request: Request, principal: ChatKey, state: State) -> Response:
    """The audio as the upstream made it, in the media type of its `response_format`."""
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, SpeechRequest, audit)
    return await answered(request, state, audit, Endpoint.SPEECH, parsed.model, raw, parsed.media_type)


TRANSCRIPTION_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "model"], "additionalProperties": True,
    "properties": {"file": {"type": "string", "format": "binary"}, "model": {"type": "string", "minLength": 1},
                   "language": {"type": "string"}, "prompt": {"type": "string"},
                   "response_format": {"enum": ["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]},
                   "temperature": {"type": "number", "minimum": 0, "maximum": 1}}}}}}}


@router.post("/audio/transcriptions", openapi_extra=TRANSCRIPTION_FORM)
async def transcriptions(request: Request, principal: ChatKey, state: State) -> Response:
    """A multipart upload, read (size-limited) and its fields validated, then forwarded as sent."""
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    content_type = request.headers.get("content-type", "")
    try:
        raw = await read_body(request, state.settings.ingress.max_body_bytes)
        form = read_form(raw, content_type)
        if "file" not in form.files:
            raise InvalidRequest("'file' is a required property", param="file", code="missing_required_parameter")
        fields = form.first()
        try:
            parsed = TranscriptionForm.model_validate(fields)
        except ValidationError as exc:
            raise invalid_request(exc.errors(include_url=False)[0], dict(fields)) from None
    except GatewayError as error:
        if not state.events.saturated:
            audit.failed(error)
        raise
    native = NativeRequest(method="POST", path=request.url.path, headers={"content-type": content_type})
    return await answered(request, state, audit, Endpoint.TRANSCRIPTIONS, parsed.model, raw, parsed.media_type, native)


@router.post("/completions", openapi_extra=body_of(CompletionsRequest))
async def completions(request: Request, principal: ChatKey, state: State) -> Response:
    audit = RequestAudit(state.events, principal, request_id_of(request), request.url.path)
    raw, parsed = await read_validated(request, state, CompletionsRequest, audit)
    stream = bool(parsed.stream)
    audit.model, audit.stream = parsed.model, stream
    ticket = await admit(state, audit, parsed.model, Endpoint.COMPLETIONS, json_of(raw))
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    call = new_call(state, principal, audit.request_id, Endpoint.COMPLETIONS, parsed.model, raw, stream=stream,
                    include_usage=include_usage)
    return await served(request, state, audit, call, ticket)
