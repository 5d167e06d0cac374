"""Chat completions (as the pipeline answers) as Anthropic `message` objects."""
from __future__ import annotations

from typing import Any

import pytest

from services.ingress.anthropic_api.answer import anthropic_usage, message_id, message_of
from services.router.providers.openai import payloads as p
from shared.errors import UpstreamError


def test_text_answer() -> None:
    message = message_of(p.chat_completion("gpt-4o-mini", 12), "my-model", None)
    assert message["id"].startswith("msg_") and message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": p.REPLY_TEXT}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["model"] == "gpt-4o-mini"
    assert message["usage"] == {"input_tokens": 12, "output_tokens": p.COMPLETION_TOKENS,
                                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def test_tool_call_answer() -> None:
    completion = p.tool_call_completion("gpt-4o-mini", 12, "get_weather", '{"city": "Paris"}')
    message = message_of(completion, "m", None)
    (block,) = message["content"]
    call = completion["choices"][0]["message"]["tool_calls"][0]
    assert block == {"type": "tool_use", "id": call["id"], "name": "get_weather", "input": {"city": "Paris"}}
    assert message["stop_reason"] == "tool_use"


def test_tool_arguments_that_are_not_an_object() -> None:
    with pytest.raises(UpstreamError, match="get_weather"):
        message_of(p.tool_call_completion("m", 1, "get_weather", '{"city": "Par'), "m", None)
    cut = p.tool_call_completion("m", 1, "get_weather", '{"city": "Par')
    cut["choices"][0]["finish_reason"] = "length"  # max_tokens ended it mid-call: Anthropic's shape for that
    message = message_of(cut, "m", None)
    assert message["stop_reason"] == "max_tokens" and message["content"][0]["input"] == {}


@pytest.mark.parametrize(("finish", "matched", "expected"), [
    ("stop", None, ("end_turn", None)), ("length", None, ("max_tokens", None)),
    ("tool_calls", None, ("tool_use", None)), ("content_filter", None, ("refusal", None)),
    ("stop", "END", ("stop_sequence", "END")),  # vLLM names the matched stop string
    ("stop", "OTHER", ("end_turn", None)),  # not one the client asked for
])
def test_stop_reasons(finish: str, matched: str | None, expected: tuple[str, str | None]) -> None:
    completion: dict[str, Any] = p.chat_completion("m", 1)
    completion["choices"][0].update(finish_reason=finish, stop_reason=matched)
    message = message_of(completion, "m", ["END"])
    assert (message["stop_reason"], message["stop_sequence"]) == expected


def test_cached_prompt_tokens_are_taken_out_of_input_tokens() -> None:
    usage = {"prompt_tokens": 2010, "completion_tokens": 7, "total_tokens": 2017,
             "prompt_tokens_details": {"cached_tokens": 1800, "cache_creation_tokens": 200}}
    assert anthropic_usage(usage) == {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 1800,
                                      "cache_creation_input_tokens": 200}


def test_message_ids() -> None:
    assert message_id("chatcmpl-msg_01ABC") == "msg_01ABC"  # the anthropic provider type's own id
    assert message_id("chatcmpl-xyz") == "msg_xyz"
    assert message_id(None).startswith("msg_") and message_id(None) != message_id(None)
