"""A whole gateway for end-to-end tests: each service a real process, as in production,
started and stopped by the launcher's own supervisor and readiness poller."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jetgate.embedded.ports import free_port
from jetgate.readiness import wait_ready
from jetgate.supervisor import SERVICES, STOP_ORDER, Child, Supervisor, child_env, service_argv
from tests.process_tree import frozen


@dataclass
class Gateway:
    env: dict[str, str]
    workdir: Path
    port: int
    master_key: str
    supervisor: Supervisor = field(default_factory=Supervisor)
    extra: int = 0
    _ticker: threading.Thread | None = None
    _supervising: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _child(self, name: str, service: str, **overrides: str) -> Child:
        return Child(name, service_argv(service), {**self.env, **overrides}, self.workdir / f"{name}.log",
                     service=service)

    def start(self, service: str) -> None:
        """Start a service (again, after `kill`)."""
        child = self.supervisor.children.get(service)
        if child is None:
            self.supervisor.add(self._child(service, service))
        else:
            child.start()

    def start_all(self) -> None:
        for service in SERVICES:
            self.start(service)
        self.wait_ready(self.url)

    def wait_ready(self, url: str) -> None:
        asyncio.run(wait_ready(http_url=url, nats_url=self.env["JETGATE_NATS_URL"], timeout=60))

    def extra_ingress(self, **settings: str) -> str:
        """A second ingress replica on its own port (and settings, as environment variables);
        returns its URL."""
        port = free_port()
        self.extra += 1
        self.supervisor.add(self._child(f"ingress-{self.extra}", "ingress", **settings,
                                        JETGATE_INGRESS__PORT=str(port)))
        url = f"http://127.0.0.1:{port}"
        self.wait_ready(url)
        return url

    @contextlib.contextmanager
    def replaced(self, service: str, **settings: str) -> Iterator[None]:
        """The service stopped and started again with these settings (environment variables)
        for the block, then as it was."""
        child = self.supervisor.children[service]
        original = child.env
        child.stop(timeout=30)
        child.env = {**original, **settings}
        child.start()
        try:
            yield
        finally:
            child.stop(timeout=30)
            child.env = original
            child.start()

    def kill(self, service: str) -> None:
        self.supervisor.children[service].kill()

    def restart_dead(self) -> None:
        """What `jetgate up` does every fraction of a second: restart what died (with backoff)."""
        self.supervisor.check()

    @contextlib.contextmanager
    def supervising(self) -> Iterator[None]:
        """Run the supervisor's loop, as `jetgate up` does, while the block runs. One thread
        does it for the whole session: a child dies with the thread that started it
        (PR_SET_PDEATHSIG), so that thread must outlive the children it restarts."""
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="gateway-supervisor")
            self._ticker.start()
        self._supervising.set()
        try:
            yield
        finally:
            self._supervising.clear()

    def _tick(self, every_s: float = 0.1) -> None:
        while True:
            self._supervising.wait()
            self.supervisor.check()
            time.sleep(every_s)

    def paused(self, name: str) -> contextlib.AbstractContextManager[None]:
        """SIGSTOP a child and everything it forked (Postgres: the postmaster and its backends)
        for the block, SIGCONT after."""
        return frozen(self.supervisor.children[name].pid)

    def stop(self) -> None:
        self.supervisor.stop_all(STOP_ORDER, timeout=30)

    def client(self, key: str | None = None, *, url: str | None = None, timeout: float = 60.0) -> httpx.Client:
        """A client of this gateway (or the replica at `url`), with `key` as its bearer token.
        A new client opens a new connection, as a new caller would; what it shares with
        every other is the TLS context (see `_tls`)."""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=url or self.url, headers=headers, timeout=timeout, verify=_tls())

    def admin(self) -> httpx.Client:
        return self.client(self.master_key, timeout=30)

    def create_key(self, name: str, **fields: Any) -> tuple[str, str]:
        """A key made by the master key; its org is made first when it does not exist yet."""
        with self.admin() as client:
            org_id = fields.get("org_id")
            if org_id and org_id != "default":
                made = client.post("/admin/orgs", json={"id": org_id, "name": org_id})
                assert made.status_code in (201, 409), made.text
            response = client.post("/admin/keys", json={"name": name, **fields})
            response.raise_for_status()
            body = response.json()
        return body["key"], body["record"]["id"]

    def usage(self, **params: str) -> list[dict[str, Any]]:
        with self.admin() as client:
            response = client.get("/admin/usage", params=params)
            response.raise_for_status()
            return response.json()["rows"]  # type: ignore[no-any-return]


@functools.cache
def _tls() -> ssl.SSLContext:
    """The gateway is plain HTTP, but httpx builds a TLS context for every client it makes
    (~15 ms of CPU, most of it loading the CA bundle): the fault tests make a client per call,
    hundreds of them, so they share this one."""
    return ssl.create_default_context()


def gateway_env(*, nats_url: str, database_url: str, clickhouse_url: str, config: Path, port: int,
                master_key: str, upstream_key: str) -> dict[str, str]:
    """Short waits, so a test never sits out a production timeout; metrics on free ports.
    Deployment health is off (tests call failing deployments again and again and expect them
    tried); test_provider_health.py turns it on in a router of its own."""
    return child_env({
        "JETGATE_NATS_URL": nats_url, "JETGATE_DATABASE_URL": database_url,
        "JETGATE_CLICKHOUSE_URL": clickhouse_url, "JETGATE_CONFIG": str(config),
        "JETGATE_INGRESS__PORT": str(port), "JETGATE_MASTER_KEY": master_key, "JETGATE_LOG_LEVEL": "INFO",
        "JETGATE_INGRESS__STREAM_IDLE_TIMEOUT_S": "10", "JETGATE_INGRESS__WORKER_TIMEOUT_S": "60",
        "JETGATE_ACCOUNTING__BATCH_WAIT_S": "0.1", "JETGATE_ACCOUNTING__ACK_WAIT_S": "3",
        "JETGATE_ACCOUNTING__MAX_NAK_DELAY_S": "2", "JETGATE_ACCOUNTING__IDLE_POLL_S": "0.5",
        "JETGATE_GUARDRAILS__METRICS_PORT": "0", "JETGATE_ROUTER__METRICS_PORT": "0",
        "JETGATE_ACCOUNTING__METRICS_PORT": "0", "JETGATE_ROUTER__DRAIN_TIMEOUT_S": "10",
        "JETGATE_GUARDRAILS__DRAIN_TIMEOUT_S": "10", "JETGATE_ROUTER__UNHEALTHY_AFTER_FAILURES": "0",
    }, FAKE_UPSTREAM_KEY=upstream_key)


def wait_for(predicate: Any, timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy; its value, or AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last: {value!r})")
        time.sleep(every)
