"""Guardrails see everything the upstream will see, through the official openai SDK:
tool-call arguments, tool results, `name` fields and embeddings input are checked like
message content (the e2e config blocks "top secret" and redacts e-mail addresses)."""
from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI

QUESTION = {"role": "user", "content": "What does the file say?"}


def tool_call(arguments: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": arguments}}]}


def tool_result(content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": "call_1", "content": content}


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> tuple[str, str]:
    return gateway.create_key("guardrails-e2e")


@pytest.fixture(scope="module")
def client(gateway: Gateway, key: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key[0], max_retries=0, timeout=20)


@pytest.mark.parametrize("messages", [
    [QUESTION, tool_call('{"path": "top secret/plans.txt"}'), tool_result("no such file")],
    [QUESTION, tool_call('{"path": "plans.txt"}'), tool_result("TOP SECRET: the plans")],
    [{"role": "user", "name": "top secret", "content": "hello"}],
], ids=["tool-call-arguments", "tool-result", "name"])
def test_a_blocked_pattern_outside_message_content_is_refused(client: openai.OpenAI, fake_openai: FakeOpenAI,
                                                              messages: list[dict[str, Any]]) -> None:
    before = len(fake_openai.requests)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    assert (err.value.status_code, err.value.code, err.value.param) == (400, "guardrail_blocked", "messages")
    assert "no-top-secret" in err.value.message and "plans" not in err.value.message
    assert len(fake_openai.requests) == before  # the upstream never saw it


@pytest.mark.parametrize("input_", ["top secret plans", ["fine", "these are TOP SECRET"]], ids=["string", "list"])
def test_a_blocked_pattern_in_embeddings_input_is_refused(gateway: Gateway, client: openai.OpenAI,
                                                          key: tuple[str, str], input_: str | list[str]) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="text-embedding-3-small", input=input_)
    assert (err.value.status_code, err.value.code, err.value.param) == (400, "guardrail_blocked", "input")
    request_id = err.value.response.headers["x-request-id"]

    def denied() -> list[Any]:
        return pg_rows(gateway, "SELECT type FROM audit_log WHERE request_id = $1 AND type = 'request.denied'",
                       request_id)

    assert wait_for(denied)  # a refusal, recorded as `request.denied` like a chat one


def test_redaction_reaches_tool_call_arguments_and_embeddings_input(client: openai.OpenAI,
                                                                     fake_openai: FakeOpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[  # type: ignore[arg-type]
        QUESTION, tool_call('{"to": "jane.doe@example.com"}'), tool_result("sent to jane.doe@example.com")])
    sent = [r.json for r in fake_openai.requests if r.json and "tool_calls" in str(r.json.get("messages"))][-1]
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"to": "[EMAIL]"}'
    assert sent["messages"][2]["content"] == "sent to [EMAIL]"

    done = client.embeddings.create(model="text-embedding-3-small", input=["write jane.doe@example.com", "fine"])
    assert len(done.data) == 2
    embedded = [r.json for r in fake_openai.requests if r.json and r.json.get("input")][-1]
    assert embedded["input"] == ["write [EMAIL]", "fine"]

    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3]])  # token arrays pass
    assert len(tokens.data) == 1
