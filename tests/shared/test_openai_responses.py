"""Reading Responses API requests: one clear OpenAI-shaped 400 per bad value."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.ingress.body import parse_body
from shared.errors import InvalidRequest
from shared.openai_responses import FunctionCallOutputItem, MessageItem, OtherItem, OtherPart, ResponsesRequest


def read(**fields: Any) -> ResponsesRequest:
    request = parse_body(orjson.dumps({"model": "m", **fields}), ResponsesRequest)
    request.tool_choice_of()
    return request


def test_strings_are_read_as_one_text_item() -> None:
    request = read(input="hello", store=False)
    assert request.input is not None and len(request.input) == 1
    (message,) = request.input
    assert isinstance(message, MessageItem) and message.role == "user"
    assert [part.model_dump() for part in message.content] == [{"type": "input_text", "text": "hello"}]
    assert request.stored is False and read(input="x").stored is True  # OpenAI stores unless told not to
    output = read(input=[{"type": "function_call_output", "call_id": "c", "output": "42"}]).input
    assert output is not None and isinstance(output[0], FunctionCallOutputItem)
    assert output[0].output[0].model_dump() == {"type": "input_text", "text": "42"}


def test_items_and_parts_of_other_types_are_kept_as_sent() -> None:
    request = read(input=[{"type": "item_reference", "id": "msg_1"},
                          {"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}])
    assert request.input is not None
    reference, message = request.input
    assert isinstance(reference, OtherItem) and reference.model_dump() == {"type": "item_reference", "id": "msg_1"}
    assert isinstance(message, MessageItem) and isinstance(message.content[0], OtherPart)
    assert message.content[0].model_dump() == {"type": "input_file", "file_id": "file-1"}


def test_tool_choices() -> None:
    assert read(input="x", tool_choice="required").tool_choice_of() == "required"
    named = read(input="x", tool_choice={"type": "function", "name": "f"}).tool_choice_of()
    assert not isinstance(named, str) and named is not None and named.name == "f"


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": 5}, "input"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": 5}]}, "input[0].type"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"input": "x", "tool_choice": "maybe"}, "tool_choice"),
    ({"input": "x", "tool_choice": {"type": "function"}}, "tool_choice.name"),
    ({"input": "x", "temperature": 3}, "temperature"),
    ({"input": "x", "stream": "yes"}, "stream"),
    ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": "x"} | {"model": ""}, "model"),
])
def test_a_bad_value_is_one_400_naming_it(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read(**fields)
    error = caught.value.body().error
    assert error.param == param and error.type == "invalid_request_error"
    assert "str" not in error.param.split(".")  # not one error per alternative of a union
