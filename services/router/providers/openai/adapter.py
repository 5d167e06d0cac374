"""The adapter for OpenAI-compatible upstreams: the client's body goes out as is (with the
deployment's model name), the answer comes back as is; only usage is read from it. An
upstream configured to serve the Responses API (`native_responses`) gets `/responses`
calls the same way; for the others the router translates them to chat completions."""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import orjson

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.native_url import without_version
from services.router.providers.base import (
    C,
    ChatCall,
    Chunk,
    Completion,
    EmbeddingsCall,
    EndpointCall,
    NativeAccess,
    Provider,
    ResponsesCall,
)
from services.router.providers.openai.config import OpenAIConfig
from services.router.providers.openai.errors import error_from_response, error_mid_stream
from services.router.providers.openai.multipart import with_field
from services.router.providers.openai.responses import event_chunk, responses_usage
from services.router.sse import read_sse
from shared.errors import UpstreamError
from shared.native import upstream_info_headers
from shared.openai_types import Usage
from shared.secrets import resolve_secret

# above this, an answer is not parsed whole just to read its usage (2,048 embeddings of
# 3,072 floats are ~70 MB of JSON: parsing them would hold the event loop for seconds)
WHOLE_PARSE_BYTES = 1024 * 1024
_USAGE_KEY = b'"usage"'


def _usage(value: Any) -> Usage | None:
    """OpenAI's usage object; the newer endpoints' `input_tokens` / `output_tokens` (images,
    transcriptions) read as prompt and completion. Other fields stay (a transcription's `seconds`)."""
    if not isinstance(value, dict):
        return None
    if "prompt_tokens" not in value and ("input_tokens" in value or "output_tokens" in value):
        return responses_usage(value)
    return Usage.model_validate(value)


def tail_usage(content: bytes) -> Usage | None:
    """The `usage` object of a large answer, read from where OpenAI puts it: the last key."""
    at = content.rfind(_USAGE_KEY)
    if at < 0:
        return None
    rest = content[at + len(_USAGE_KEY):at + len(_USAGE_KEY) + 4096].lstrip()
    if not rest.startswith(b":"):
        return None
    rest = rest[1:].lstrip()
    depth = 0
    for end, byte in enumerate(rest):
        depth += (byte == 0x7B) - (byte == 0x7D)  # { and }
        if depth == 0:
            try:
                return _usage(orjson.loads(rest[:end + 1]))
            except (orjson.JSONDecodeError, ValueError):
                return None
    return None


def completion_text(chunk: dict[str, Any]) -> str:
    """The text one legacy `text_completion` chunk carries."""
    return "".join(c["text"] for c in chunk.get("choices") or () if isinstance(c, dict) and isinstance(c.get("text"), str))


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


