"""The input check: one policy applied to the texts of a request (services/guardrails/texts.py
says where they are: chat messages, embeddings input).

Block rules are looked for first, in the text as sent, so a redaction can never hide
what a block rule is there to stop; the first block rule that matches decides. Redact
rules then apply in order, each to the output of the one before. Only text is checked:
images and other parts pass untouched. Verdicts name rules and counts, never the text
that matched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.guardrails.rules import Rule, compile_rules
from services.guardrails.spans import replace_spans
from services.guardrails.texts import Walk, texts, walk_messages
from services.guardrails.verdict import Finding, GuardrailVerdict
from shared.config import GuardrailsConfig


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


def check_input(policy: Policy, document: Any, walk: Walk = walk_messages) -> GuardrailVerdict:
    """Check the texts `walk` finds in `document` (chat messages unless told otherwise)."""
    if not policy.enabled or not policy.rules:
        return GuardrailVerdict(verdict="allow")

    found = texts(document, walk)
    for rule in policy.rules:
        if rule.action != "block":
            continue
        count = sum(len(rule.find(text)) for text in found)
        if count:
            return GuardrailVerdict(
                verdict="block", rule=rule.name, message=block_message(rule.name),
                findings=[Finding(rule=rule.name, action="block", count=count)],
            )

    findings: list[Finding] = []
    current: Any = document
    for rule in policy.rules:
        if rule.action != "redact":
            continue
        redactor = _Redactor(rule)
        current = walk(current, redactor)
        if redactor.count:
            findings.append(Finding(rule=rule.name, action="redact", count=redactor.count))

    if not findings:
        return GuardrailVerdict(verdict="allow")
    return GuardrailVerdict(verdict="modify", findings=findings, document=current)


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
