"""Guardrails as a pipeline stage: refuse blocked calls, pass the rest on (redacted when needed)."""
from __future__ import annotations

import time

import orjson
import pytest

from services.guardrails.checks import Policy
from services.guardrails.rules import Rule
from services.guardrails.spans import Span
from services.guardrails.stage import checked_body
from shared.config import GuardrailsConfig, RegexRule
from shared.errors import InvalidRequest
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import Call, CallEnvelope, Route, Target

POLICY = Policy.from_config(GuardrailsConfig(rules=[RegexRule(name="no-secrets", pattern="(?i)top secret")]))


def call(content: str, **extra: object) -> Call:
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}],
                         "temperature": 0.2, **extra})
    envelope = CallEnvelope(call_id="c1", request_id="r1", principal=Principal(key_id="k"), endpoint=Endpoint.CHAT,
                            deadline=time.time() + 5, route=Route(model="m", targets=[Target(provider="p", model="u")]),
                            stages=[Stage.GUARDRAILS, Stage.ROUTER])
    return Call(envelope, body)


def test_a_clean_call_goes_on_untouched() -> None:
    assert checked_body(POLICY, call("hello there")) is None  # None: the original bytes are forwarded


def test_a_blocked_call_is_refused_naming_the_rule_not_the_text() -> None:
    with pytest.raises(InvalidRequest) as caught:
        checked_body(POLICY, call("this is TOP SECRET"))
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "guardrail_blocked", "messages")
    assert "no-secrets" in error.message and "TOP SECRET" not in error.message


def test_a_redacted_call_keeps_everything_else() -> None:
    body = checked_body(POLICY, call("write to jane@example.com", x_vendor={"a": [1, 2]}))
    assert body is not None
    forwarded = orjson.loads(body)
    assert forwarded["messages"][0]["content"] == "write to [EMAIL]"
    assert forwarded["temperature"] == 0.2 and forwarded["x_vendor"] == {"a": [1, 2]}
    assert "stream" not in forwarded  # nothing the client did not send is added


def test_a_disabled_policy_checks_nothing() -> None:
    disabled = Policy.from_config(GuardrailsConfig(enabled=False, rules=[RegexRule(name="r", pattern="x")]))
    assert checked_body(disabled, call("x x x")) is None


def test_a_body_that_is_not_json_is_refused() -> None:
    broken = call("x")
    broken.body = b"{not json"
    with pytest.raises(InvalidRequest) as caught:
        checked_body(POLICY, broken)
    assert caught.value.code == "invalid_call"


def test_a_check_that_raises_fails_closed() -> None:
    def broken(text: str) -> list[Span]:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):  # the stage answers it as a 500: the call never goes on
        checked_body(Policy(enabled=True, rules=(Rule("broken", "block", broken, ""),)), call("hello"))
