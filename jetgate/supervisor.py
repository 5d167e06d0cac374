"""Child service processes of `jetgate up`: start, restart on crash, stop in order."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from jetgate.embedded.lifetime import die_with_parent

log = logging.getLogger("jetgate.up")

# stop order: first no new traffic, then the workers, accounting last (it flushes batches)
SERVICES = ("accounting", "router", "guardrails", "ingress")
STOP_ORDER = ("ingress", "guardrails", "router", "accounting")


@dataclass
class Child:
    service: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", f"services.{self.service}"], env=self.env,
                                        start_new_session=True, preexec_fn=die_with_parent)  # stopped by us, in order
        log.info("started %s (pid %d)", self.service, self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, env: dict[str, str]) -> None:
        self.children = {name: Child(name, env) for name in SERVICES}

    def start_all(self) -> None:
        for child in self.children.values():
            child.start()

    def check(self) -> None:
        """Restart children that died, at most 5 times a minute each."""
        now = time.monotonic()
        for child in self.children.values():
            if child.alive() or child.process is None:
                continue
            code = child.process.returncode
            child.restarts = [t for t in child.restarts if now - t < 60]
            if len(child.restarts) >= 5:
                continue
            log.warning("%s exited with %s; restarting", child.service, code)
            child.restarts.append(now)
            child.start()

    def stop_all(self, timeout: float = 45.0) -> None:
        for name in STOP_ORDER:
            child = self.children[name]
            if not child.alive():
                continue
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %.0fs; killing it", name, timeout)
                child.process.kill()
                child.process.wait()
            child.process = None


def child_env(**urls: str) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in urls.items():
        env[f"JETGATE_{name.upper()}"] = value
    return env
