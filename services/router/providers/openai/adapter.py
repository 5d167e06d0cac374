"""The adapter for OpenAI-compatible upstreams: the client's body goes out as is (with the
deployment's model name), the answer comes back as is; only usage is read from it."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.providers.base import ChatCall, Chunk, Completion, EmbeddingsCall, Provider
from services.router.providers.openai.config import OpenAIConfig
from services.router.providers.openai.errors import error_from_response, error_mid_stream
from services.router.sse import read_sse
from shared.errors import UpstreamError
from shared.openai_types import Usage
from shared.secrets import resolve_secret


def _usage(value: Any) -> Usage | None:
    return Usage.model_validate(value) if isinstance(value, dict) else None


def chunk_text(chunk: dict[str, Any]) -> str:
    """The generated text (content and tool-call names and arguments) one chunk carries."""
    parts: list[str] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            parts.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(function.get("name") or "")
            parts.append(function.get("arguments") or "")
    return "".join(parts)


class OpenAIProvider(Provider[OpenAIConfig]):
    config_model = OpenAIConfig

    def __init__(self, config: OpenAIConfig, http: UpstreamHttp) -> None:
        super().__init__(config, http)
        self._base = config.base_url.rstrip("/")
        self._timeouts = UpstreamTimeouts(config.timeout_s, config.connect_timeout_s)
        self._headers = {"content-type": "application/json", **config.headers}
        self._drop_fields = tuple(config.drop_fields or ())
        self._drop_message_fields = frozenset(config.drop_message_fields or ())
        secret = resolve_secret(config.api_key)
        if secret is not None:
            self._headers["authorization"] = f"Bearer {secret.get_secret_value()}"

    async def _post(self, path: str, payload: dict[str, Any]) -> Completion:
        response = await self.http.post(self.name, self._base + path, orjson.dumps(payload), self._headers,
                                        self._timeouts)
        if response.status >= 400:
            raise error_from_response(self.name, response.status, response.content, response.headers)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.name} returned a body that is not JSON", retryable=True) from None
        usage = answer.get("usage") if isinstance(answer, dict) else None
        return Completion(response.content, _usage(usage))

    def _body(self, call: ChatCall) -> dict[str, Any]:
        """The client's body for this upstream: the deployment's model name, and without the
        fields this upstream refuses (its preset's quirks, or the entry's own list)."""
        body = {**call.body, "model": call.model}
        for field in self._drop_fields:
            body.pop(field, None)
        if self._drop_message_fields and isinstance(body.get("messages"), list):
            body["messages"] = [{k: v for k, v in m.items() if k not in self._drop_message_fields}
                                if isinstance(m, dict) else m for m in body["messages"]]
        return body

    async def chat(self, call: ChatCall) -> Completion:
        return await self._post("/chat/completions", self._body(call))

    async def embeddings(self, call: EmbeddingsCall) -> Completion:
        return await self._post("/embeddings", {**call.body, "model": call.model})

    async def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        # usage is always asked for, so every stream is charged; the router drops the
        # usage chunk when the client did not ask for it
        payload = {**self._body(call), "stream": True}
        if self.config.stream_usage:
            payload["stream_options"] = {**(call.body.get("stream_options") or {}), "include_usage": True}
        else:
            payload.pop("stream_options", None)
        async with self.http.stream(self.name, self._base + "/chat/completions", orjson.dumps(payload),
                                    self._headers, self._timeouts) as response:
            if response.status >= 400:
                raise error_from_response(self.name, response.status, await response.read(), response.headers)
            async for event in read_sse(response.lines()):
                if event.data == "[DONE]":
                    return
                try:
                    parsed = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(f"provider {self.name} sent a stream event that is not JSON") from None
                if "error" in parsed and "choices" not in parsed:
                    raise error_mid_stream(self.name, parsed["error"])
                usage = _usage(parsed.get("usage"))
                yield Chunk(event.data.encode(), usage, chunk_text(parsed),
                            usage_only=usage is not None and not parsed.get("choices"))