class OpenAIWire(Provider[C]):
    """The OpenAI wire protocol: the client's body out (the deployment's model name, the
    upstream's quirks applied), the answer back as is, usage read from it. Subclasses say
    where a call goes (`url`) and how it is authenticated (`auth_headers`)."""

    def __init__(self, config: C, http: UpstreamHttp, *, timeouts: UpstreamTimeouts, headers: dict[str, str],
                 stream_usage: bool = True, drop_fields: frozenset[str] | None = None,
                 drop_message_fields: frozenset[str] | None = None, native_responses: bool = False) -> None:
        super().__init__(config, http)
        self._timeouts = timeouts
        self._headers = {"content-type": "application/json", **headers}
        self._stream_usage = stream_usage
        self._drop_fields = tuple(drop_fields or ())
        self._drop_message_fields = frozenset(drop_message_fields or ())
        self._native_responses = native_responses

    @abstractmethod
    def url(self, path: str, model: str) -> str:
        """Where a call for `path` (`/chat/completions`, `/embeddings`) to `model` goes."""

    async def auth_headers(self) -> Mapping[str, str]:
        """Headers of every call: the static ones, credentials included, unless overridden."""
        return self._headers

    @abstractmethod
    def native_base(self) -> str:
        """The root pass-through paths are appended to (the client's own paths say `/v1/...`)."""

    async def native_access(self) -> NativeAccess:
        credentials = {k: v for k, v in (await self.auth_headers()).items() if k != "content-type"}
        return NativeAccess(self.native_base(), credentials, self._timeouts)

    def responses_url(self, model: str) -> str:
        """Where a Responses API call to `model` goes (its model is named in the body too)."""
        return self.url("/responses", model)

    def serves_responses(self) -> bool:
        return self._native_responses

    async def _post(self, path: str, payload: dict[str, Any], model: str) -> Completion:
        return await self._send(self.url(path, model), orjson.dumps(payload), await self.auth_headers())

    async def _send(self, url: str, content: bytes, headers: Mapping[str, str]) -> Completion:
        response = await self.http.post(self.name, url, content, headers, self._timeouts)
        if response.status >= 400:
            raise error_from_response(self.name, response.status, response.content, response.headers)
        info = upstream_info_headers(response.headers)
        if not response.headers.get("content-type", "application/json").startswith("application/json"):
            return Completion(response.content, None, info)  # audio, a transcript as text: relayed, no usage in it
        if len(response.content) > WHOLE_PARSE_BYTES:
            return Completion(response.content, tail_usage(response.content), info)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.name} returned a body that is not JSON", retryable=True) from None
        usage = answer.get("usage") if isinstance(answer, dict) else None
        return Completion(response.content, _usage(usage), info)

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
        return await self._post("/chat/completions", self._body(call), call.model)

    async def embeddings(self, call: EmbeddingsCall) -> Completion:
        return await self._post("/embeddings", {**call.body, "model": call.model}, call.model)

    async def endpoint_call(self, call: EndpointCall) -> Completion:
        headers = await self.auth_headers()
        url = self.url(call.path, call.model)
        if call.body is not None:
            return await self._send(url, orjson.dumps({**call.body, "model": call.model}), headers)
        # a multipart form (audio uploads): as sent, the deployment's model name in its `model` field
        return await self._send(url, with_field(call.raw, call.content_type, "model", call.model),
                                {**headers, "content-type": call.content_type})

    async def responses(self, call: ResponsesCall) -> Completion:
        payload = {**call.body, "model": call.model}
        payload.pop("stream", None)
        return await self._send(self.responses_url(call.model), orjson.dumps(payload), await self.auth_headers())

    async def responses_stream(self, call: ResponsesCall) -> AsyncGenerator[Chunk, None]:
        payload = orjson.dumps({**call.body, "model": call.model, "stream": True})
        async with self.http.stream(self.name, self.responses_url(call.model), payload, await self.auth_headers(),
                                    self._timeouts) as response:
            if response.status >= 400:
                raise error_from_response(self.name, response.status, await response.read(), response.headers)
            info: Mapping[str, str] | None = upstream_info_headers(response.headers)
            async for event in read_sse(response.lines()):
                yield event_chunk(self.name, event.data, info)
                info = None  # the first chunk carries them

    def endpoint_stream(self, call: EndpointCall) -> AsyncGenerator[Chunk, None]:
        return self._stream(call.path, {**(call.body or {}), "model": call.model}, call.body or {}, call.model,
                            completion_text)

    def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        return self._stream("/chat/completions", self._body(call), call.body, call.model, chunk_text)

    async def _stream(self, path: str, body: dict[str, Any], call_body: dict[str, Any], model: str,
                      text_of: Callable[[dict[str, Any]], str]) -> AsyncGenerator[Chunk, None]:
        """`body`: what goes out (before `stream`); `call_body`: the client's, as it asked.
        Usage is always asked for, so every stream is charged; the router drops the usage
        chunk when the client did not ask for it."""
        payload = {**body, "stream": True}
        # asked for usage the client did not ask for, the upstream puts `"usage": null` in every
        # chunk: taken out again, so the client's chunks are the ones OpenAI would send it
        hide_null_usage = self._stream_usage and not (call_body.get("stream_options") or {}).get("include_usage")
        if self._stream_usage:
            payload["stream_options"] = {**(call_body.get("stream_options") or {}), "include_usage": True}
        else:
            payload.pop("stream_options", None)
        async with self.http.stream(self.name, self.url(path, model), orjson.dumps(payload),
                                    await self.auth_headers(), self._timeouts) as response:
            if response.status >= 400:
                raise error_from_response(self.name, response.status, await response.read(), response.headers)
            info: Mapping[str, str] | None = upstream_info_headers(response.headers)
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
                raw = event.data.encode()
                if hide_null_usage and "usage" in parsed and parsed["usage"] is None:
                    del parsed["usage"]
                    raw = orjson.dumps(parsed)
                yield Chunk(raw, usage, text_of(parsed),
                            usage_only=usage is not None and not parsed.get("choices"), headers=info)
                info = None  # the first chunk carries them


class OpenAIProvider(OpenAIWire[OpenAIConfig]):
    """Any OpenAI-compatible API, by preset (services/router/providers/openai/presets.py)."""

    config_model = OpenAIConfig

    def __init__(self, config: OpenAIConfig, http: UpstreamHttp) -> None:
        headers = dict(config.headers)
        secret = resolve_secret(config.api_key)
        if secret is not None:
            headers["authorization"] = f"Bearer {secret.get_secret_value()}"
        super().__init__(config, http, timeouts=UpstreamTimeouts(config.timeout_s, config.connect_timeout_s),
                         headers=headers, stream_usage=bool(config.stream_usage), drop_fields=config.drop_fields,
                         drop_message_fields=config.drop_message_fields,
                         native_responses=bool(config.native_responses))
        self._base = config.base_url.rstrip("/")

    def url(self, path: str, model: str) -> str:
        return self._base + path

    def native_base(self) -> str:
        return without_version(self._base)
