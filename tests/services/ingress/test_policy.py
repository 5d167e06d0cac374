"""Policy decided once in the ingress: model known and allowed, the route a call takes."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.ingress.policy import pipelines_of, resolve_model, route_of, visible_models
from shared.config import GatewayConfig
from shared.errors import InvalidRequest, NotFound, PermissionDenied
from shared.events import Principal
from shared.pipeline import Endpoint, Stage


def config(guardrails: bool = True) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "providers": [{"name": "a", "type": "openai", "base_url": "http://a"}, {"name": "b", "type": "mock"}],
        "models": [
            {"name": "chat", "deployments": [{"provider": "a", "model": "up-1"}, {"provider": "b", "model": "up-2"}],
             "pricing": {"input_per_million": "0.15", "output_per_million": "0.6"}},
            {"name": "embed", "mode": "embedding", "deployments": [{"provider": "b", "model": "e"}]},
        ],
        "guardrails": {"enabled": guardrails},
    })


ANYONE = Principal(key_id="k")
ONLY_EMBED = Principal(key_id="k2", models=["embed"])


def test_a_known_allowed_model_resolves() -> None:
    assert resolve_model(config(), ANYONE, "chat", Endpoint.CHAT).name == "chat"


def test_unknown_model_is_404_and_a_forbidden_one_403() -> None:
    with pytest.raises(NotFound):
        resolve_model(config(), ANYONE, "nope", Endpoint.CHAT)
    with pytest.raises(PermissionDenied) as caught:
        resolve_model(config(), ONLY_EMBED, "chat", Endpoint.CHAT)
    assert caught.value.status == 403 and caught.value.param == "model"


def test_model_on_the_wrong_endpoint_is_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_model(config(), ANYONE, "embed", Endpoint.CHAT)
    assert caught.value.code == "model_not_supported"


def test_route_keeps_deployments_in_failover_order_and_prices() -> None:
    route = route_of(config().models[0])
    assert [(t.provider, t.model) for t in route.targets] == [("a", "up-1"), ("b", "up-2")]
    assert route.cost(1_000_000, 1_000_000) == Decimal("0.75")
    assert route.timeout_s is None and route.stream_idle_timeout_s is None  # the ingress's defaults


def test_a_models_own_timeouts_travel_in_its_route() -> None:
    slow = config().models[0].model_copy(update={"timeout_s": 900.0, "stream_idle_timeout_s": 300.0})
    route = route_of(slow)
    assert (route.timeout_s, route.stream_idle_timeout_s) == (900.0, 300.0)


def test_pipelines_follow_the_config() -> None:
    assert pipelines_of(config())[Endpoint.CHAT] == (Stage.GUARDRAILS, Stage.ROUTER)
    assert pipelines_of(config(guardrails=False))[Endpoint.CHAT] == (Stage.ROUTER,)
    assert pipelines_of(config())[Endpoint.EMBEDDINGS] == (Stage.GUARDRAILS, Stage.ROUTER)
    assert pipelines_of(config(guardrails=False))[Endpoint.EMBEDDINGS] == (Stage.ROUTER,)


def test_visible_models_follow_the_allowlist() -> None:
    assert [m.name for m in visible_models(config(), ONLY_EMBED)] == ["embed"]
    assert [m.name for m in visible_models(config(), ANYONE)] == ["chat", "embed"]
