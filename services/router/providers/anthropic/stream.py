"""Anthropic's stream events as OpenAI `chat.completion.chunk`s.

| Anthropic event                                   | chunk(s)                                              |
|---------------------------------------------------|-------------------------------------------------------|
| `message_start` (id, model, input usage)          | the role chunk `{"role": "assistant", "content": ""}` |
| `content_block_start` `text`                      | its text, if it starts with some                      |
| `content_block_start` `tool_use`                  | a tool-call delta: `index`, `id`, `type`, `name`, `arguments: ""` |
| `content_block_delta` `text_delta`                | a content delta                                       |
| `content_block_delta` `input_json_delta`          | a tool-call delta with the argument fragment          |
| `message_delta` (`stop_reason`, output usage)     | the finish chunk (`finish_reason`)                    |
| `message_stop`                                    | the usage chunk (`choices: []`), then the end         |
| `ping`, `content_block_stop`, thinking deltas     | nothing                                               |
| `error`                                           | raised as a GatewayError (providers/anthropic/errors.py) |

Tool calls are numbered in the order their blocks start (OpenAI's `index`), whatever the
Anthropic block index. Usage is `message_start`'s, updated by `message_delta`'s (whose
counts are cumulative).
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from services.router.providers.anthropic.errors import error_from_event
from services.router.providers.anthropic.response import completion_id, finish_reason, openai_usage
from services.router.providers.base import Chunk
from shared.errors import UpstreamError
from shared.openai_types import Usage

Json = dict[str, Any]


class StreamTranslator:
    """Fed one parsed event at a time; returns the chunks it makes. `done` after `message_stop`."""

    def __init__(self, provider: str, model: str) -> None:
        self._provider = provider
        self._id = completion_id(None)
        self._model = model
        self._created = int(time.time())
        self._usage: Json = {}
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self.started = False
        self.done = False

    def feed(self, event: Json) -> list[Chunk]:
        kind = event.get("type")
        if kind == "error":
            raise error_from_event(self._provider, event)
        if kind == "message_start":
            return self._start(event.get("message") or {})
        if not self.started:
            if kind == "ping":
                return []
            raise UpstreamError(f"provider {self._provider} sent {kind!r} before message_start")
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, finish_reason(stop))]
        if kind == "message_stop":
            self.done = True
            usage = openai_usage(self._usage)
            body = {**self._base(), "choices": [], "usage": usage}
            return [Chunk(orjson.dumps(body), Usage.model_validate(usage), usage_only=True)]
        return []  # ping, content_block_stop, and event types added later

    def _start(self, message: Json) -> list[Chunk]:
        self.started = True
        self._id = completion_id(message.get("id"))
        self._model = message.get("model") or self._model
        self._usage = dict(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: Json) -> list[Chunk]:
        block = event.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]}, text=block["text"])]
        if block.get("type") == "tool_use":
            index = len(self._tools)
            self._tools[int(event.get("index", index))] = index
            name = str(block.get("name") or "")
            call = {"index": index, "id": block.get("id"), "type": "function",
                    "function": {"name": name, "arguments": ""}}
            return [self._chunk({"tool_calls": [call]}, text=name)]
        return []

    def _block_delta(self, event: Json) -> list[Chunk]:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            text = str(delta.get("text", ""))
            return [self._chunk({"content": text}, text=text)] if text else []
        if delta.get("type") == "input_json_delta":
            fragment = str(delta.get("partial_json", ""))
            index = self._tools.get(int(event.get("index", -1)))
            if not fragment or index is None:
                return []
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}, text=fragment)]
        return []  # thinking_delta, signature_delta, citations_delta: no chat-completions counterpart

    def _base(self) -> Json:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: Json, finish: str | None = None, *, text: str = "") -> Chunk:
        body = {**self._base(), "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return Chunk(orjson.dumps(body), text=text)
