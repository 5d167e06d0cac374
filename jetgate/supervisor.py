"""The one supervisor: child processes started, restarted with backoff when they die, and
stopped in order. Used by `jetgate up`, the end-to-end tests and the benchmark.

A child is any command (a service, or an embedded server: nats-server and Postgres come
back on the same port and data directory, see jetgate/embedded/children.py);
`Supervisor.check()` restarts
the dead ones, waiting 0.5 s after the first crash and doubling up to 30 s while crashes
repeat (a child that stayed up a minute starts over at 0.5 s), and logs why each one died.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jetgate.embedded.lifetime import die_with_parent

log = logging.getLogger("jetgate.supervisor")

SERVICES = ("accounting", "router", "guardrails", "ingress")  # start order: who answers first
STOP_ORDER = ("ingress", "guardrails", "router", "accounting")  # no new traffic first; accounting flushes last
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0


def service_argv(service: str) -> list[str]:
    return [sys.executable, "-m", "services", service]


def child_env(settings_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The parent's environment without its own JETGATE_* settings, then the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETGATE_")}
    return {**env, **settings_env, **extra}


def why(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log_path: Path | None = None
    cwd: Path | None = None
    user: str | None = None  # run as this user (Postgres refuses root)
    stop_signal: int = signal.SIGTERM  # what asks it to stop cleanly
    process: subprocess.Popen[bytes] | None = None
    crashes: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    service: str | None = None  # the gateway service it runs (a replica too): where it stops in `stop_all`

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        try:
            self.process = subprocess.Popen(list(self.argv), env=self.env, cwd=self.cwd, stdout=out,
                                            stderr=subprocess.STDOUT if out else None, stdin=subprocess.DEVNULL,
                                            start_new_session=True, preexec_fn=die_with_parent, user=self.user)
        finally:
            if out:
                out.close()
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("started %s (pid %d)", self.name, self.process.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap (tests: a crash)."""
        if self.process is not None:
            self.signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float) -> None:
        """Its stop signal (SIGTERM), wait, SIGKILL if it does not go in time."""
        if self.process is None:
            return
        if self.alive():
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %.0fs; killing it", self.name, timeout)
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class Supervisor:
    children: dict[str, Child] = field(default_factory=dict)

    def add(self, child: Child, *, start: bool = True) -> Child:
        if child.name in self.children:
            raise ValueError(f"a child named {child.name!r} exists already")
        self.children[child.name] = child
        if start:
            child.start()
        return child

    def check(self) -> None:
        """Restart children that died, with backoff; call it every fraction of a second."""
        now = time.monotonic()
        for child in self.children.values():
            if child.process is None or child.alive():
                continue
            if child.restart_at is None:
                if now - child.started_at >= STABLE_AFTER_S:
                    child.crashes = 0
                delay = min(FIRST_BACKOFF_S * 2 ** child.crashes, MAX_BACKOFF_S)
                child.crashes += 1
                child.restart_at = now + delay
                log.warning("%s %s; restarting in %.1fs", child.name, why(child.process.returncode), delay)
            elif now >= child.restart_at:
                child.start()

    def stop_all(self, order: Sequence[str] = STOP_ORDER, timeout: float = 45.0) -> None:
        """Stop the children running the services in `order` (replicas with their service),
        then any other child (the servers: a replica stopped after them would wait on a dead
        bus), each given `timeout`."""
        def rank(child: Child) -> int:
            service = child.service or child.name
            return order.index(service) if service in order else len(order)

        for child in sorted(self.children.values(), key=rank):  # sorted() is stable: same rank, added first
            child.stop(timeout)
