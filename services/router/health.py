"""Deployment health, kept by each router replica on its own (nothing is shared between
replicas: each learns from the calls it makes).

A deployment (provider and upstream model) that fails `unhealthy_after` times in a row with
a retryable error (connect errors, timeouts, 5xx, 429, credentials refused) is unhealthy:
failover skips it for `cooldown_s`, unless every deployment of the route is cooling down
(then all are tried, in order). Once its cooldown is over it is tried again; its first
answer makes it healthy, another failure cools it down again. A non-retryable error (the
request's own fault, a 400) says nothing about the deployment and changes nothing.

Each transition is reported to `on_change` (the router publishes `provider.health` and sets
`jetgate_deployment_healthy`); a failing report is logged, never raised into the call.
Pure: the clock is injected, so tests need no sleeps.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from shared.errors import GatewayError

log = logging.getLogger(__name__)

State = Literal["healthy", "unhealthy"]


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    model: str

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Transition:
    deployment: Deployment
    state: State
    consecutive_failures: int
    error: GatewayError | None = None  # the failure that made it unhealthy
    route_model: str | None = None


@dataclass(slots=True)
class _Record:
    failures: int = 0
    unhealthy: bool = False
    cooling_until: float = 0.0


Report = Callable[[Transition], None]


class DeploymentHealth:
    def __init__(self, unhealthy_after: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Report | None = None) -> None:
        self.unhealthy_after = unhealthy_after  # 0: never unhealthy
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._records: dict[Deployment, _Record] = {}

    def state(self, deployment: Deployment) -> State:
        record = self._records.get(deployment)
        return "unhealthy" if record is not None and record.unhealthy else "healthy"

    def cooling(self, deployment: Deployment) -> bool:
        record = self._records.get(deployment)
        return record is not None and record.unhealthy and self._clock() < record.cooling_until

    def plan(self, deployments: Sequence[Deployment]) -> list[int]:
        """The indexes of the route's deployments to try, in order: those not cooling down, or
        all of them when every one is."""
        ready = [index for index, deployment in enumerate(deployments) if not self.cooling(deployment)]
        return ready or list(range(len(deployments)))

    def failed(self, deployment: Deployment, error: GatewayError, route_model: str | None = None) -> None:
        if not error.retryable or self.unhealthy_after <= 0:
            return
        record = self._records.setdefault(deployment, _Record())
        record.failures += 1
        if record.unhealthy:  # tried after its cooldown (or with every deployment cooling): again
            record.cooling_until = self._clock() + self.cooldown_s
        elif record.failures >= self.unhealthy_after:
            record.unhealthy = True
            record.cooling_until = self._clock() + self.cooldown_s
            self._report(Transition(deployment, "unhealthy", record.failures, error, route_model))

    def succeeded(self, deployment: Deployment, route_model: str | None = None) -> None:
        record = self._records.get(deployment)
        if record is None:
            return
        failures, was_unhealthy = record.failures, record.unhealthy
        del self._records[deployment]  # healthy, no failures: nothing to keep
        if was_unhealthy:
            self._report(Transition(deployment, "healthy", failures, None, route_model))

    def _report(self, transition: Transition) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(transition)
        except Exception:  # a report must never fail the call that saw the transition
            log.exception("deployment health report failed")


@dataclass(frozen=True, slots=True)
class RouteHealth:
    """The health of one call's route: what failover asks and tells (services/router/failover.py)."""

    health: DeploymentHealth
    route_model: str | None = None

    def plan(self, deployments: Sequence[Deployment]) -> list[int]:
        return self.health.plan(deployments)

    def failed(self, deployment: Deployment, error: GatewayError) -> None:
        self.health.failed(deployment, error, self.route_model)

    def succeeded(self, deployment: Deployment) -> None:
        self.health.succeeded(deployment, self.route_model)
