from __future__ import annotations

from typing import Any

from services.guardrails.checks import Policy, check_input
from services.guardrails.texts import walk_input
from services.guardrails.verdict import Finding
from shared.config import GuardrailsConfig, PiiConfig, RegexRule

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
IMAGE = {"type": "image_url", "image_url": {"url": "https://img.example.com/jane.doe@example.com.png"}}


def policy(**config: Any) -> Policy:
    return Policy.from_config(GuardrailsConfig.model_validate(config))


def message(role: str, content: Any = None) -> dict[str, Any]:
    return {"role": role, "content": content}


def user(content: Any) -> dict[str, Any]:
    return message("user", content)


NO_PASSWORDS = {"name": "no-passwords", "pattern": r"(?i)\bpassword\b", "action": "block"}
REDACT_TOKENS = {"name": "tokens", "pattern": r"tok_[a-z0-9]+", "action": "redact", "replacement": "[TOKEN]"}


def test_clean_messages_are_allowed() -> None:
    verdict = check_input(policy(rules=[NO_PASSWORDS]), [user("hello"), message("assistant")])
    assert verdict.verdict == "allow"
    assert verdict.document is None and verdict.findings == [] and verdict.rule is None


def test_block_rule_names_the_rule() -> None:
    verdict = check_input(policy(rules=[NO_PASSWORDS]), [user("hi"), user("my Password is hunter2")])
    assert verdict.verdict == "block"
    assert verdict.rule == "no-passwords"
    assert verdict.message == "Request blocked by guardrail rule 'no-passwords'"
    assert verdict.findings == [Finding(rule="no-passwords", action="block", count=1)]
    assert verdict.document is None
    assert "hunter2" not in verdict.model_dump_json()


def test_block_rule_sees_text_parts() -> None:
    verdict = check_input(policy(rules=[NO_PASSWORDS]), [user([IMAGE, {"type": "text", "text": "the password"}])])
    assert (verdict.verdict, verdict.rule) == ("block", "no-passwords")


def test_block_wins_over_an_earlier_redaction_of_the_same_text() -> None:
    hide = {"name": "hide", "pattern": "password", "action": "redact"}
    verdict = check_input(policy(rules=[hide, NO_PASSWORDS]), [user("password")])
    assert (verdict.verdict, verdict.rule) == ("block", "no-passwords")


def test_first_matching_block_rule_decides() -> None:
    rules = [{"name": "first", "pattern": "b"}, {"name": "second", "pattern": "a"}]
    assert check_input(policy(rules=rules), [user("ab")]).rule == "first"


def test_redacts_string_content() -> None:
    messages = [message("system", "be nice"), user(f"mail {EMAIL}, card {CARD}, key tok_abc1")]
    verdict = check_input(policy(rules=[REDACT_TOKENS]), messages)
    assert verdict.verdict == "modify"
    assert verdict.document is not None
    assert [m["content"] for m in verdict.document] == ["be nice", "mail [EMAIL], card [CARD], key [TOKEN]"]
    assert verdict.findings == [
        Finding(rule="tokens", action="redact", count=1),
        Finding(rule="pii.email", action="redact", count=1),
        Finding(rule="pii.card", action="redact", count=1),
    ]
    assert messages[1]["content"] == f"mail {EMAIL}, card {CARD}, key tok_abc1"  # input untouched


def test_redacts_text_parts_and_leaves_images_alone() -> None:
    content = [{"type": "text", "text": f"{EMAIL} and {EMAIL}"}, IMAGE, {"type": "text", "text": "fine"}]
    verdict = check_input(policy(), [user(content)])
    assert verdict.verdict == "modify"
    assert verdict.document is not None
    assert verdict.document[0]["content"] == [{"type": "text", "text": "[EMAIL] and [EMAIL]"}, IMAGE,
                                           {"type": "text", "text": "fine"}]
    assert verdict.findings == [Finding(rule="pii.email", action="redact", count=2)]


def test_counts_add_up_across_messages() -> None:
    verdict = check_input(policy(), [user(CARD), user([{"type": "text", "text": CARD}]), user(f"{CARD}!")])
    assert verdict.findings == [Finding(rule="pii.card", action="redact", count=3)]


