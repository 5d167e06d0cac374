"""Policy decided in the ingress before any worker is called: model known, key allowed,
and the route the call takes (the model's deployments and prices) — decided once, here.

Rate limits and budgets join here in a later issue (shared counters over NATS).
"""
from __future__ import annotations

from shared.config import GatewayConfig, ModelConfig
from shared.errors import InvalidRequest, NotFound, PermissionDenied
from shared.events import Principal
from shared.pipeline import Endpoint, Stage, stages_for
from shared.protocol import Route, Target

MODE_OF = {Endpoint.CHAT: "chat", Endpoint.RESPONSES: "chat", Endpoint.EMBEDDINGS: "embedding",
           Endpoint.COMPLETIONS: "completion", Endpoint.MODERATIONS: "moderation", Endpoint.IMAGES: "image",
           Endpoint.SPEECH: "speech", Endpoint.TRANSCRIPTIONS: "transcription"}


def resolve_model(config: GatewayConfig, principal: Principal, name: str, endpoint: Endpoint) -> ModelConfig:
    model = config.model(name)
    if model is None or not allowed(principal, name):
        # a key limited to other models learns the model exists (403), as with OpenAI project keys
        if model is not None:
            raise PermissionDenied(f"This API key is not allowed to use the model `{name}`.", param="model")
        raise NotFound(f"The model `{name}` does not exist or you do not have access to it.", param="model")
    if model.mode != MODE_OF[endpoint]:
        raise InvalidRequest(f"The model `{name}` is a {model.mode} model and cannot be used on this endpoint.",
                             param="model", code="model_not_supported")
    return model


def route_of(model: ModelConfig) -> Route:
    return Route(model=model.name, targets=[Target(provider=d.provider, model=d.model) for d in model.deployments],
                 **model.pricing.model_dump(), timeout_s=model.timeout_s, stream_idle_timeout_s=model.stream_idle_timeout_s)


def pipelines_of(config: GatewayConfig) -> dict[Endpoint, tuple[Stage, ...]]:
    """The stages each endpoint's calls pass with this config (guardrails may be switched off)."""
    disabled = frozenset() if config.guardrails.enabled else frozenset({Stage.GUARDRAILS})
    return {endpoint: stages_for(endpoint, disabled) for endpoint in Endpoint}


def allowed(principal: Principal, model: str) -> bool:
    return principal.models is None or model in principal.models


def visible_models(config: GatewayConfig, principal: Principal) -> list[ModelConfig]:
    return [m for m in config.models if allowed(principal, m.name)]
