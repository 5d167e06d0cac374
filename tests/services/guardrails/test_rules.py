from __future__ import annotations

from services.guardrails.rules import (
    CARD_RULE,
    EMAIL_RULE,
    compile_regex_rule,
    compile_rules,
    pii_rules,
)
from shared.config import GuardrailsConfig, PiiConfig, RegexRule


def test_regex_rule_keeps_its_settings_and_finds_matches() -> None:
    rule = compile_regex_rule(RegexRule(name="no-passwords", pattern=r"(?i)password\s*[:=]", action="redact",
                                        replacement="[PW]"))
    assert (rule.name, rule.action, rule.replacement) == ("no-passwords", "redact", "[PW]")
    text = "Password: x, password=y, passwd z"
    assert [text[s.start:s.end] for s in rule.find(text)] == ["Password:", "password="]


def test_regex_rule_ignores_empty_matches() -> None:
    rule = compile_regex_rule(RegexRule(name="stars", pattern=r"x*"))
    assert [tuple(s) for s in rule.find("axxb")] == [(1, 3)]


def test_pii_rules_follow_the_config() -> None:
    rules = pii_rules(PiiConfig(email="block", card="redact"))
    assert [(r.name, r.action, r.replacement) for r in rules] == [
        (EMAIL_RULE, "block", "[EMAIL]"), (CARD_RULE, "redact", "[CARD]"),
    ]
    assert pii_rules(PiiConfig(email="off", card="off")) == []
    assert [r.name for r in pii_rules(PiiConfig(email="off"))] == [CARD_RULE]


def test_compile_rules_orders_regex_rules_then_email_then_card() -> None:
    config = GuardrailsConfig(rules=[RegexRule(name="b", pattern="b"), RegexRule(name="a", pattern="a")])
    assert [rule.name for rule in compile_rules(config)] == ["b", "a", EMAIL_RULE, CARD_RULE]
