"""`jetgate up` as a new user runs it: embedded servers, the shipped mock config, a key
from `jetgate keys create` against the running home, a clean stop on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import openai

from jetgate.embedded.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def _read_until_ready(proc: subprocess.Popen[str], timeout: float) -> list[str]:
    """Lines of stdout up to `ready …` (read on a thread: readline blocks)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("ready "):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    if not lines or not lines[-1].startswith("ready "):
        raise AssertionError(f"jetgate up did not print ready: {lines}")
    return lines


def test_up_serves_the_shipped_config_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETGATE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jetgate.cli", "up", "--config", str(REPO / "jetgate.yaml"), "--home", str(home),
         "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = _read_until_ready(proc, timeout=120)
        assert lines[-1] == f"ready http://127.0.0.1:{port}"
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

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        assert not (home / "state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
