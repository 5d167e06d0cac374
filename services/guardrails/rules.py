"""Guardrail rules compiled from the configuration: the regex rules, then the PII rules.

Every rule has one shape whatever it detects: a name (reported in verdicts), an action,
a finder that returns the spans it matches, and the text that replaces them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.guardrails import pii
from services.guardrails.spans import Finder, Span
from shared.config import GuardrailsConfig, PiiConfig, RegexRule

Action = Literal["block", "redact"]

EMAIL_RULE = "pii.email"
CARD_RULE = "pii.card"


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    find: Finder
    replacement: str


def _regex_finder(pattern: re.Pattern[str]) -> Finder:
    def find(text: str) -> list[Span]:
        # Empty matches (a pattern like `x*`) would redact nothing and count everything.
        return [Span(m.start(), m.end()) for m in pattern.finditer(text) if m.end() > m.start()]

    return find


def compile_regex_rule(rule: RegexRule) -> Rule:
    return Rule(rule.name, rule.action, _regex_finder(re.compile(rule.pattern)), rule.replacement)


def pii_rules(config: PiiConfig) -> list[Rule]:
    rules: list[Rule] = []
    if config.email != "off":
        rules.append(Rule(EMAIL_RULE, config.email, pii.find_emails, pii.EMAIL_PLACEHOLDER))
    if config.card != "off":
        rules.append(Rule(CARD_RULE, config.card, pii.find_cards, pii.CARD_PLACEHOLDER))
    return rules


def compile_rules(config: GuardrailsConfig) -> tuple[Rule, ...]:
    """Every rule of the configuration, in the order they apply: regex rules as listed,
    then e-mail addresses (before cards, as an address may hold a digit run), then cards."""
    return (*(compile_regex_rule(rule) for rule in config.rules), *pii_rules(config.pii))
