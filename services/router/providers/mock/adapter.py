"""The built-in `mock` provider: answers locally in OpenAI's shapes, no credentials needed."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, Chunk, Completion, EmbeddingsCall, Provider
from services.router.providers.mock.config import MockConfig
from shared.ids import uuid7
from shared.openai_types import Usage
from shared.tokens import estimate_input_tokens, estimate_prompt_tokens


class MockProvider(Provider[MockConfig]):
    config_model = MockConfig

    def __init__(self, config: MockConfig, http: UpstreamHttp) -> None:
        super().__init__(config, http)
        self._config = config

    async def _wait(self) -> None:
        if self._config.latency_ms:
            await asyncio.sleep(self._config.latency_ms / 1000)

    def _usage(self, body: dict[str, Any]) -> Usage:
        prompt = self._config.prompt_tokens
        if prompt is None:
            prompt = estimate_prompt_tokens(body.get("messages") or [])
        completion = self._config.completion_tokens
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    async def chat(self, call: ChatCall) -> Completion:
        body, model = call.body, call.model
        await self._wait()
        usage = self._usage(body)
        answer = {
            "id": f"chatcmpl-{uuid7().replace('-', '')}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_jetgate_mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self._config.reply,
                                                 "refusal": None, "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage.model_dump(),
        }
        return Completion(orjson.dumps(answer), usage)

    async def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        body, model = call.body, call.model
        await self._wait()
        usage = self._usage(body)
        base = {"id": f"chatcmpl-{uuid7().replace('-', '')}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model, "system_fingerprint": "fp_jetgate_mock"}
        words = self._config.reply.split(" ")
        per_chunk = max(1, -(-len(words) // max(1, self._config.stream_chunks)))
        pieces = [" ".join(words[i:i + per_chunk]) + " " for i in range(0, len(words), per_chunk)]
        pieces[-1] = pieces[-1].rstrip()
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
        for delta in deltas:
            yield _chunk({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]},
                         text=delta.get("content") or "")
            if self._config.chunk_delay_ms:
                await asyncio.sleep(self._config.chunk_delay_ms / 1000)
        yield _chunk({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
        yield _chunk({**base, "choices": [], "usage": usage.model_dump()}, usage=usage)

    async def embeddings(self, call: EmbeddingsCall) -> Completion:
        body, model = call.body, call.model
        await self._wait()
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        dims = body.get("dimensions") or 8
        data = []
        for index, item in enumerate(items):
            vector = _vector(str(item), dims)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        prompt = estimate_input_tokens(inputs)
        usage = Usage(prompt_tokens=prompt, completion_tokens=0, total_tokens=prompt)
        answer = {"object": "list", "data": data, "model": model,
                  "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}
        return Completion(orjson.dumps(answer), usage)


def _chunk(obj: dict[str, Any], *, text: str = "", usage: Usage | None = None) -> Chunk:
    return Chunk(orjson.dumps(obj), usage, text, usage_only=usage is not None)


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic unit-length vector for a text."""
    digest = b""
    seed = text.encode()
    while len(digest) < dims:
        seed = hashlib.sha256(seed).digest()
        digest += seed
    raw = [b / 255 - 0.5 for b in digest[:dims]]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in raw]
