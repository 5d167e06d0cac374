"""The adapter for AWS Bedrock: chat through the Converse API (`POST /model/{modelId}/converse`,
and `/converse-stream` in AWS event-stream framing), which speaks the same shapes for every
model family on Bedrock (Anthropic Claude, Meta Llama, Mistral, Amazon Nova, ...), and
embeddings through Titan's InvokeModel. The OpenAI body is translated (request.py), the
answer and the stream's events are translated back (response.py, stream.py), failures are
mapped (errors.py); every request is signed (auth.py)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from yarl import URL

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.providers.base import ChatCall, Chunk, Completion, EmbeddingsCall, Provider
from services.router.providers.bedrock.auth import Signer
from services.router.providers.bedrock.config import BedrockConfig
from services.router.providers.bedrock.embeddings import embeddings_list, is_titan, titan_bodies
from services.router.providers.bedrock.errors import error_from_response
from services.router.providers.bedrock.request import RequestTranslator
from services.router.providers.bedrock.response import chat_completion
from services.router.providers.bedrock.stream import StreamTranslator
from shared.errors import GatewayError, UpstreamError

EVENT_STREAM = "application/vnd.amazon.eventstream"
EMBED_CONCURRENCY = 16  # Titan takes one text per call: a batch's calls in flight at once, at most


class BedrockProvider(Provider[BedrockConfig]):
    config_model = BedrockConfig

    def __init__(self, config: BedrockConfig, http: UpstreamHttp) -> None:
        super().__init__(config, http)
        self._base = config.base_url()
        self._signer = Signer(config)
        self._timeouts = UpstreamTimeouts(config.timeout_s, config.connect_timeout_s)
        self._requests = RequestTranslator(config.name)

    def _url(self, model: str, action: str) -> str:
        # a model id has `:` (and an inference-profile ARN `/`): one path segment, encoded. The
        # HTTP client re-normalizes URLs (`%3A` goes out as `:`); the signature must cover the
        # path as sent, so it is normalized here the same way (yarl, as aiohttp does)
        return str(URL(f"{self._base}/model/{quote(model, safe='')}/{action}"))

    async def chat(self, call: ChatCall) -> Completion:
        url, payload = self._url(call.model, "converse"), orjson.dumps(self._requests.translate(call.body))
        response = await self.http.post(self.name, url, payload, self._signer.sign(url, payload), self._timeouts)
        if response.status >= 400:
            raise error_from_response(self.name, response.status, response.content, response.headers)
        raw, usage = chat_completion(self._parse(response.content), call.model, _request_id(response.headers))
        return Completion(raw, usage)

    async def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        url, payload = self._url(call.model, "converse-stream"), orjson.dumps(self._requests.translate(call.body))
        headers = self._signer.sign(url, payload, accept=EVENT_STREAM)
        async with self.http.stream(self.name, url, payload, headers, self._timeouts) as response:
            if response.status >= 400:
                raise error_from_response(self.name, response.status, await response.read(), response.headers)
            translator = StreamTranslator(self.name, call.model, _request_id(response.headers))
            async for data in response.chunks():
                for chunk in translator.feed(data):
                    yield chunk
                if translator.done:
                    return
        raise UpstreamError(f"provider {self.name} ended its stream before its metadata event (usage)",
                            retryable=not translator.started)

    async def embeddings(self, call: EmbeddingsCall) -> Completion:
        if not is_titan(call.model):
            raise GatewayError(f"provider {self.name} (type bedrock) serves embeddings through Amazon Titan Text "
                               f"Embeddings (amazon.titan-embed-text-*), not {call.model!r}",
                               status=400, type="invalid_request_error", code="unsupported_endpoint", retryable=False)
        url, slots = self._url(call.model, "invoke"), asyncio.Semaphore(EMBED_CONCURRENCY)
        answers = await asyncio.gather(*(self._invoke(url, body, slots) for body in titan_bodies(self.name, call.body)))
        raw, usage = embeddings_list(self.name, answers, call.model, call.body.get("encoding_format"))
        return Completion(raw, usage)

    async def _invoke(self, url: str, payload: bytes, slots: asyncio.Semaphore) -> bytes:
        async with slots:
            response = await self.http.post(self.name, url, payload, self._signer.sign(url, payload), self._timeouts)
        if response.status >= 400:
            raise error_from_response(self.name, response.status, response.content, response.headers)
        return response.content

    def _parse(self, content: bytes) -> dict[str, Any]:
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise UpstreamError(f"provider {self.name} sent an answer that is not a JSON object", retryable=True)
        return parsed


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-amzn-requestid")
