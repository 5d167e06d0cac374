"""`/v1/responses` passed through to a deployment whose provider serves the Responses API
itself (`native_responses`), with the official openai SDK: the fake upstream gets a
Responses request (not chat) with the deployment's model and the gateway's credentials,
the client the upstream's output and events, usage priced, recorded and audited as for
any call; failover (native to native, native to translated), guardrails, stored and
chained responses; a provider without the API still translated."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from services.router.providers.openai import payloads
from services.router.providers.openai import responses_payloads as rp
from tests.e2e.conftest import PRICE_IN, PRICE_OUT, UPSTREAM_KEY, charged, pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.openai_upstream import RecordedRequest as Recorded


@pytest.fixture(scope="module")
def keyed(gateway: Gateway) -> tuple[str, str]:
    return gateway.create_key("responses-native", org_id="org-responses-native")


@pytest.fixture(scope="module")
def client(gateway: Gateway, keyed: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=keyed[0], max_retries=0)


def received(fake: FakeOpenAI, marker: str, path: str = "/v1/responses") -> list[Recorded]:
    """The requests to `path` whose body mentions `marker`, oldest first."""
    return [r for r in fake.requests if r.path == path and r.json and marker in json.dumps(r.json)]


def test_a_response_goes_to_the_upstreams_responses_api(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    response = client.responses.create(model="gpt-4o-native", input="Say hello, natively", instructions="Be brief.",
                                       temperature=0.3, extra_body={"prompt_cache_key": "kept-as-sent"})
    assert response.output_text == rp.REPLY_TEXT  # the upstream's own answer, not the translator's
    assert response.model == "gpt-4o-native" and response.id.startswith("resp_")
    (sent,) = received(fake_openai, "Say hello, natively")
    assert sent.json == {"model": "gpt-4o", "input": "Say hello, natively", "instructions": "Be brief.",
                         "temperature": 0.3, "prompt_cache_key": "kept-as-sent"}  # nothing added, nothing lost
    assert sent.bearer == UPSTREAM_KEY  # the provider's credentials, never the client's key
    assert not received(fake_openai, "Say hello, natively", "/v1/chat/completions")
    assert client.responses.retrieve(response.id).output_text == rp.REPLY_TEXT


def test_a_stream_relays_the_upstreams_events(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    with client.responses.stream(model="gpt-4o-native", input="Stream natively") as stream:
        events = list(stream)
        final = stream.get_final_response()
    upstream = rp.response_events({"input": "x"}, "gpt-4o")
    assert [e.type for e in events] == [e["type"] for e in upstream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == rp.REPLY_TEXT
    created = events[0]
    assert created.type == "response.created" and created.response.model == "gpt-4o-native"
    assert final.id == created.response.id and final.model == "gpt-4o-native" and final.output_text == rp.REPLY_TEXT
    assert received(fake_openai, "Stream natively")[-1].json["stream"] is True
    assert client.responses.retrieve(final.id).output_text == rp.REPLY_TEXT  # kept before the last event


def test_usage_is_priced_recorded_and_audited(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("responses-native-usage")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    raw = client.responses.with_raw_response.create(model="o4-native", input="count this native response")
    response = raw.parse()
    with client.responses.stream(model="gpt-4o-native", input="count this native stream") as stream:
        streamed = stream.get_final_response()
    assert response.usage is not None and streamed.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == rp.REASONING_TOKENS
    rows = charged(gateway, key_id, 2)
    ledger = {r["request_id"]: r for r in pg_rows(gateway, "SELECT * FROM spend_ledger WHERE key_id = $1", key_id)}
    row = ledger[raw.headers["x-request-id"]]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (response.usage.input_tokens,
                                                                response.usage.output_tokens)
    assert row["completion_tokens"] == 10 + rp.REASONING_TOKENS and row["provider"] == "native"
    price = (PRICE_IN * row["prompt_tokens"] + PRICE_OUT * row["completion_tokens"]) / 1_000_000
    assert Decimal(row["cost"]) == price and all(r["status"] == "ok" for r in rows)
    assert sorted(r["completion_tokens"] for r in ledger.values()) == sorted(
        [response.usage.output_tokens, streamed.usage.output_tokens])
    usage = gateway.usage(key_id=key_id, group_by="provider")  # the usage events ("responses") in ClickHouse too
    assert [(u["group"]["provider"], u["requests"]) for u in usage] == [("native", 2)]

    def audit() -> list[Any]:
        found = pg_rows(gateway, "SELECT type FROM audit_log WHERE request_id = $1", raw.headers["x-request-id"])
        return found if len(found) >= 2 else []

    assert sorted(r["type"] for r in wait_for(audit)) == ["request.completed", "request.received"]


def test_failover_to_the_next_deployment_native_or_translated(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    response = client.responses.create(model="native-failover", input="fail over natively")
    assert response.output_text == rp.REPLY_TEXT and response.model == "native-failover"
    assert [r.json["model"] for r in received(fake_openai, "fail over natively")] == ["fail-500", "gpt-4o"]

    translated = client.responses.create(model="native-then-chat", input="fail over to chat")
    assert translated.output_text == payloads.REPLY_TEXT  # the chat deployment's answer, as a response
    assert [r.json["model"] for r in received(fake_openai, "fail over to chat")] == ["fail-503"]
    (chat,) = received(fake_openai, "fail over to chat", "/v1/chat/completions")
    assert chat.json["messages"] == [{"role": "user", "content": "fail over to chat"}]
    with client.responses.stream(model="native-then-chat", input="stream over to chat") as stream:
        final = stream.get_final_response()
    assert final.output_text == payloads.REPLY_TEXT and final.model == "native-then-chat"


def test_guardrails_check_the_native_input(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    for fields in ({"input": "this is TOP SECRET, guarded-natively"},
                   {"input": [{"role": "user", "content": [{"type": "input_text", "text": "top secret guarded-natively"}]}]},
                   {"input": "hello guarded-natively", "instructions": "Top Secret instructions"}):
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="gpt-4o-native", **fields)  # type: ignore[call-overload]
        assert caught.value.code == "guardrail_blocked"
    assert not received(fake_openai, "guarded-natively")  # refused before any upstream
    client.responses.create(model="gpt-4o-native", input="mail me at ada@example.com, natively redacted")
    (sent,) = received(fake_openai, "natively redacted")
    assert "ada@example.com" not in json.dumps(sent.json) and "[EMAIL]" in sent.json["input"]


def test_previous_response_id_continues_the_conversation(client: openai.OpenAI, fake_openai: FakeOpenAI,
                                                         gateway: Gateway) -> None:
    first = client.responses.create(model="gpt-4o-native", input="My name is Ada, natively",
                                    instructions="First instructions")
    second = client.responses.create(model="gpt-4o-native", input="What is my name, natively chained?",
                                     previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == rp.REPLY_TEXT
    (sent,) = received(fake_openai, "natively chained?")
    assert "previous_response_id" not in sent.json and "instructions" not in sent.json  # expanded by the gateway
    assert sent.json["input"] == [{"role": "user", "content": "My name is Ada, natively"},
                                  first.output[0].model_dump(exclude_none=True),
                                  {"role": "user", "content": "What is my name, natively chained?"}]

    # a turn on a provider without the Responses API goes on from the same conversation, translated
    third = client.responses.create(model="gpt-4o-mini", input="Third turn, translated", previous_response_id=second.id)
    (chat,) = received(fake_openai, "Third turn, translated", "/v1/chat/completions")
    assert chat.json["messages"] == [{"role": "user", "content": "My name is Ada, natively"},
                                     {"role": "assistant", "content": rp.REPLY_TEXT},
                                     {"role": "user", "content": "What is my name, natively chained?"},
                                     {"role": "assistant", "content": rp.REPLY_TEXT},
                                     {"role": "user", "content": "Third turn, translated"}]
    fourth = client.responses.create(model="gpt-4o-native", input="Fourth turn, native again",
                                     previous_response_id=third.id)
    assert len(received(fake_openai, "Fourth turn, native again")[0].json["input"]) == 7 and fourth.output_text

    other_key, _ = gateway.create_key("responses-native-other", org_id="org-native-elsewhere")
    other = openai.OpenAI(base_url=gateway.url + "/v1", api_key=other_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-4o-native", input="steal it", previous_response_id=first.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(first.id)


def test_an_error_event_mid_stream_ends_the_stream(gateway: Gateway, keyed: tuple[str, str]) -> None:
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {keyed[0]}"}) as http:
        raw = http.post("/v1/responses", json={"model": "native-stream-error", "input": "break", "stream": True})
    blocks = [b for b in raw.text.split("\n\n") if b]
    kinds = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    assert kinds[0] == "response.created" and kinds[-1] == "error" and "response.completed" not in kinds
    error = json.loads(blocks[-1].split("\ndata: ", 1)[1])
    assert "broke off" in error["message"] and error["sequence_number"] == 3


def test_a_provider_without_the_responses_api_is_translated(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="Translate me, not native")
    assert response.output_text == payloads.REPLY_TEXT
    assert received(fake_openai, "Translate me, not native", "/v1/chat/completions")
    assert not received(fake_openai, "Translate me, not native")
