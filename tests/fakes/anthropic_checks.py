"""The checks the Anthropic Messages API makes on a request body, for the fake upstream:
the first problem found, worded after the API's own `invalid_request_error` messages, or
None for a body the API would accept."""
from __future__ import annotations

from typing import Any

MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
USER_BLOCKS = ("text", "image", "document", "tool_result")
ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking")
TOOL_CHOICES = ("auto", "any", "tool", "none")


def request_problem(body: dict[str, Any]) -> str | None:
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["model"], str) or not body["model"]:
        return "model: Input should be a valid string"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
        return "temperature: range: 0..1"
    return _system_problem(body.get("system")) or _tools_problem(body) or _messages_problem(body["messages"])


def _system_problem(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list) or any(not isinstance(b, dict) or b.get("type") != "text" for b in system):
        return "system: Input should be a valid string or a list of text blocks"
    return None


def _tools_problem(body: dict[str, Any]) -> str | None:
    names = []
    for index, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return f"tools.{index}.name: Field required"
        if not isinstance(tool.get("input_schema"), dict):
            return f"tools.{index}.custom.input_schema: Field required"
        names.append(tool["name"])
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
        return "tool_choice: Input tag found using 'type' does not match any of the expected tags: " + ", ".join(TOOL_CHOICES)
    if choice["type"] == "tool" and choice.get("name") not in names:
        return f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in provided tools"
    return None


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    previous_tool_uses: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{index}: Input should be a valid dictionary"
        role = message.get("role")
        if role not in ("user", "assistant"):
            return (f'messages.{index}: Unexpected role "{role}". The Messages API accepts a top-level `system` '
                    f'parameter, not "{role}" as an input message role.' if role == "system"
                    else f"messages.{index}.role: Input should be 'user' or 'assistant'")
        blocks = _blocks(message.get("content"))
        if blocks is None:
            return f"messages.{index}.content: Input should be a valid string or a list of content blocks"
        if not blocks:
            return f"messages.{index}: all messages must have non-empty content"
        problem = _blocks_problem(blocks, role, f"messages.{index}.content")
        if problem:
            return problem
        results = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"}
        if results - previous_tool_uses:
            return (f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{', '.join(sorted(results - previous_tool_uses))}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message.")
        if previous_tool_uses - results:
            return (f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(sorted(previous_tool_uses - results))}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message.")
        previous_tool_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    if previous_tool_uses:
        return "messages: the last message has `tool_use` blocks without `tool_result` blocks after them"
    return None


def _blocks(content: Any) -> list[dict[str, Any]] | None:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return content
    return None


def _blocks_problem(blocks: list[dict[str, Any]], role: str, where: str) -> str | None:
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    for index, block in enumerate(blocks):
        at = f"{where}.{index}"
        kind = block.get("type")
        if kind not in allowed:
            return f"{at}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {', '.join(allowed)}"
        if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"]):
            return f"{at}: text content blocks must be non-empty"
        if kind == "image":
            problem = _image_problem(block.get("source"), f"{at}.image.source")
            if problem:
                return problem
        if kind == "tool_use" and not (isinstance(block.get("id"), str) and isinstance(block.get("name"), str)
                                       and isinstance(block.get("input"), dict)):
            return f"{at}.tool_use: id, name and an object input are required"
        if kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
            return f"{at}.tool_result.tool_use_id: Field required"
    return None


def _image_problem(source: Any, where: str) -> str | None:
    if not isinstance(source, dict):
        return f"{where}: Field required"
    if source.get("type") == "url":
        return None if isinstance(source.get("url"), str) else f"{where}.url.url: Field required"
    if source.get("type") != "base64":
        return (f"{where}: Input tag '{source.get('type')}' found using 'type' does not match any of the expected tags: "
                "'base64', 'url'")
    if source.get("media_type") not in MEDIA_TYPES:
        return f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
    if not isinstance(source.get("data"), str) or not source["data"]:
        return f"{where}.base64.data: Field required"
    return None
