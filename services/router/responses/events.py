"""Chat completion chunks → the Responses API's typed stream events.

One `ResponseEvents` per stream. `start()` gives `response.created` and
`response.in_progress`; `feed(chunk)` the events a chunk makes; `finish()` closes the open
item and ends with `response.completed` (or `response.incomplete`) carrying usage. Text
opens a `message` item (`output_item.added`, `content_part.added`, then
`output_text.delta`s); each tool call opens a `function_call` item
(`function_call_arguments.delta`s). Opening an item closes the one before it
(`output_text.done`, `content_part.done` / `function_call_arguments.done`, then
`output_item.done`). Every event has a `sequence_number`, counted from 0.
"""
from __future__ import annotations

from typing import Any

from services.router.responses.from_chat import ChatAnswer, ChatUsage, finish
from services.router.responses.objects import (
    FunctionCallOutput,
    OutputItem,
    OutputMessage,
    OutputTextPart,
    ResponseObject,
)

Json = dict[str, Any]


class ResponseEvents:
    def __init__(self, base: ResponseObject) -> None:
        self.response = base
        self._sequence = 0
        self._open: OutputItem | None = None
        self._calls: dict[int, FunctionCallOutput] = {}  # the chunk's tool call index -> its item
        self._finish_reason: str | None = None
        self._usage: ChatUsage | None = None

    def _event(self, type_: str, **fields: Any) -> Json:
        event = {"type": type_, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(self) -> Json:
        return self.response.dump()

    def start(self) -> list[Json]:
        return [self._event("response.created", response=self._snapshot()),
                self._event("response.in_progress", response=self._snapshot())]

    def _index(self, item: OutputItem) -> int:
        return next(i for i, candidate in enumerate(self.response.output) if candidate is item)

    def _add(self, item: OutputItem) -> list[Json]:
        events = self._close()
        self.response.output.append(item)
        self._open = item
        events.append(self._event("response.output_item.added", output_index=self._index(item),
                                  item=item.model_dump(mode="json")))
        if isinstance(item, OutputMessage):
            item.content.append(OutputTextPart())
            events.append(self._event("response.content_part.added", item_id=item.id, output_index=self._index(item),
                                      content_index=0, part=OutputTextPart().model_dump(mode="json")))
        return events

    def _close(self, status: str = "completed") -> list[Json]:
        item, self._open = self._open, None
        if item is None:
            return []
        index = self._index(item)
        item.status = status  # type: ignore[assignment]
        events: list[Json] = []
        if isinstance(item, OutputMessage):
            part = item.content[0]
            assert isinstance(part, OutputTextPart)
            events.append(self._event("response.output_text.done", item_id=item.id, output_index=index,
                                      content_index=0, text=part.text, logprobs=[]))
            events.append(self._event("response.content_part.done", item_id=item.id, output_index=index,
                                      content_index=0, part=part.model_dump(mode="json")))
        else:
            events.append(self._event("response.function_call_arguments.done", item_id=item.id, output_index=index,
                                      name=item.name, arguments=item.arguments))
        events.append(self._event("response.output_item.done", output_index=index, item=item.model_dump(mode="json")))
        return events

    def _text(self, delta: str) -> list[Json]:
        events: list[Json] = []
        if not isinstance(self._open, OutputMessage):
            events = self._add(OutputMessage())
        item = self._open
        assert isinstance(item, OutputMessage)
        part = item.content[0]
        assert isinstance(part, OutputTextPart)
        part.text += delta
        events.append(self._event("response.output_text.delta", item_id=item.id, output_index=self._index(item),
                                  content_index=0, delta=delta, logprobs=[]))
        return events

    def _tool_delta(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> list[Json]:
        events: list[Json] = []
        item = self._calls.get(index)
        if item is None:
            item = FunctionCallOutput(call_id=call_id or "", name=name or "")
            self._calls[index] = item
            events = self._add(item)
        if arguments:
            item.arguments += arguments
            events.append(self._event("response.function_call_arguments.delta", item_id=item.id,
                                      output_index=self._index(item), delta=arguments))
        return events

    def feed(self, chunk: ChatAnswer) -> list[Json]:
        if chunk.usage is not None:
            self._usage = chunk.usage
        events: list[Json] = []
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                events += self._text(delta.content)
            for call in delta.tool_calls or []:
                events += self._tool_delta(call.index or 0, call.id, call.function.name, call.function.arguments)
            if choice.finish_reason is not None:
                self._finish_reason = choice.finish_reason
        return events

    def finish(self) -> list[Json]:
        """Close what is open; the last event is the finished response (`self.response` after)."""
        events = self._close()
        self.response = finish(self.response, self._finish_reason, self._usage)
        kind = "response.completed" if self.response.status == "completed" else "response.incomplete"
        events.append(self._event(kind, response=self._snapshot()))
        return events

    def error(self, code: str | None, message: str, param: str | None) -> Json:
        return self._event("error", code=code, message=message, param=param)
