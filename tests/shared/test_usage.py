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
from shared.usage import estimated_usage, relayed_text, usage_event


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
