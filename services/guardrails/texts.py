"""Where the text an upstream will read sits in a request body, one walk per endpoint.

A walk takes the checked part of a body and a change for one text, and returns that part
with every text changed; what holds no change is returned as it was (the same objects),
so a clean body is never copied. Reading the texts is the same walk with a change that
only collects, so checking and redacting always see the same texts.

Chat (`messages`): string content and the text of content parts (`text`, `refusal`), in
every role — tool results (`role: tool`) included; each message's `name` and `refusal`;
assistant `tool_calls[].function` name and arguments, and the older `function_call`.
Images, audio and files are not text and pass untouched.

Embeddings (`input`): a string or a list of strings; token arrays are not text.

Responses (the whole body): `instructions`, and `input` (a string, or items: a message's
string content or the text of its `input_text` / `output_text` / `refusal` parts; a
`function_call`'s name and arguments; a `function_call_output`'s output, string or parts).
Items of other types (reasoning, references, built-in tools' calls) hold no text to check.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Change = Callable[[str], str]
Walk = Callable[[Any, Change], Any]

# content part type -> the field holding its text (chat's parts, then the Responses API's)
_TEXT_PARTS = {"text": "text", "refusal": "refusal", "input_text": "text", "output_text": "text"}
_MESSAGE_TEXTS = ("name", "refusal")
_FUNCTION_TEXTS = ("name", "arguments")


def _fields(item: dict[str, Any], names: tuple[str, ...], change: Change) -> dict[str, Any]:
    """`item` with its string fields `names` changed; `item` itself when none changes."""
    updates: dict[str, Any] = {}
    for name in names:
        value = item.get(name)
        if isinstance(value, str):
            changed = change(value)
            if changed != value:
                updates[name] = changed
    return {**item, **updates} if updates else item


def _list(items: list[Any], each: Callable[[Any], Any]) -> list[Any]:
    changed = [each(item) for item in items]
    return items if all(new is old for new, old in zip(changed, items, strict=True)) else changed


def _part(part: Any, change: Change) -> Any:
    if not isinstance(part, dict):
        return part
    field = _TEXT_PARTS.get(part.get("type"))  # type: ignore[arg-type]
    return _fields(part, (field,), change) if field else part


def _function_holder(item: Any, change: Change) -> Any:
    """A tool call (`{"function": {...}}`): its function's name and arguments changed."""
    if not isinstance(item, dict) or not isinstance(item.get("function"), dict):
        return item
    function = _fields(item["function"], _FUNCTION_TEXTS, change)
    return item if function is item["function"] else {**item, "function": function}


def _message(message: Any, change: Change) -> Any:
    if not isinstance(message, dict):
        return message
    updated = _fields(message, _MESSAGE_TEXTS, change)
    content = message.get("content")
    if isinstance(content, str):
        updated = _fields(updated, ("content",), change)
    elif isinstance(content, list):
        parts = _list(content, lambda part: _part(part, change))
        if parts is not content:
            updated = {**updated, "content": parts}
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        changed_calls = _list(calls, lambda call: _function_holder(call, change))
        if changed_calls is not calls:
            updated = {**updated, "tool_calls": changed_calls}
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        function = _fields(legacy, _FUNCTION_TEXTS, change)
        if function is not legacy:
            updated = {**updated, "function_call": function}
    return updated


def walk_messages(messages: Any, change: Change) -> Any:
    """Chat `messages` with every text changed."""
    if not isinstance(messages, list):
        return messages
    return _list(messages, lambda message: _message(message, change))


def walk_input(value: Any, change: Change) -> Any:
    """Embeddings `input` with every text changed (token arrays untouched)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return _list(value, lambda item: change(item) if isinstance(item, str) else item)
    return value


def _content(holder: dict[str, Any], name: str, change: Change) -> dict[str, Any]:
    """`holder` with its `name` (a string, or a list of content parts) changed."""
    value = holder.get(name)
    if isinstance(value, str):
        return _fields(holder, (name,), change)
    if isinstance(value, list):
        parts = _list(value, lambda part: _part(part, change))
        return holder if parts is value else {**holder, name: parts}
    return holder


def _response_item(item: Any, change: Change) -> Any:
    if not isinstance(item, dict):
        return item
    kind = item.get("type", "message")
    if kind == "message":
        return _content(item, "content", change)
    if kind == "function_call":
        return _fields(item, _FUNCTION_TEXTS, change)
    if kind == "function_call_output":
        return _content(item, "output", change)
    return item


def walk_responses(body: Any, change: Change) -> Any:
    """A Responses API body with the texts of its `instructions` and `input` changed."""
    if not isinstance(body, dict):
        return body
    updated = _fields(body, ("instructions", "input"), change)
    items = body.get("input")
    if isinstance(items, list):
        changed = _list(items, lambda item: _response_item(item, change))
        if changed is not items:
            updated = {**updated, "input": changed}
    return updated


def texts(document: Any, walk: Walk) -> list[str]:
    """Every text `walk` finds in `document`, in order."""
    found: list[str] = []

    def collect(text: str) -> str:
        found.append(text)
        return text

    walk(document, collect)
    return found
