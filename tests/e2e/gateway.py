"""A whole gateway for end-to-end tests: each service a real process, as in production."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jetgate.embedded.lifetime import die_with_parent
from jetgate.embedded.ports import free_port
from jetgate.readiness import wait_ready

SERVICES = ("accounting", "router", "guardrails", "ingress")


@dataclass
class Gateway:
    env: dict[str, str]
    workdir: Path
    port: int
    master_key: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, service: str, **overrides: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{service}-{len(self.extra) + len(self.procs)}.log", "ab")  # noqa: SIM115
        return subprocess.Popen([sys.executable, "-m", f"services.{service}"], env={**self.env, **overrides},
                                stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def start(self, service: str) -> None:
        self.procs[service] = self._spawn(service)

    def start_all(self) -> None:
        for service in SERVICES:
            self.start(service)
        self.wait_ready(self.url)

    def wait_ready(self, url: str) -> None:
        asyncio.run(wait_ready(self.env["JETGATE_NATS_URL"], url, timeout=60))

    def extra_ingress(self) -> str:
        """A second ingress replica on its own port; returns its URL."""
        port = free_port()
        self.extra.append(self._spawn("ingress", JETGATE_PORT=str(port)))
        url = f"http://127.0.0.1:{port}"
        self.wait_ready(url)
        return url

    def kill(self, service: str) -> None:
        proc = self.procs[service]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in [*self.extra, *(self.procs[s] for s in reversed(SERVICES) if s in self.procs)]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.extra, *self.procs.values()]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.master_key}"}, timeout=30)

    def create_key(self, name: str, **fields: Any) -> tuple[str, str]:
        with self.admin() as client:
            response = client.post("/admin/keys", json={"name": name, **fields})
            response.raise_for_status()
            body = response.json()
        return body["key"], body["record"]["id"]

    def usage(self, **params: str) -> list[dict[str, Any]]:
        with self.admin() as client:
            response = client.get("/admin/usage", params=params)
            response.raise_for_status()
            return response.json()["rows"]  # type: ignore[no-any-return]


def gateway_env(*, nats_url: str, database_url: str, clickhouse_url: str, config: Path, port: int,
                master_key: str, upstream_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETGATE_")}
    env.update({
        "JETGATE_NATS_URL": nats_url, "JETGATE_DATABASE_URL": database_url,
        "JETGATE_CLICKHOUSE_URL": clickhouse_url, "JETGATE_CONFIG": str(config),
        "JETGATE_PORT": str(port), "JETGATE_MASTER_KEY": master_key, "JETGATE_LOG_LEVEL": "INFO",
        "JETGATE_STREAM_IDLE_TIMEOUT_S": "10", "FAKE_UPSTREAM_KEY": upstream_key,
        "JETGATE_USAGE_BATCH_WAIT_S": "0.1", "JETGATE_WORKER_TIMEOUT_S": "15",
    })
    return env


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