def test_modified_messages_keep_role_and_extra_fields() -> None:
    named = {"role": "user", "name": "jane", "content": EMAIL}
    verdict = check_input(policy(), [named])
    assert verdict.document is not None
    assert verdict.document[0] == {"role": "user", "name": "jane", "content": "[EMAIL]"}


def test_pii_block_names_the_pii_rule() -> None:
    verdict = check_input(policy(pii={"card": "block"}), [user(f"card {CARD} mail {EMAIL}")])
    assert (verdict.verdict, verdict.rule) == ("block", "pii.card")
    assert verdict.message == "Request blocked by guardrail rule 'pii.card'"
    assert CARD not in verdict.model_dump_json()
    verdict = check_input(policy(pii={"email": "block"}), [user([{"type": "text", "text": EMAIL}])])
    assert (verdict.verdict, verdict.rule) == ("block", "pii.email")


def test_pii_off_is_not_checked() -> None:
    verdict = check_input(policy(pii=PiiConfig(email="off", card="off").model_dump()), [user(f"{EMAIL} {CARD}")])
    assert verdict.verdict == "allow"


def test_invalid_card_numbers_are_not_redacted() -> None:
    assert check_input(policy(), [user("order 4111 1111 1111 1112")]).verdict == "allow"


def test_disabled_config_always_allows() -> None:
    disabled = policy(enabled=False, rules=[NO_PASSWORDS], pii={"email": "block"})
    verdict = check_input(disabled, [user(f"password {EMAIL}")])
    assert verdict.verdict == "allow" and verdict.findings == []


def test_replacement_is_literal() -> None:
    rule = RegexRule(name="digits", pattern=r"(\d+)", action="redact", replacement=r"<\1>")
    verdict = check_input(Policy.from_config(GuardrailsConfig(rules=[rule])), [user("pin 1234")])
    assert verdict.document is not None and verdict.document[0]["content"] == r"pin <\1>"


def test_verdict_round_trips_through_json() -> None:
    verdict = check_input(policy(), [user([{"type": "text", "text": EMAIL}, IMAGE]), message("assistant")])
    again = type(verdict).model_validate_json(verdict.model_dump_json())
    assert again == verdict


def tool_call(arguments: str, name: str = "lookup") -> dict[str, Any]:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}]}


def test_block_rule_sees_tool_call_arguments_names_and_tool_results() -> None:
    block = policy(rules=[NO_PASSWORDS])
    for messages in (
        [user("hi"), tool_call('{"query": "the admin password"}')],
        [user("hi"), tool_call("{}", name="password-reset")],
        [{"role": "user", "name": "password", "content": "hi"}],
        [user("hi"), tool_call("{}"), {"role": "tool", "tool_call_id": "call_1", "content": "password: x"}],
        [{"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "a password"}]}],
        [{"role": "assistant", "function_call": {"name": "f", "arguments": '{"password": 1}'}}],
    ):
        verdict = check_input(block, messages)
        assert verdict.verdict == "block", messages
        assert verdict.rule == "no-passwords"


def test_redaction_reaches_tool_call_arguments_and_keeps_the_call() -> None:
    messages = [user("find mine"), tool_call(f'{{"email": "{EMAIL}"}}')]
    verdict = check_input(policy(), messages)
    assert verdict.verdict == "modify" and verdict.document is not None
    call = verdict.document[1]["tool_calls"][0]
    assert call == {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"email": "[EMAIL]"}'}}
    assert verdict.document[0] is messages[0]  # the untouched message is not copied
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == f'{{"email": "{EMAIL}"}}'


def test_embeddings_input_is_checked_as_text() -> None:
    assert check_input(policy(rules=[NO_PASSWORDS]), ["fine", "my password"], walk_input).verdict == "block"
    assert check_input(policy(rules=[NO_PASSWORDS]), "a password", walk_input).verdict == "block"
    verdict = check_input(policy(), ["fine", f"mail {EMAIL}"], walk_input)
    assert verdict.verdict == "modify" and verdict.document == ["fine", "mail [EMAIL]"]
    assert check_input(policy(rules=[NO_PASSWORDS]), [[1, 2, 3]], walk_input).verdict == "allow"
