"""Policy decided in the ingress before any worker is called: model known, key allowed.

Rate limits and budgets join here in a later issue (shared counters over NATS).
"""
from __future__ import annotations

from typing import Literal

from shared.config import GatewayConfig, ModelConfig
from shared.errors import InvalidRequest, NotFound, PermissionDenied
from shared.events import Principal


def resolve_model(config: GatewayConfig, principal: Principal, name: str,
                  mode: Literal["chat", "embedding"]) -> ModelConfig:
    model = config.model(name)
    if model is None or not allowed(principal, name):
        # a key limited to other models learns the model exists (403), as with OpenAI project keys
        if model is not None:
            raise PermissionDenied(f"This API key is not allowed to use the model `{name}`.", param="model")
        raise NotFound(f"The model `{name}` does not exist or you do not have access to it.", param="model")
    if model.mode != mode:
        raise InvalidRequest(f"The model `{name}` is a {model.mode} model and cannot be used on this endpoint.",
                             param="model", code="model_not_supported")
    return model


def allowed(principal: Principal, model: str) -> bool:
    return principal.models is None or model in principal.models


def visible_models(config: GatewayConfig, principal: Principal) -> list[ModelConfig]:
    return [m for m in config.models if allowed(principal, m.name)]
