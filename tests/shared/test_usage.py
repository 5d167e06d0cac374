"""Usage events of calls: one id per call, whoever publishes it; what a relayed stream said."""
from __future__ import annotations

import time
from decimal import Decimal

import orjson

from shared.events import Principal
from shared.openai_types import Usage
from shared.pipeline import Endpoint, Stage
from shared.protocol import CallEnvelope, Route, Target
from shared.tokens import estimate_prompt_tokens, estimate_text_tokens
from shared.usage import TokenDetails, estimated_usage, relayed_text, token_details, usage_event


def envelope() -> CallEnvelope:
    route = Route(model="gw", targets=[Target(provider="a", model="up-a")], input_per_million=Decimal(1),
                  output_per_million=Decimal(2))
    return CallEnvelope(call_id="0192f0aa-call", request_id="r1", principal=Principal(key_id="k", org_id="acme"),
                        endpoint=Endpoint.CHAT, stream=True, deadline=time.time() + 5, route=route,
                        stages=[Stage.ROUTER])


def test_the_router_and_the_ingress_charge_a_call_under_the_same_event_id() -> None:
    common = {"provider": "a", "deployment_model": "up-a", "usage_source": "estimated", "latency_ms": 1.0,
              "attempts": 1}
    by_router = usage_event(envelope(), source="router", usage=Usage(prompt_tokens=3, completion_tokens=4),
                            status="ok", **common)  # type: ignore[arg-type]
    by_ingress = usage_event(envelope(), source="ingress", usage=Usage(prompt_tokens=3), status="error",
                             **common)  # type: ignore[arg-type]
    assert by_router.id == by_ingress.id == "0192f0aa-call"  # JetStream and accounting keep only one
    assert (by_router.data.total_tokens, by_router.data.cost) == (7, Decimal("0.000011"))
    assert (by_ingress.org_id, by_ingress.request_id, by_ingress.data.status) == ("acme", "r1", "error")


def chunk(delta: dict[str, object], usage: dict[str, int] | None = None) -> bytes:
    return orjson.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}] if delta else [],
                         "usage": usage})


def test_relayed_chunks_give_their_text_and_any_usage() -> None:
    chunks = [chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}), b"not json"]
    assert relayed_text(chunks) == ('Hello{"a":', None)
    with_usage = [*chunks, chunk({}, {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})]
    text, usage = relayed_text(with_usage)
    assert text == 'Hello{"a":' and usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (5, 2)


def test_an_estimate_counts_the_prompt_and_the_text_relayed() -> None:
    messages = [{"role": "user", "content": "count these words please"}]
    usage = estimated_usage(Endpoint.CHAT, {"messages": messages}, "some reply text")
    assert usage.prompt_tokens == estimate_prompt_tokens(messages) > 0
    assert usage.completion_tokens == estimate_text_tokens("some reply text") > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert estimated_usage(Endpoint.EMBEDDINGS, {"input": ["abcd", "efgh"]}).prompt_tokens == 2


def test_token_details_as_the_adapters_report_them() -> None:
    openai = Usage.model_validate({"prompt_tokens": 1500, "completion_tokens": 600, "total_tokens": 2100,
                                   "prompt_tokens_details": {"cached_tokens": 1408, "audio_tokens": 0},
                                   "completion_tokens_details": {"reasoning_tokens": 512, "audio_tokens": 0}})
    assert token_details(openai) == TokenDetails(cached=1408, cache_write=0, reasoning=512)
    anthropic = Usage.model_validate({"prompt_tokens": 2006, "completion_tokens": 10, "prompt_tokens_details": {
        "cached_tokens": 1800, "cache_creation_tokens": 200}})
    assert token_details(anthropic) == TokenDetails(cached=1800, cache_write=200)
    # details missing, null (OpenAI-compatible servers), odd, or larger than their total
    assert token_details(Usage(prompt_tokens=5)) == TokenDetails()
    odd = Usage.model_validate({"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": None,
                                "completion_tokens_details": {"reasoning_tokens": "7"}})
    assert token_details(odd) == TokenDetails()
    over = Usage.model_validate({"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {
        "cached_tokens": 8, "cache_creation_tokens": 9}, "completion_tokens_details": {"reasoning_tokens": 7}})
    assert token_details(over) == TokenDetails(cached=8, cache_write=2, reasoning=3)


def test_the_usage_event_carries_the_details_and_prices_them() -> None:
    route = Route(model="gw", targets=[Target(provider="a", model="up-a")], input_per_million=Decimal(3),
                  output_per_million=Decimal(15), cached_input_per_million=Decimal("0.3"),
                  cache_write_per_million=Decimal("3.75"))
    call = envelope().model_copy(update={"route": route})
    usage = Usage.model_validate({"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {
        "cached_tokens": 600, "cache_creation_tokens": 300}, "completion_tokens_details": {"reasoning_tokens": 40}})
    event = usage_event(call, source="router", provider="a", deployment_model="up-a", usage=usage,
                        usage_source="upstream", status="ok", latency_ms=1.0, attempts=1)
    data = event.data
    assert (data.cached_tokens, data.cache_write_tokens, data.reasoning_tokens) == (600, 300, 40)
    assert data.cost == Decimal("0.003105")  # 100 × 3 + 600 × 0.3 + 300 × 3.75 + 100 × 15, per million
    parsed = type(event).model_validate_json(event.model_dump_json())
    assert parsed.data == data
