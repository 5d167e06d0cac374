"""Token estimates for when an upstream reports no usage (about 4 characters a token)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(messages: Iterable[dict[str, Any]]) -> int:
    # ~3 tokens of framing per message, as in OpenAI's own counting guide, plus the text
    return sum(3 + estimate_text_tokens(_content_text(m.get("content"))) for m in messages) + 3


def estimate_responses_tokens(instructions: Any, items: Any) -> int:
    """A Responses API request's input: `instructions`, then `input` (a string, or items:
    messages by their content, function calls by their arguments, results by their output)."""
    messages: list[dict[str, Any]] = [{"content": instructions}] if isinstance(instructions, str) else []
    if isinstance(items, str):
        messages.append({"content": items})
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            messages.append({"content": item.get("content", item.get("arguments", item.get("output")))})
    return estimate_prompt_tokens(messages)


def estimate_input_tokens(value: Any) -> int:
    if isinstance(value, str):
        return estimate_text_tokens(value)
    if isinstance(value, list) and value and isinstance(value[0], int):
        return len(value)
    if isinstance(value, list):
        return sum(estimate_input_tokens(item) for item in value)
    return 0
