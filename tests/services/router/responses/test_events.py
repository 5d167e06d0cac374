"""Chat chunks → the Responses API's stream events, each checked against the SDK's own types."""
from __future__ import annotations

from typing import Any, get_args

from openai import BaseModel as SdkModel
from openai.types.responses import ResponseStreamEvent

from services.router.providers.openai import payloads as p
from services.router.responses.events import ResponseEvents
from services.router.responses.from_chat import ChatAnswer, skeleton
from shared.openai_responses import ResponsesRequest

EVENT_TYPES: dict[str, type[SdkModel]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls for cls in get_args(get_args(ResponseStreamEvent)[0])}


def check(event: dict[str, Any]) -> None:
    """The event validates as the SDK's own type for it."""
    EVENT_TYPES[event["type"]].model_validate(event)


def run(chunks: list[dict[str, Any]]) -> tuple[ResponseEvents, list[dict[str, Any]]]:
    events = ResponseEvents(skeleton(ResponsesRequest(model="gpt-4o-mini", input="hi")))
    out = events.start()
    for chunk in chunks:
        out += events.feed(ChatAnswer.model_validate(chunk))
    out += events.finish()
    for event in out:
        check(event)  # every event is one the SDK parses
    return events, out


def test_a_text_stream_makes_the_typed_events_in_order() -> None:
    cid, created, chunks = p.content_stream("up", p.REPLY_PIECES, True)
    chunks.append(p.usage_chunk(cid, created, "up", p.usage(7, p.COMPLETION_TOKENS)))
    events, out = run(chunks)
    types = [e["type"] for e in out]
    deltas = len([c for c in p.REPLY_PIECES if c])
    assert types == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * deltas,
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert out[0]["response"]["status"] == "in_progress" and out[0]["response"]["output"] == []
    text = "".join(p.REPLY_PIECES)
    assert "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta") == text
    assert next(e for e in out if e["type"] == "response.output_text.done")["text"] == text
    done = out[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["text"] == text
    assert done["usage"]["input_tokens"] == 7 and done["usage"]["output_tokens"] == p.COMPLETION_TOKENS
    assert done["usage"]["total_tokens"] == 7 + p.COMPLETION_TOKENS
    item_ids = {e["item_id"] for e in out if "item_id" in e}
    assert item_ids == {done["output"][0]["id"]}
    assert events.response.status == "completed"


def test_a_tool_call_stream_makes_a_function_call_item_with_argument_deltas() -> None:
    arguments = '{"city": "Paris", "unit": "c"}'
    _, _, chunks = p.tool_call_stream("up", "get_weather", arguments, False)
    _, out = run(chunks)
    types = [e["type"] for e in out]
    assert types[2] == "response.output_item.added" and out[2]["item"]["type"] == "function_call"
    assert out[2]["item"]["name"] == "get_weather" and out[2]["item"]["call_id"].startswith("call_")
    assert "".join(e["delta"] for e in out if e["type"] == "response.function_call_arguments.delta") == arguments
    assert types[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert out[-3]["arguments"] == arguments and out[-3]["name"] == "get_weather"
    final = out[-1]["response"]["output"]
    assert len(final) == 1 and final[0]["arguments"] == arguments and final[0]["status"] == "completed"


def test_text_then_two_tool_calls_are_three_items_each_closed_before_the_next_opens() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return p.chunk("c", 1, "up", delta, finish, False)

    _, out = run([
        chunk({"role": "assistant", "content": "Let me check."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "}"}}]}),
        chunk({}, "tool_calls"),
    ])
    opened = [e["output_index"] for e in out if e["type"] == "response.output_item.added"]
    closed = [e["output_index"] for e in out if e["type"] == "response.output_item.done"]
    assert opened == closed == [0, 1, 2]
    order = [(e["type"], e.get("output_index")) for e in out if e["type"].startswith("response.output_item")]
    assert order == [("response.output_item.added", 0), ("response.output_item.done", 0),
                     ("response.output_item.added", 1), ("response.output_item.done", 1),
                     ("response.output_item.added", 2), ("response.output_item.done", 2)]
    final = out[-1]["response"]["output"]
    assert [i["type"] for i in final] == ["message", "function_call", "function_call"]
    assert [(i["call_id"], i["arguments"]) for i in final[1:]] == [("call_a", "{}"), ("call_b", "{}")]


def test_a_stream_cut_by_length_ends_incomplete() -> None:
    _, out = run([p.chunk("c", 1, "up", {"content": "Hel"}, None, False),
                  p.chunk("c", 1, "up", {}, "length", False)])
    assert out[-1]["type"] == "response.incomplete"
    assert out[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_the_error_event_has_the_next_sequence_number() -> None:
    events = ResponseEvents(skeleton(ResponsesRequest(model="m", input="hi")))
    started = events.start()
    error = events.error("upstream_error", "boom", None)
    check(error)
    assert error["sequence_number"] == started[-1]["sequence_number"] + 1
