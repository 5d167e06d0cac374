"""`jetgate up` as a new user runs it: embedded servers, the shipped mock config, a key
from `jetgate keys create` against the running home, a clean stop on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import openai

from jetgate.embedded.ports import free_port, wait_for_port
from tests.process_tree import tree

REPO = Path(__file__).resolve().parents[2]


def _read_until_ready(proc: subprocess.Popen[str], timeout: float) -> list[str]:
    """Lines of stdout up to `ready …` and the metrics locations after it (read on a thread:
    readline blocks)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("metrics accounting "):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    if not any(line.startswith("ready ") for line in lines):
        raise AssertionError(f"jetgate up did not print ready: {lines}")
    return lines


def _lines_until(stream: IO[str], marker: str) -> list[str]:
    lines = []
    for line in iter(stream.readline, ""):
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in {lines}")


def _child_running(parent: int, program: str, *, missing_ok: bool = False) -> int | None:
    """The pid of `parent`'s child running `program`."""
    for pid in tree(parent)[1:]:
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if Path(argv0.decode()).name == program:
            return pid
    if missing_ok:
        return None
    raise AssertionError(f"no {program} under {parent}")


def _metrics(lines: list[str]) -> dict[str, str]:
    return {line.split()[1]: line.split()[2] for line in lines if line.startswith("metrics ")}


def test_up_serves_the_shipped_config_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETGATE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jetgate.cli", "up", "--config", str(REPO / "jetgate.yaml"), "--home", str(home),
         "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = _read_until_ready(proc, timeout=120)
        assert f"ready http://127.0.0.1:{port}" in lines
        metrics = _metrics(lines)
        assert set(metrics) == {"ingress", "guardrails", "router", "accounting"}
        assert metrics["ingress"] == f"http://127.0.0.1:{port}/metrics"
        admin_key = next(line.split()[-1] for line in lines if line.startswith("admin key"))

        created = subprocess.run([sys.executable, "-m", "jetgate.cli", "keys", "create", "--name", "first",
                                  "--home", str(home)], env=env, capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("jg-") and key != admin_key

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        assert client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                     stream_options={"include_usage": True},
                                                     messages=[{"role": "user", "content": "hi"}]))
        assert chunks[-1].usage is not None
        assert client.embeddings.create(model="text-embedding-3-small", input="x").data
        # every service's metrics are where `up` said, and count what just happened
        router_metrics = httpx.get(metrics["router"], timeout=10).text
        assert 'jetgate_stage_calls_total{endpoint="chat",outcome="ok",stage="router"} 2.0' in router_metrics
        assert 'jetgate_upstream_requests_total{outcome="ok",provider="mock"} 3.0' in router_metrics
        assert 'stage="guardrails"} 2.0' in httpx.get(metrics["guardrails"], timeout=10).text
        assert "jetgate_consumer_batch_events" in httpx.get(metrics["accounting"], timeout=10).text
        assert 'jetgate_http_requests_total{route="/v1/chat/completions",status="200"}' in \
            httpx.get(metrics["ingress"], timeout=10).text

        # one more router, joining through the home: its metrics port is taken, it picks another
        extra_router = subprocess.Popen([sys.executable, "-m", "jetgate.cli", "run", "router", "--home", str(home),
                                         "--config", str(REPO / "jetgate.yaml")], env=env, stderr=subprocess.PIPE,
                                        text=True)
        try:
            assert extra_router.stderr is not None
            started = _lines_until(extra_router.stderr, "router ready")
            metrics_line = next(line for line in started if "metrics on" in line)
            assert metrics["router"] not in metrics_line  # the default port was taken: another one
            for _ in range(6):  # the queue group spreads these over both routers
                assert client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices
        finally:
            extra_router.send_signal(signal.SIGTERM)
            assert extra_router.wait(timeout=30) == 0

        # one more ingress, joining the running gateway through its home (scaling one service)
        port2 = free_port()
        extra = subprocess.Popen([sys.executable, "-m", "jetgate.cli", "run", "ingress", "--home", str(home),
                                  "--config", str(REPO / "jetgate.yaml"), "--port", str(port2)], env=env)
        try:
            wait_for_port(port2, timeout=60)
            second = openai.OpenAI(base_url=f"http://127.0.0.1:{port2}/v1", api_key=key, max_retries=0)
            assert second.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices
        finally:
            extra.send_signal(signal.SIGTERM)
            assert extra.wait(timeout=30) == 0

        # nats-server killed with SIGKILL: `up` restarts it on its port and store, the services reconnect
        nats_pid = _child_running(proc.pid, "nats-server")
        os.kill(nats_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _child_running(proc.pid, "nats-server", missing_ok=True) in (None, nats_pid):
            assert time.monotonic() < deadline, "nats-server was not restarted"
            time.sleep(0.05)
        while httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the ingress did not reconnect"
            time.sleep(0.05)
        assert client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        assert not (home / "state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
