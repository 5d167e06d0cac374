"""Where the text an upstream reads sits in chat messages and embeddings input."""
from __future__ import annotations

import copy
from typing import Any

from services.guardrails.texts import texts, walk_input, walk_messages

IMAGE = {"type": "image_url", "image_url": {"url": "https://img.example.com/a.png"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}

# one message of every kind OpenAI's chat API takes, each text naming where it sits
CONVERSATION: list[dict[str, Any]] = [
    {"role": "developer", "content": "developer-content", "name": "developer-name"},
    {"role": "system", "content": [{"type": "text", "text": "system-part"}]},
    {"role": "user", "name": "user-name",
     "content": [{"type": "text", "text": "user-part"}, IMAGE, AUDIO, {"type": "file", "file": {"file_id": "f1"}}]},
    {"role": "assistant", "content": None, "refusal": "assistant-refusal",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "tool-name", "arguments": '{"q": "tool-arguments"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "tool-result"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "tool-result-part"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "assistant-part"},
                                      {"type": "refusal", "refusal": "assistant-refusal-part"}]},
    {"role": "assistant", "content": None,
     "function_call": {"name": "legacy-name", "arguments": '{"q": "legacy-arguments"}'}},
    {"role": "function", "name": "function-name", "content": "function-result"},
]


def test_every_text_the_upstream_reads_is_found() -> None:
    assert texts(CONVERSATION, walk_messages) == [
        "developer-name", "developer-content",
        "system-part",
        "user-name", "user-part",
        "assistant-refusal", "tool-name", '{"q": "tool-arguments"}',
        "tool-result",
        "tool-result-part",
        "assistant-part", "assistant-refusal-part",
        "legacy-name", '{"q": "legacy-arguments"}',
        "function-name", "function-result",
    ]


def test_ids_urls_and_binary_parts_are_not_text() -> None:
    found = " ".join(texts(CONVERSATION, walk_messages))
    for not_text in ("call_1", "img.example.com", "UklGRg", "f1", "wav"):
        assert not_text not in found


def test_a_change_reaches_every_text_and_nothing_else() -> None:
    before = copy.deepcopy(CONVERSATION)
    changed = walk_messages(CONVERSATION, str.upper)
    assert before == CONVERSATION  # the input is never changed in place
    assert texts(changed, walk_messages) == [text.upper() for text in texts(CONVERSATION, walk_messages)]
    assert changed[2]["content"][1:] == CONVERSATION[2]["content"][1:]  # image, audio, file untouched
    assert changed[3]["tool_calls"][0]["id"] == "call_1" and changed[4]["tool_call_id"] == "call_1"
    assert [m["role"] for m in changed] == [m["role"] for m in CONVERSATION]


def test_what_a_change_leaves_alone_is_the_same_object() -> None:
    def only_tool_arguments(text: str) -> str:
        return text.replace("tool-arguments", "[X]")

    changed = walk_messages(CONVERSATION, only_tool_arguments)
    assert changed is not CONVERSATION
    assert changed[3]["tool_calls"][0]["function"]["arguments"] == '{"q": "[X]"}'
    assert all(new is old for i, (new, old) in enumerate(zip(changed, CONVERSATION, strict=True)) if i != 3)
    assert walk_messages(CONVERSATION, lambda text: text) is CONVERSATION  # nothing changed: nothing copied


def test_malformed_parts_are_passed_over() -> None:
    odd: list[Any] = ["not a message", {"role": "user", "content": [None, "bare string", {"type": "text"}]},
                      {"role": "assistant", "tool_calls": [None, {"function": "not an object"}]}]
    assert texts(odd, walk_messages) == []
    assert walk_messages(odd, str.upper) is odd
    assert walk_messages(None, str.upper) is None


def test_embeddings_input_strings_are_text_token_arrays_are_not() -> None:
    assert texts("one text", walk_input) == ["one text"]
    assert texts(["a", "b"], walk_input) == ["a", "b"]
    assert texts([1, 2, 3], walk_input) == []
    assert texts([[1, 2], [3]], walk_input) == []
    assert walk_input(["a", "b"], str.upper) == ["A", "B"]
    tokens = [[1, 2], [3]]
    assert walk_input(tokens, str.upper) is tokens
    assert walk_input("x", str.upper) == "X"
