"""Usage read from a pass-through answer, where its format is known.

The answer is read as it passes (it is relayed untouched): a JSON body whole (up to
`WHOLE_BODY_BYTES`), an SSE stream event by event. Usage objects are found where the
known APIs put them, and read by their field names, whichever API it is:

- `usage` (OpenAI chat, completions, embeddings): `prompt_tokens`, `completion_tokens`;
- `usage`, `message.usage`, `response.usage` (Anthropic Messages and its stream's
  `message_start` / `message_delta`; OpenAI Responses): `input_tokens` (+
  `cache_read_input_tokens` + `cache_creation_input_tokens`), `output_tokens`;
- `usageMetadata` (Gemini): `promptTokenCount`, `candidatesTokenCount` (+ `thoughtsTokenCount`).

The parts priced apart or reported apart are read too: prompt tokens read from a cache
(`cache_read_input_tokens`, `cachedContentTokenCount`, `prompt_tokens_details.cached_tokens`,
`input_tokens_details.cached_tokens`), written to one (`cache_creation_input_tokens`), and
reasoning tokens (`thoughtsTokenCount`, `completion_tokens_details.reasoning_tokens`,
`output_tokens_details.reasoning_tokens`), into OpenAI's usage details.

Stream events report counts that grow (Anthropic's `message_delta`, every Gemini chunk),
so the last value seen of each field counts. An answer with none of these counts nothing.
"""
from __future__ import annotations

from typing import Any

import orjson

from shared.openai_types import Usage

WHOLE_BODY_BYTES = 1024 * 1024  # a larger JSON body is relayed, not parsed: no usage read from it
MAX_LINE_BYTES = 1024 * 1024  # an SSE line longer than this is skipped

_PROMPT_FIELDS = ("prompt_tokens", "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                  "promptTokenCount")
_COMPLETION_FIELDS = ("completion_tokens", "output_tokens", "candidatesTokenCount", "thoughtsTokenCount")
# OpenAI's chat usage counts cached input inside prompt_tokens; Anthropic's input_tokens do not
_PROMPT_FIRST = ("prompt_tokens", "promptTokenCount")
# (object, field) nested in a usage object; counted under "object.field"
_NESTED = (("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens"),
           ("completion_tokens_details", "reasoning_tokens"), ("output_tokens_details", "reasoning_tokens"))
_CACHED_FIELDS = ("cache_read_input_tokens", "cachedContentTokenCount", "prompt_tokens_details.cached_tokens",
                  "input_tokens_details.cached_tokens")
_CACHE_WRITE_FIELDS = ("cache_creation_input_tokens",)
_REASONING_FIELDS = ("thoughtsTokenCount", "completion_tokens_details.reasoning_tokens",
                     "output_tokens_details.reasoning_tokens")


def _usage_objects(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found = [obj.get("usage"), obj.get("usageMetadata")]
    for holder in ("message", "response"):
        inner = obj.get(holder)
        if isinstance(inner, dict):
            found.append(inner.get("usage"))
    return [u for u in found if isinstance(u, dict)]


class NativeUsage:
    """Fed the answer's bytes as they pass; `usage()` is what they reported, if anything."""

    def __init__(self, *, sse: bool) -> None:
        self.sse = sse
        self._counts: dict[str, int] = {}
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> None:
        if not self.sse:
            if len(self._buffer) + len(data) > WHOLE_BODY_BYTES:
                self._overflow = True
                self._buffer.clear()
            if not self._overflow:
                self._buffer += data
            return
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[:end + 1]
            self._line(line)
        if len(self._buffer) > MAX_LINE_BYTES:
            self._buffer.clear()

    def _line(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            self._read(line[5:].strip())

    def _read(self, text: bytes) -> None:
        if not text or text == b"[DONE]":
            return
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(parsed, dict):
            return
        for usage in _usage_objects(parsed):
            for name in (*_PROMPT_FIELDS, *_COMPLETION_FIELDS, "cachedContentTokenCount"):
                value = usage.get(name)
                if isinstance(value, int) and value >= 0:
                    self._counts[name] = value
            for holder, name in _NESTED:
                inner = usage.get(holder)
                value = inner.get(name) if isinstance(inner, dict) else None
                if isinstance(value, int) and value >= 0:
                    self._counts[f"{holder}.{name}"] = value

    def usage(self) -> Usage | None:
        if self.sse:
            if self._buffer:
                self._line(bytes(self._buffer))
                self._buffer.clear()
        elif not self._overflow:
            self._read(bytes(self._buffer).strip())
            self._buffer.clear()
        counts = self._counts
        if not any(name in counts for name in (*_PROMPT_FIELDS, *_COMPLETION_FIELDS)):
            return None
        first = next((name for name in _PROMPT_FIRST if name in counts), None)
        prompt = counts[first] if first else sum(counts.get(name, 0) for name in _PROMPT_FIELDS)
        completion = sum(counts.get(name, 0) for name in _COMPLETION_FIELDS)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                     prompt_tokens_details={"cached_tokens": sum(counts.get(n, 0) for n in _CACHED_FIELDS),
                                            "cache_creation_tokens": sum(counts.get(n, 0) for n in _CACHE_WRITE_FIELDS)},
                     completion_tokens_details={"reasoning_tokens": sum(counts.get(n, 0) for n in _REASONING_FIELDS)})
