"""The input check: one policy applied to the messages of a chat request.

Block rules are looked for first, in the text as sent, so a redaction can never hide
what a block rule is there to stop; the first block rule that matches decides. Redact
rules then apply in order, each to the output of the one before. Only text is checked:
string content and the `text` of `{"type": "text"}` parts; images and other parts pass
untouched. Verdicts name rules and counts, never the text that matched.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from services.guardrails.rules import Rule, compile_rules
from services.guardrails.spans import replace_spans
from services.guardrails.verdict import Finding, GuardrailVerdict
from shared.config import GuardrailsConfig

Message = dict[str, Any]  # one chat message as the client sent it (validated by the ingress)


@dataclass(frozen=True)
class Policy:
    """A guardrails configuration with its patterns compiled: build once per config."""

    enabled: bool
    rules: tuple[Rule, ...]

    @classmethod
    def from_config(cls, config: GuardrailsConfig) -> Policy:
        return cls(enabled=config.enabled, rules=compile_rules(config))


def block_message(rule: str) -> str:
    return f"Request blocked by guardrail rule {rule!r}"


def check_input(policy: Policy, messages: Sequence[Message]) -> GuardrailVerdict:
    if not policy.enabled:
        return GuardrailVerdict(verdict="allow")

    for rule in policy.rules:
        if rule.action != "block":
            continue
        count = sum(len(rule.find(text)) for text in _texts(messages))
        if count:
            return GuardrailVerdict(
                verdict="block", rule=rule.name, message=block_message(rule.name),
                findings=[Finding(rule=rule.name, action="block", count=count)],
            )

    findings: list[Finding] = []
    current = list(messages)
    for rule in policy.rules:
        if rule.action != "redact":
            continue
        redactor = _Redactor(rule)
        current = _map_texts(current, redactor)
        if redactor.count:
            findings.append(Finding(rule=rule.name, action="redact", count=redactor.count))

    if not findings:
        return GuardrailVerdict(verdict="allow")
    return GuardrailVerdict(verdict="modify", findings=findings, messages=current)


class _Redactor:
    """Redacts one rule's matches and counts them across every text it is given."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.count = 0

    def __call__(self, text: str) -> str:
        spans = self.rule.find(text)
        if not spans:
            return text
        self.count += len(spans)
        return replace_spans(text, spans, self.rule.replacement)


def _is_text_part(part: dict[str, Any]) -> bool:
    return part.get("type") == "text" and isinstance(part.get("text"), str)


def _texts(messages: Sequence[Message]) -> Iterator[str]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and _is_text_part(part):
                    yield part["text"]


def _map_texts(messages: list[Message], change: Callable[[str], str]) -> list[Message]:
    """The messages with every text changed; a message without a change is kept as is."""
    result: list[Message] = []
    for message in messages:
        content = message.get("content")
        new_content: Any = content
        if isinstance(content, str):
            new_content = change(content)
        elif isinstance(content, list):
            new_content = [_map_part(part, change) if isinstance(part, dict) else part for part in content]
        if new_content == content:
            result.append(message)
        else:
            result.append({**message, "content": new_content})
    return result


def _map_part(part: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    if not _is_text_part(part):
        return part
    text = change(part["text"])
    return part if text == part["text"] else {**part, "text": text}
