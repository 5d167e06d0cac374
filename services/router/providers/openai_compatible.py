"""OpenAI-compatible upstreams (OpenAI, Groq, xAI, vLLM, Ollama's /v1, ...)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from services.router.providers.base import (
    Completion,
    Provider,
    ProviderError,
    StreamChunk,
)
from services.router.upstream_errors import error_from_response, error_from_transport
from shared.config import OpenAIProviderConfig
from shared.openai_types import Usage
from shared.secrets import resolve_secret


class OpenAICompatibleProvider(Provider):
    def __init__(self, config: OpenAIProviderConfig, http: httpx.AsyncClient) -> None:
        self.name = config.name
        self._http = http
        self._base = config.base_url.rstrip("/")
        self._timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self._headers = {"content-type": "application/json", **config.headers}
        secret = resolve_secret(config.api_key)
        if secret is not None:
            self._headers["authorization"] = f"Bearer {secret.get_secret_value()}"

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(self._base + path, content=orjson.dumps(body),
                                             headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise error_from_transport(self.name, exc) from None
        if response.status_code >= 400:
            raise error_from_response(self.name, response.status_code, response.content, response.headers)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ProviderError(502, f"provider {self.name} returned a body that is not JSON",
                                retryable=True) from None

    async def chat(self, body: dict[str, Any], model: str) -> Completion:
        answer = await self._post("/chat/completions", {**body, "model": model})
        usage = answer.get("usage")
        return Completion(answer, Usage.model_validate(usage) if usage else None)

    async def embeddings(self, body: dict[str, Any], model: str) -> Completion:
        answer = await self._post("/embeddings", {**body, "model": model})
        usage = answer.get("usage")
        return Completion(answer, Usage.model_validate(usage) if usage else None)

    async def chat_stream(self, body: dict[str, Any], model: str) -> AsyncIterator[StreamChunk]:
        payload = {**body, "model": model, "stream": True,
                   "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
        request = self._http.build_request("POST", self._base + "/chat/completions", content=orjson.dumps(payload),
                                           headers=self._headers, timeout=self._timeout)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise error_from_transport(self.name, exc) from None
        try:
            if response.status_code >= 400:
                content = await response.aread()
                raise error_from_response(self.name, response.status_code, content, response.headers)
            async for chunk in _sse_chunks(self.name, response):
                yield chunk
        except httpx.HTTPError as exc:
            raise error_from_transport(self.name, exc) from None
        finally:
            await response.aclose()


async def _sse_chunks(provider: str, response: httpx.Response) -> AsyncIterator[StreamChunk]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # comments, `event:` lines, keep-alives, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError(502, f"provider {provider} sent a stream event that is not JSON",
                                retryable=False) from None
        if "error" in parsed and "choices" not in parsed:
            detail = parsed["error"] if isinstance(parsed["error"], dict) else {"message": str(parsed["error"])}
            raise ProviderError(502, f"provider {provider} failed mid-stream: {detail.get('message', 'error')}",
                                retryable=False, code=detail.get("code"))
        yield StreamChunk(data.encode(), parsed)
