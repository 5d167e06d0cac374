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
                         "temperature": 0.2, **extra})  # `messages=` in `extra` replaces the one message
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


def embeddings_call(input_: object) -> Call:
    body = orjson.dumps({"model": "text-embedding-3-small", "input": input_, "dimensions": 8})
    envelope = CallEnvelope(call_id="c2", request_id="r2", principal=Principal(key_id="k"),
                            endpoint=Endpoint.EMBEDDINGS, deadline=time.time() + 5,
                            route=Route(model="m", targets=[Target(provider="p", model="u")]),
                            stages=[Stage.GUARDRAILS, Stage.ROUTER])
    return Call(envelope, body)


def test_a_blocked_tool_call_argument_is_refused() -> None:
    tool_call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"q": "top secret"}'}}]}
    with pytest.raises(InvalidRequest) as caught:
        checked_body(POLICY, call("hello", messages=[{"role": "user", "content": "hi"}, tool_call]))
    assert (caught.value.code, caught.value.param) == ("guardrail_blocked", "messages")


def test_embeddings_input_is_refused_or_redacted_naming_input() -> None:
    for blocked_input in ("top secret plans", ["fine", "TOP SECRET"]):
        with pytest.raises(InvalidRequest) as caught:
            checked_body(POLICY, embeddings_call(blocked_input))
        assert (caught.value.status, caught.value.code, caught.value.param) == (400, "guardrail_blocked", "input")
    body = checked_body(POLICY, embeddings_call(["write to jane@example.com", "fine"]))
    assert body is not None
    forwarded = orjson.loads(body)
    assert forwarded["input"] == ["write to [EMAIL]", "fine"] and forwarded["dimensions"] == 8


def test_embeddings_token_arrays_and_clean_input_go_on_untouched() -> None:
    assert checked_body(POLICY, embeddings_call([[101, 2023], [102]])) is None
    assert checked_body(POLICY, embeddings_call("hello")) is None


def responses_call(**body: object) -> Call:
    envelope = CallEnvelope(call_id="c2", request_id="r2", principal=Principal(key_id="k"),
                            endpoint=Endpoint.RESPONSES, deadline=time.time() + 5,
                            route=Route(model="m", targets=[Target(provider="p", model="u")]),
                            stages=[Stage.GUARDRAILS, Stage.ROUTER])
    return Call(envelope, orjson.dumps({"model": "m", **body}))


@pytest.mark.parametrize("body", [
    {"input": "this is TOP SECRET"},
    {"input": "hi", "instructions": "keep it top secret"},
    {"input": [{"role": "user", "content": [{"type": "input_text", "text": "top secret"}]}]},
    {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"q": "top secret"}'}]},
    {"input": [{"type": "function_call_output", "call_id": "c", "output": "TOP SECRET result"}]},
])
def test_a_responses_body_is_checked_in_its_instructions_and_items(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        checked_body(POLICY, responses_call(**body))
    assert (caught.value.code, caught.value.param) == ("guardrail_blocked", "input")


def test_a_responses_body_is_redacted_and_keeps_what_the_gateway_does_not_read() -> None:
    items = [{"type": "reasoning", "id": "rs_1", "encrypted_content": "jane@example.com"},
             {"role": "user", "content": [{"type": "input_text", "text": "mail jane@example.com"},
                                          {"type": "input_file", "file_id": "file-1"}]}]
    body = checked_body(POLICY, responses_call(input=items, include=["reasoning.encrypted_content"]))
    assert body is not None
    sent = orjson.loads(body)
    assert sent["input"][0] == items[0] and sent["include"] == ["reasoning.encrypted_content"]
    assert sent["input"][1]["content"] == [{"type": "input_text", "text": "mail [EMAIL]"}, items[1]["content"][1]]  # type: ignore[index]
    assert checked_body(POLICY, responses_call(input="all clear")) is None
