"""The fake OpenAI upstream's endpoints beside chat and embeddings: `/v1/completions`
(legacy), `/v1/moderations`, `/v1/images/generations`, `/v1/audio/speech` and
`/v1/audio/transcriptions`, answered with the payloads of
services/router/providers/openai/endpoint_payloads.py (what each answers: the docstring of
tests/fakes/openai_upstream.py)."""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.router.providers.openai import endpoint_payloads as ep
from services.router.providers.openai import payloads as p
from shared.openai_audio import SPEECH_MEDIA_TYPES
from tests.fakes.multipart import form_fields
from tests.fakes.openai_wire import json_response, openai_headers


class OtherEndpoints:
    """Mixed into FakeOpenAI, whose request reading (recorded, key checked, failure models),
    event streams and upload record it uses."""

    @abstractmethod
    async def _receive(self, request: Request) -> tuple[Any, Response | None]: ...

    @abstractmethod
    async def _receive_model_request(self, request: Request) -> tuple[p.Json, Response | None]: ...

    @abstractmethod
    def _events(self, chunks: list[p.Json], delay: float, stall_after: int | None = None) -> AsyncIterator[bytes]: ...

    @abstractmethod
    def _record_upload(self, form: dict[str, bytes]) -> None: ...

    async def _completions(self, request: Request) -> Response:
        """The legacy completions endpoint (a `prompt`, `text_completion` answers)."""
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        if "prompt" not in body:
            return json_response(400, p.invalid_request("you must provide a prompt parameter", "prompt"))
        model, prompt_tokens = body["model"], ep.count_prompt_tokens(body["prompt"])
        if body.get("stream") is not True:
            return json_response(200, ep.text_completion(model, prompt_tokens))
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        return StreamingResponse(self._events(ep.text_completion_stream(model, prompt_tokens, asked), 0.0),
                                 media_type="text/event-stream", headers=openai_headers())

    async def _moderations(self, request: Request) -> Response:
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        if not body.get("input"):
            return json_response(400, p.invalid_request("'input' is a required property", "input"))
        return json_response(200, ep.moderation(body["model"], body["input"]))

    async def _images(self, request: Request) -> Response:
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return json_response(400, p.invalid_request("'prompt' is a required property", "prompt"))
        return json_response(200, ep.image_generation(body["model"], body["prompt"], int(body.get("n") or 1),
                                              body.get("response_format")))

    async def _speech(self, request: Request) -> Response:
        body, early = await self._receive_model_request(request)
        if early is not None:
            return early
        if not isinstance(body.get("input"), str) or not body.get("voice"):
            return json_response(400, p.invalid_request("'input' and 'voice' are required properties", "input"))
        audio_format = body.get("response_format") or "mp3"
        return Response(ep.speech_audio(body["input"], audio_format), media_type=SPEECH_MEDIA_TYPES[audio_format],
                        headers=openai_headers())

    async def _transcriptions(self, request: Request) -> Response:
        """A multipart upload (read with the standard library's MIME parser)."""
        _, early = await self._receive(request)
        if early is not None:
            return early
        form = form_fields(await request.body(), request.headers.get("content-type", ""))
        if form is None or "file" not in form or not form.get("model"):
            return json_response(400, p.invalid_request("'file' and 'model' are required", "file"))
        self._record_upload(form)
        response_format = form.get("response_format", b"json").decode()
        answer = ep.transcription(form["model"].decode(), len(form["file"]), response_format)
        if isinstance(answer, str):
            return Response(answer, media_type="text/plain", headers=openai_headers())
        return json_response(200, answer)
