"""What the router does when a deployment's health changes (services/router/health.py): set
`jetgate_deployment_healthy{provider,model}` and publish `provider.health` (fire and forget:
the publisher runs it in a task of its own, bounded by its ack timeout and attempts, and
counts what it loses in `jetgate_events_published_total{outcome="lost"}`)."""
from __future__ import annotations

from collections.abc import Callable

from services.router.health import Transition
from shared.config import GatewayConfig
from shared.events import Event, ProviderHealthData, ProviderHealthEvent
from shared.instance import instance_id
from shared.metrics import DEPLOYMENT_HEALTHY
from shared.redact import redact_secrets
from shared.subjects import SYSTEM_ORG


def health_event(transition: Transition, cooldown_s: float) -> ProviderHealthEvent:
    deployment, error = transition.deployment, transition.error
    unhealthy = transition.state == "unhealthy"
    return ProviderHealthEvent(source="router", org_id=SYSTEM_ORG, data=ProviderHealthData(
        provider=deployment.provider, model=deployment.model, deployment=deployment.name, state=transition.state,
        consecutive_failures=transition.consecutive_failures,
        error_type=redact_secrets(error.type) if error is not None else None,
        error_code=redact_secrets(error.code) if error is not None and error.code else None,
        status=error.status if error is not None else None,
        cooldown_s=cooldown_s if unhealthy else None, route_model=transition.route_model, instance=instance_id()))


class HealthReport:
    def __init__(self, emit: Callable[[Event], None], cooldown_s: float) -> None:
        self._emit = emit
        self._cooldown_s = cooldown_s

    def seed(self, config: GatewayConfig) -> None:
        """Every deployment of the config starts healthy on the gauge."""
        for model in config.models:
            for deployment in model.deployments:
                DEPLOYMENT_HEALTHY.labels(deployment.provider, deployment.model).set(1)

    def __call__(self, transition: Transition) -> None:
        deployment = transition.deployment
        DEPLOYMENT_HEALTHY.labels(deployment.provider, deployment.model).set(
            1 if transition.state == "healthy" else 0)
        self._emit(health_event(transition, self._cooldown_s))
