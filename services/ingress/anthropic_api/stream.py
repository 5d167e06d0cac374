"""OpenAI `chat.completion.chunk`s (as the pipeline streams them) as Anthropic's stream events.

- the first chunk: `message_start` (id, model, estimated `input_tokens`), then `ping`;
- `delta.content` (or `delta.refusal`): `content_block_start` `text` when no text block is
  open, then `content_block_delta` `text_delta`;
- `delta.tool_calls[i]` with a new `index`: `content_block_stop` of the open block, then
  `content_block_start` `tool_use` (id, name, `input: {}`); its `function.arguments`
  fragments: `content_block_delta` `input_json_delta` of that call's block;
- `finish_reason` and the usage chunk: kept for `message_delta`;
- the end of the stream (`finish`): `content_block_stop`, `message_delta` (`stop_reason`,
  `stop_sequence`, usage), `message_stop`.

Blocks are numbered in the order they start. `message_delta`'s usage is the upstream's
(counts are cumulative, as Anthropic's are); when none came, output tokens are counted from
the streamed text the way the router charges them (shared/tokens.py).
"""
from __future__ import annotations

from typing import Any

import orjson

from services.ingress.anthropic_api.answer import anthropic_usage, as_object, message_id, stop_of
from shared.tokens import estimate_text_tokens

Json = dict[str, Any]


def sse_event(name: str, data: Json) -> bytes:
    """One event on the wire: `event:` line, `data:` line, blank line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamTranslator:
    """Fed one chunk at a time; returns the bytes of the events it makes."""

    def __init__(self, model: str, input_tokens: int, stop_sequences: list[str] | None = None) -> None:
        self._model = model
        self._input_tokens = input_tokens
        self._stop_sequences = stop_sequences
        self._started = False
        self._blocks = 0  # blocks started so far
        self._open: int | None = None  # index of the block not yet stopped
        self._text_block: int | None = None  # the open block, when it is a text block
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> block index
        self._finish: Any = None
        self._matched: Any = None
        self._usage: Json | None = None
        self._streamed: list[str] = []

    def feed(self, chunk: Json) -> list[bytes]:
        events = self._start(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        choice = as_object(choices[0]) if isinstance(choices, list) and choices else {}
        delta = as_object(choice.get("delta"))
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            events.extend(self._text(text))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                events.extend(self._tool_call(call))
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
        return events

    def finish(self) -> list[bytes]:
        """The events that close the message, at the end of the stream."""
        events = self._start({})
        events.extend(self._stop_open())
        stop_reason, stop_sequence = stop_of(self._finish, self._matched, self._stop_sequences)
        if self._usage is not None:
            usage = anthropic_usage(self._usage)
        else:
            usage = {"input_tokens": self._input_tokens,
                     "output_tokens": estimate_text_tokens("".join(self._streamed))}
        events.append(sse_event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": usage}))
        events.append(sse_event("message_stop", {"type": "message_stop"}))
        return events

    # -- pieces ---------------------------------------------------------------------------
    def _start(self, chunk: Json) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message: Json = {"id": message_id(chunk.get("id")), "type": "message", "role": "assistant", "content": [],
                   "model": chunk.get("model") or self._model, "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self._input_tokens, "output_tokens": 0}}
        return [sse_event("message_start", {"type": "message_start", "message": message}),
                sse_event("ping", {"type": "ping"})]

    def _begin(self, block: Json) -> list[bytes]:
        events = self._stop_open()
        index = self._blocks
        self._blocks += 1
        self._open = index
        events.append(sse_event("content_block_start", {"type": "content_block_start", "index": index,
                                                        "content_block": block}))
        return events

    def _stop_open(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open, self._text_block = self._open, None, None
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _text(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        if self._text_block is None:
            events = self._begin({"type": "text", "text": ""})
            self._text_block = self._open
        self._streamed.append(text)
        events.append(sse_event("content_block_delta", {"type": "content_block_delta", "index": self._text_block,
                                                        "delta": {"type": "text_delta", "text": text}}))
        return events

    def _tool_call(self, call: Json) -> list[bytes]:
        position = call.get("index", 0)
        position = position if isinstance(position, int) else 0
        function = as_object(call.get("function"))
        events: list[bytes] = []
        if position not in self._tools:
            name = str(function.get("name") or "")
            block_id = call.get("id") or "toolu_" + message_id(None).removeprefix("msg_")
            events = self._begin({"type": "tool_use", "id": block_id, "name": name, "input": {}})
            self._tools[position] = self._blocks - 1
            self._streamed.append(name)
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            self._streamed.append(fragment)
            events.append(sse_event("content_block_delta", {
                "type": "content_block_delta", "index": self._tools[position],
                "delta": {"type": "input_json_delta", "partial_json": fragment}}))
        return events
