"""Chat completions → the `response` object."""
from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response

from services.router.responses.from_chat import assistant_message, response_of, skeleton
from shared.errors import UpstreamError
from shared.openai_responses import ResponsesRequest


def completion(message: dict[str, Any], finish_reason: str = "stop", **usage: Any) -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "up",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, **usage}})


def request(**fields: Any) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "gpt-4o-mini", "input": "hi", **fields})


def test_a_text_answer_is_one_message_item_the_sdk_reads() -> None:
    req = request(instructions="Be nice.", temperature=0.5, metadata={"k": "v"})
    response = response_of(skeleton(req), completion(
        {"content": "Hello!"}, prompt_tokens_details={"cached_tokens": 4, "cache_creation_tokens": 3},
        completion_tokens_details={"reasoning_tokens": 2}))
    parsed = Response.model_validate(response.dump())  # the SDK's own type
    assert parsed.id.startswith("resp_") and parsed.object == "response" and parsed.status == "completed"
    assert parsed.output_text == "Hello!"
    assert parsed.output[0].type == "message" and parsed.output[0].id.startswith("msg_")
    assert parsed.model == "gpt-4o-mini" and parsed.instructions == "Be nice." and parsed.temperature == 0.5
    assert parsed.metadata == {"k": "v"} and parsed.store is True
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens, parsed.usage.total_tokens) == (12, 5, 17)
    assert parsed.usage.input_tokens_details.cached_tokens == 4
    assert parsed.usage.input_tokens_details.cache_write_tokens == 3
    assert parsed.usage.output_tokens_details.reasoning_tokens == 2


def test_tool_calls_are_function_call_items_with_their_call_ids() -> None:
    calls = [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
             {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]
    response = response_of(skeleton(request()), completion({"content": None, "tool_calls": calls}, "tool_calls"))
    parsed = Response.model_validate(response.dump())
    assert [(i.type, i.call_id, i.name, i.arguments) for i in parsed.output] == [  # type: ignore[union-attr]
        ("function_call", "call_a", "f", '{"x":1}'), ("function_call", "call_b", "g", "{}")]
    assert all(i.id and i.id.startswith("fc_") for i in parsed.output)
    assert assistant_message(response) == {"role": "assistant", "content": None, "tool_calls": calls}


@pytest.mark.parametrize(("finish_reason", "reason"), [("length", "max_output_tokens"),
                                                        ("content_filter", "content_filter")])
def test_a_cut_answer_is_incomplete_with_its_reason(finish_reason: str, reason: str) -> None:
    response = response_of(skeleton(request(max_output_tokens=5)), completion({"content": "Hel"}, finish_reason))
    parsed = Response.model_validate(response.dump())
    assert parsed.status == "incomplete" and parsed.incomplete_details is not None
    assert parsed.incomplete_details.reason == reason and parsed.max_output_tokens == 5
    assert parsed.output[0].status == "incomplete"  # type: ignore[union-attr]


def test_the_request_settings_are_echoed() -> None:
    req = request(tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
                  tool_choice={"type": "function", "name": "f"}, store=False, parallel_tool_calls=False,
                  text={"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
                  previous_response_id="resp_x")
    parsed = Response.model_validate(response_of(skeleton(req), completion({"content": "{}"})).dump())
    assert parsed.tools[0].name == "f"  # type: ignore[union-attr]
    assert parsed.tool_choice.name == "f"  # type: ignore[union-attr]
    assert parsed.store is False and parsed.parallel_tool_calls is False
    assert parsed.previous_response_id == "resp_x"
    assert parsed.text is not None and parsed.text.format is not None and parsed.text.format.type == "json_schema"


def test_an_answer_that_is_not_a_completion_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        response_of(skeleton(request()), b'{"choices": "nope"}')
    with pytest.raises(UpstreamError):
        response_of(skeleton(request()), b'{"choices": []}')
