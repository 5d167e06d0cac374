"""ConverseStream's events as OpenAI `chat.completion.chunk`s.

The body is AWS event-stream binary framing (prelude with lengths and CRC, typed headers,
payload, message CRC), decoded by botocore's `EventStreamBuffer`: it is fed whatever bytes
the socket gave and yields each whole, checksum-verified message, which fits reading the
body chunk by chunk (botocore is imported by the first stream: a router without a Bedrock
deployment does not load it). Each message names its event in `:event-type`; its payload is
the event's JSON.

| event (`:event-type`)                        | chunk(s)                                              |
|----------------------------------------------|-------------------------------------------------------|
| `messageStart` (`role`)                      | the role chunk `{"role": "assistant", "content": ""}` |
| `contentBlockStart` `start.toolUse`          | a tool-call delta: `index`, `id`, `type`, `name`, `arguments: ""` |
| `contentBlockDelta` `delta.text`             | a content delta                                       |
| `contentBlockDelta` `delta.toolUse.input`    | a tool-call delta with the argument fragment          |
| `messageStop` (`stopReason`)                 | the finish chunk (`finish_reason`)                    |
| `metadata` (`usage`, `metrics`)              | the usage chunk (`choices: []`), then the end         |
| `contentBlockStop`, reasoning deltas         | nothing                                               |
| `:message-type` `exception` / `error`        | raised as a GatewayError (providers/bedrock/errors.py) |

Tool calls are numbered in the order their blocks start (OpenAI's `index`), whatever
Bedrock's `contentBlockIndex`.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import orjson

from services.router.providers.base import Chunk
from services.router.providers.bedrock.errors import error_from_event
from services.router.providers.bedrock.response import completion_id, finish_reason, openai_usage
from shared.errors import UpstreamError
from shared.openai_types import Usage

Json = dict[str, Any]


class StreamTranslator:
    """Fed the body's bytes as they come; yields the chunks they complete. `done` after `metadata`."""

    def __init__(self, provider: str, model: str, request_id: str | None) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._provider = provider
        self._id = completion_id(request_id)
        self._model = model
        self._created = int(time.time())
        self._buffer = EventStreamBuffer()
        self._tools: dict[int, int] = {}  # Bedrock contentBlockIndex -> OpenAI tool-call index
        self.started = False
        self.stopped = False
        self.done = False

    def feed(self, data: bytes) -> Iterator[Chunk]:
        """The chunks of the messages `data` completes, one by one: those before an exception
        in the same bytes are relayed before it is raised."""
        from botocore.eventstream import ParserError

        self._buffer.add_data(data)
        try:
            for message in self._buffer:
                if self.done:
                    return
                headers = cast(dict[str, Any], message.headers)  # botocore-stubs types them as int; they are a dict
                yield from self._message(headers, message.payload)
        except ParserError as exc:
            raise UpstreamError(f"provider {self._provider} sent a malformed event stream ({type(exc).__name__})",
                                retryable=not self.started) from None

    def _message(self, headers: dict[str, Any], payload: bytes) -> list[Chunk]:
        if headers.get(":message-type") in ("exception", "error"):
            raise error_from_event(self._provider, headers, payload)
        kind = headers.get(":event-type")
        try:
            event = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise UpstreamError(f"provider {self._provider} sent a {kind!r} event that is not a JSON object",
                                retryable=not self.started)
        if kind == "messageStart":
            self.started = True
            return [self._chunk({"role": "assistant", "content": ""})]
        if not self.started:
            raise UpstreamError(f"provider {self._provider} sent {kind!r} before messageStart")
        if kind == "contentBlockStart":
            return self._block_start(event)
        if kind == "contentBlockDelta":
            return self._block_delta(event)
        if kind == "messageStop":
            self.stopped = True
            return [self._chunk({}, finish_reason(event.get("stopReason")))]
        if kind == "metadata":
            self.done = True
            usage = openai_usage(event.get("usage") or {})
            body = {**self._base(), "choices": [], "usage": usage}
            return [Chunk(orjson.dumps(body), Usage.model_validate(usage), usage_only=True)]
        return []  # contentBlockStop, and event types added later

    def _block_start(self, event: Json) -> list[Chunk]:
        tool = (event.get("start") or {}).get("toolUse")
        if not isinstance(tool, dict):
            return []
        index = len(self._tools)
        self._tools[int(event.get("contentBlockIndex", index))] = index
        name = str(tool.get("name") or "")
        call = {"index": index, "id": tool.get("toolUseId"), "type": "function", "function": {"name": name, "arguments": ""}}
        return [self._chunk({"tool_calls": [call]}, text=name)]

    def _block_delta(self, event: Json) -> list[Chunk]:
        delta = event.get("delta") or {}
        if isinstance(delta.get("text"), str):
            text = delta["text"]
            return [self._chunk({"content": text}, text=text)] if text else []
        tool = delta.get("toolUse")
        if isinstance(tool, dict):
            fragment = str(tool.get("input") or "")
            index = self._tools.get(int(event.get("contentBlockIndex", -1)))
            if not fragment or index is None:
                return []
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}, text=fragment)]
        return []  # reasoningContent, citation: no chat-completions counterpart

    def _base(self) -> Json:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: Json, finish: str | None = None, *, text: str = "") -> Chunk:
        body = {**self._base(), "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return Chunk(orjson.dumps(body), text=text)
