"""The adapter for Anthropic's native Messages API (`POST {base_url}/v1/messages`): the
client's OpenAI body is translated (request.py), the answer and its stream events are
translated back (response.py, stream.py), failures are mapped (errors.py)."""
from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any

import orjson

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.providers.anthropic.config import AnthropicConfig
from services.router.providers.anthropic.errors import error_from_response
from services.router.providers.anthropic.request import RequestTranslator
from services.router.providers.anthropic.response import chat_completion
from services.router.providers.anthropic.stream import StreamTranslator
from services.router.providers.base import ChatCall, Chunk, Completion, EmbeddingsCall, NativeAccess, Provider
from services.router.sse import read_sse
from shared.errors import GatewayError, UpstreamError
from shared.native import upstream_info_headers
from shared.secrets import resolve_secret


class AnthropicProvider(Provider[AnthropicConfig]):
    config_model = AnthropicConfig

    def __init__(self, config: AnthropicConfig, http: UpstreamHttp) -> None:
        super().__init__(config, http)
        self._url = config.base_url.rstrip("/") + "/v1/messages"
        self._timeouts = UpstreamTimeouts(config.timeout_s, config.connect_timeout_s)
        self._requests = RequestTranslator(config.name, config.default_max_tokens)
        self._headers = {"content-type": "application/json", "anthropic-version": config.anthropic_version,
                         **config.headers}
        secret = resolve_secret(config.api_key)
        self._credentials = {"x-api-key": secret.get_secret_value()} if secret is not None else {}
        self._headers.update(self._credentials)

    async def native_access(self) -> NativeAccess:
        # the client's own anthropic-version (and beta headers) win: its SDK knows what it speaks
        return NativeAccess(self.config.base_url.rstrip("/"), self._credentials, self._timeouts,
                            defaults={"anthropic-version": self.config.anthropic_version, **self.config.headers})

    def _payload(self, call: ChatCall, *, stream: bool) -> bytes:
        return orjson.dumps(self._requests.translate(call.body, call.model, stream=stream))

    async def chat(self, call: ChatCall) -> Completion:
        response = await self.http.post(self.name, self._url, self._payload(call, stream=False), self._headers,
                                        self._timeouts)
        if response.status >= 400:
            raise error_from_response(self.name, response.status, response.content, response.headers)
        message = self._parse(response.content)
        raw, usage = chat_completion(message, call.model)
        return Completion(raw, usage, upstream_info_headers(response.headers))

    async def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        payload = self._payload(call, stream=True)
        translator = StreamTranslator(self.name, call.model)
        async with self.http.stream(self.name, self._url, payload, self._headers, self._timeouts) as response:
            if response.status >= 400:
                raise error_from_response(self.name, response.status, await response.read(), response.headers)
            info: Mapping[str, str] | None = upstream_info_headers(response.headers)
            async for event in read_sse(response.lines()):
                for chunk in translator.feed(self._parse(event.data.encode())):
                    if info is not None:  # the first chunk carries the upstream's rate limits
                        chunk, info = replace(chunk, headers=info), None
                    yield chunk
                if translator.done:
                    return
        raise UpstreamError(f"provider {self.name} ended its stream before message_stop",
                            retryable=not translator.started)

    async def embeddings(self, call: EmbeddingsCall) -> Completion:
        raise GatewayError(f"provider {self.name} (type anthropic) has no embeddings endpoint; "
                           "route this model to a provider that offers embeddings.",
                           status=400, type="invalid_request_error", code="unsupported_endpoint", retryable=False)

    def _parse(self, content: bytes) -> dict[str, Any]:
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise UpstreamError(f"provider {self.name} sent an answer that is not a JSON object", retryable=True)
        return parsed
