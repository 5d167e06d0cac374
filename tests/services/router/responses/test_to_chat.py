"""Responses API requests → the gateway's chat body."""
from __future__ import annotations

from typing import Any

import pytest

from services.router.responses.to_chat import chat_body
from shared.errors import InvalidRequest
from shared.openai_responses import ResponsesRequest
from shared.openai_types import ChatCompletionRequest


def translate(history: list[dict[str, Any]] | None = None, **fields: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    body, conversation = chat_body(ResponsesRequest.model_validate({"model": "m", **fields}), history or [])
    ChatCompletionRequest.model_validate(body)  # what the pipeline reads
    return body, conversation


def test_a_string_input_is_one_user_message_and_instructions_a_system_message_before_it() -> None:
    body, conversation = translate(input="Hi there", instructions="Be brief.")
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    assert conversation == [{"role": "user", "content": "Hi there"}]  # instructions are not carried on
    assert "stream" not in body and "tools" not in body


def test_message_items_keep_their_roles_and_parts() -> None:
    body, _ = translate(input=[
        {"role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A cat.", "annotations": []}]},
        {"role": "system", "content": "Plain."},
    ])
    assert body["messages"] == [
        {"role": "developer", "content": "Rules."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/cat.png",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": "A cat."},
        {"role": "system", "content": "Plain."},
    ]


def test_function_calls_join_the_assistant_message_and_outputs_become_tool_messages() -> None:
    body, _ = translate(input=[
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ])
    assistant = body["messages"][1]
    assert assistant["content"] == "Checking."
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_1", "call_2"]
    assert assistant["tool_calls"][1]["function"] == {"name": "get_weather", "arguments": '{"city":"Rome"}'}
    assert body["messages"][2:] == [{"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                                    {"role": "tool", "tool_call_id": "call_2", "content": "rain"}]


def test_a_function_call_without_an_assistant_message_before_it_gets_one() -> None:
    body, _ = translate(input=[{"role": "user", "content": "go"},
                               {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}])
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_tools_choice_sampling_and_format_are_renamed() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    body, _ = translate(
        input="go", stream=True, temperature=0.2, top_p=0.9, max_output_tokens=50, parallel_tool_calls=False,
        tools=[{"type": "function", "name": "f", "description": "does f", "parameters": schema, "strict": True}],
        tool_choice={"type": "function", "name": "f"}, reasoning={"effort": "low"},
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}})
    assert body["tools"] == [{"type": "function", "function": {"name": "f", "description": "does f",
                                                               "parameters": schema, "strict": True}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["parallel_tool_calls"] is False
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (0.2, 0.9, 50)
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    assert body["reasoning_effort"] == "low"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_string_tool_choices_and_json_object_pass() -> None:
    body, _ = translate(input="go", tool_choice="required", text={"format": {"type": "json_object"}})
    assert body["tool_choice"] == "required" and body["response_format"] == {"type": "json_object"}
    body, _ = translate(input="go", text={"format": {"type": "text"}})
    assert "response_format" not in body


def test_history_comes_before_the_new_input() -> None:
    history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada."}]
    body, conversation = translate(history, input="What is my name?", instructions="Answer.")
    assert body["messages"] == [{"role": "system", "content": "Answer."}, *history,
                                {"role": "user", "content": "What is my name?"}]
    assert conversation == [*history, {"role": "user", "content": "What is my name?"}]


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": "x", "tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
    ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}, "input[0].content[0]"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format"),
    ({"input": "x", "background": True}, "background"),
    ({}, "input"),
    ({"input": []}, "input"),
])
def test_what_chat_models_cannot_do_is_refused_naming_the_parameter(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate(**fields)
    assert caught.value.param == param and caught.value.status == 400
