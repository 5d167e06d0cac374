"""The adapter for Google's Gemini API: OpenAI chat and embeddings bodies are translated to
`generateContent`, `streamGenerateContent?alt=sse` and `batchEmbedContents` (AI Studio,
`x-goog-api-key`) or Vertex AI's `publishers/google/models/{model}:…` (a service account's
bearer token), and the answers back into OpenAI's shapes."""
from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.native_url import without_version
from services.router.providers.base import ChatCall, Chunk, Completion, EmbeddingsCall, NativeAccess, Provider
from services.router.providers.gemini.auth import VertexTokens
from services.router.providers.gemini.config import GeminiConfig
from services.router.providers.gemini.embeddings import batch_embed_request, embeddings_list, predict_request
from services.router.providers.gemini.errors import error_from_response, error_mid_stream
from services.router.providers.gemini.request import generate_content_request
from services.router.providers.gemini.response import chat_completion
from services.router.providers.gemini.stream import StreamTranslator
from services.router.sse import read_sse
from shared.errors import GatewayError, UpstreamError
from shared.secrets import resolve_secret


class GeminiProvider(Provider[GeminiConfig]):
    config_model = GeminiConfig

    def __init__(self, config: GeminiConfig, http: UpstreamHttp) -> None:
        super().__init__(config, http)
        self._timeouts = UpstreamTimeouts(config.timeout_s, config.connect_timeout_s)
        self._headers = {"content-type": "application/json", **config.headers}
        self._key = ""
        self._tokens: VertexTokens | None = None
        if config.vertex is not None:
            vertex = config.vertex
            self._base = (f"{vertex.api_base()}/projects/{quote(vertex.project, safe='')}"
                          f"/locations/{quote(vertex.location, safe='')}/publishers/google")
            self._tokens = VertexTokens(config.name, vertex, http, self._timeouts)
            self._native_base = without_version(vertex.api_base())
        else:
            self._base = config.base_url.rstrip("/")
            self._native_base = without_version(self._base)
            secret = resolve_secret(config.api_key)
            if secret is not None:
                self._key = secret.get_secret_value()
                self._headers["x-goog-api-key"] = self._key

    async def native_access(self) -> NativeAccess:
        headers = {k: v for k, v in (await self._request_headers()).items() if k != "content-type"}
        return NativeAccess(self._native_base, headers, self._timeouts)

    def _url(self, model: str, method: str) -> str:
        name = model.removeprefix("models/")
        return f"{self._base}/models/{quote(name, safe='-._~@')}:{method}"

    async def _request_headers(self) -> dict[str, str]:
        if self._tokens is None:
            return self._headers
        return {**self._headers, "authorization": f"Bearer {await self._tokens.token()}"}

    def _secrets(self) -> tuple[str, ...]:
        return (self._key, self._tokens.current or "") if self._tokens is not None else (self._key,)

    def _failure(self, status: int, content: bytes, headers: Mapping[str, str]) -> GatewayError:
        if self._tokens is not None and status == 401:
            self._tokens.invalidate()  # the next call fetches a fresh token
        return error_from_response(self.name, status, content, headers, self._secrets())

    async def _post(self, url: str, payload: dict[str, Any]) -> Any:
        response = await self.http.post(self.name, url, orjson.dumps(payload), await self._request_headers(),
                                        self._timeouts)
        if response.status >= 400:
            raise self._failure(response.status, response.content, response.headers)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.name} returned a body that is not JSON", retryable=True) from None

    async def chat(self, call: ChatCall) -> Completion:
        answer = await self._post(self._url(call.model, "generateContent"), generate_content_request(call.body))
        if not isinstance(answer, dict):
            raise UpstreamError(f"provider {self.name} returned an answer of the wrong shape", retryable=True)
        completion, usage = chat_completion(answer, call.model)
        return Completion(orjson.dumps(completion), usage)

    async def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        payload = orjson.dumps(generate_content_request(call.body))
        url = self._url(call.model, "streamGenerateContent") + "?alt=sse"
        async with self.http.stream(self.name, url, payload, await self._request_headers(),
                                    self._timeouts) as response:
            if response.status >= 400:
                raise self._failure(response.status, await response.read(), response.headers)
            translator = StreamTranslator(call.model)
            sent = False
            async for event in read_sse(response.lines()):
                try:
                    parsed = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(f"provider {self.name} sent a stream event that is not JSON") from None
                if not isinstance(parsed, dict):
                    raise UpstreamError(f"provider {self.name} sent a stream event of the wrong shape")
                if "error" in parsed:
                    raise error_mid_stream(self.name, parsed["error"], self._secrets())
                for chunk in translator.feed(parsed):
                    sent = True
                    yield chunk
            if not sent:
                raise UpstreamError(f"provider {self.name} ended the stream without an answer", retryable=True)
            for chunk in translator.close():
                yield chunk

    async def embeddings(self, call: EmbeddingsCall) -> Completion:
        vertex = self._tokens is not None
        name = call.model.removeprefix("models/")
        if vertex:
            request = predict_request(call.body)
            answer = await self._post(self._url(name, "predict"), request)
        else:
            request = batch_embed_request(name, call.body)
            answer = await self._post(self._url(name, "batchEmbedContents"), request)
        body, usage = embeddings_list(self.name, answer, call.body, call.model, vertex)
        return Completion(orjson.dumps(body), usage)
