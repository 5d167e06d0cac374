"""Gemini's `streamGenerateContent?alt=sse` events → OpenAI `chat.completion.chunk`s.

Each SSE event is a whole `GenerateContentResponse` holding the next piece of each
candidate. Per candidate the client sees a role chunk first, then a chunk per text
piece and per `functionCall` (a whole call: id, name and JSON arguments in one delta),
then a finish chunk once the candidate carries a `finishReason`. After the upstream
closes the stream comes one usage chunk (no choices) from the last `usageMetadata`.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.router.providers.base import Chunk
from services.router.providers.gemini.response import (
    candidate_parts,
    completion_id,
    finish_reason,
    tool_call,
    usage_from,
)
from shared.openai_types import Usage

Json = dict[str, Any]


@dataclass(slots=True)
class _Candidate:
    started: bool = False
    tool_calls: int = 0
    finished: bool = False


@dataclass(slots=True)
class StreamTranslator:
    model: str
    chunk_id: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    usage: Usage | None = None
    _candidates: dict[int, _Candidate] = field(default_factory=dict)

    def _chunk(self, index: int, delta: Json, finish: str | None, text: str = "") -> Chunk:
        body = {"id": self.chunk_id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return Chunk(orjson.dumps(body), text=text)

    def _state(self, index: int) -> tuple[_Candidate, list[Chunk]]:
        state = self._candidates.setdefault(index, _Candidate())
        if state.started:
            return state, []
        state.started = True
        return state, [self._chunk(index, {"role": "assistant", "content": ""}, None)]

    def feed(self, event: Json) -> Iterator[Chunk]:
        """The chunks one upstream event makes."""
        if self.chunk_id is None:
            self.chunk_id = completion_id(event)
        if isinstance(event.get("modelVersion"), str):
            self.model = event["modelVersion"]
        usage = usage_from(event.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        candidates = [c for c in event.get("candidates") or () if isinstance(c, dict)]
        if not candidates and (event.get("promptFeedback") or {}).get("blockReason"):
            state, chunks = self._state(0)
            yield from chunks
            if not state.finished:
                state.finished = True
                yield self._chunk(0, {}, "content_filter")
            return
        for position, candidate in enumerate(candidates):
            index = int(candidate.get("index") or position)
            state, chunks = self._state(index)
            yield from chunks
            for part in candidate_parts(candidate):
                if isinstance(part.get("functionCall"), dict):
                    call = {"index": state.tool_calls, **tool_call(part)}
                    state.tool_calls += 1
                    function = call["function"]
                    yield self._chunk(index, {"tool_calls": [call]}, None, function["name"] + function["arguments"])
                elif isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                    yield self._chunk(index, {"content": part["text"]}, None, part["text"])
            if candidate.get("finishReason") and not state.finished:
                state.finished = True
                yield self._chunk(index, {}, finish_reason(candidate["finishReason"], state.tool_calls > 0))

    def close(self) -> Iterator[Chunk]:
        """After the upstream's last event: finish chunks it never sent, then the usage chunk."""
        for index, state in sorted(self._candidates.items()):
            if not state.finished:
                state.finished = True
                yield self._chunk(index, {}, finish_reason("STOP", state.tool_calls > 0))
        if self.usage is not None:
            body: Json = {"id": self.chunk_id, "object": "chat.completion.chunk", "created": self.created,
                          "model": self.model, "choices": [], "usage": self.usage.model_dump()}
            yield Chunk(orjson.dumps(body), self.usage, usage_only=True)
