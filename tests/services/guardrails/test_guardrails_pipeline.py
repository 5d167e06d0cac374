"""The chat pipeline stage: refuse blocked calls, forward the rest (redacted when needed)."""
from __future__ import annotations

from services.guardrails.pipeline import Forward, Refuse, stage_chat
from shared.messages import ChatRouteRequest

from services.guardrails.checks import Policy
from shared.config import GuardrailsConfig, RegexRule
from shared.events import Principal
from shared.openai_types import ChatCompletionRequest

POLICY = Policy.from_config(GuardrailsConfig(rules=[RegexRule(name="no-secrets", pattern="(?i)top secret")]))


def call(content: str) -> bytes:
    body = ChatCompletionRequest(model="gpt-4o-mini", messages=[{"role": "user", "content": content}],
                                 temperature=0.2)
    request = ChatRouteRequest(request_id="r1", principal=Principal(key_id="k"), body=body)
    return request.model_dump_json(exclude_unset=True).encode()


def test_clean_call_is_forwarded_byte_for_byte() -> None:
    data = call("hello there")
    assert stage_chat(POLICY, data) == Forward(data)


def test_blocked_call_is_refused_naming_the_rule() -> None:
    action = stage_chat(POLICY, call("this is TOP SECRET"))
    assert isinstance(action, Refuse) and action.status == 400
    error = action.error.body.error
    assert error.code == "guardrail_blocked" and "no-secrets" in error.message
    assert "TOP SECRET" not in error.message


def test_redacted_call_is_forwarded_redacted_with_everything_else_kept() -> None:
    action = stage_chat(POLICY, call("write to jane@example.com"))
    assert isinstance(action, Forward)
    forwarded = ChatRouteRequest.model_validate_json(action.data)
    assert "jane@example.com" not in forwarded.body.messages[0].content
    assert forwarded.body.temperature == 0.2 and forwarded.request_id == "r1"
    assert b'"stream"' not in action.data  # unset fields stay unset on the way to the upstream


def test_garbage_is_refused() -> None:
    action = stage_chat(POLICY, b"{not json")
    assert isinstance(action, Refuse) and action.status == 400
