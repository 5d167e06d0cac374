"""Processes the bench starts, with the launcher's supervisor and readiness poller: output in
a log file, stopped by PID (SIGTERM, wait, then SIGKILL), and any process they left behind
found by walking /proc from that PID, never by name."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from bench.loop import run_loop
from jetgate.embedded.ports import wait_for_port
from jetgate.readiness import wait_ready
from jetgate.supervisor import Child


class ChildFailed(RuntimeError):
    pass


def start(name: str, argv: list[str], log_path: Path, *, env: dict[str, str], cwd: Path, port: int,
          ready_timeout_s: float, http: bool) -> Child:
    """Start `argv` with the launcher's own supervisor `Child`, then wait with the launcher's
    readiness poller: `/ready` for a gateway (`http`), the open port for anything else."""
    child = Child(name, argv, env, log_path, cwd)
    child.start()
    try:
        if http:
            run_loop(wait_ready(http_url=f"http://127.0.0.1:{port}", timeout=ready_timeout_s))
        else:
            wait_for_port(port, timeout=ready_timeout_s)
    except TimeoutError:
        stop(child)
        raise ChildFailed(f"{name} not ready after {ready_timeout_s:.0f}s:\n{log_tail(log_path)}") from None
    return child


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(child: Child, grace_s: float = 120.0) -> None:
    """SIGTERM the child, wait up to `grace_s`, then SIGKILL; then the same for descendants it left."""
    if child.process is None:
        return
    left = descendants(child.pid)
    child.stop(grace_s)
    survivors = [(pid, start) for pid, start in left if _start_time(pid) == start]
    for pid, _ in survivors:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_start_time(pid) == start for pid, start in survivors) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, start in survivors:
        if _start_time(pid) == start:
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()  # fields after the command name, from field 3 (state)


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22: start time, tells a reused PID apart


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below `root`, from /proc (Linux only; else empty)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else []:
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[tuple[int, str]] = []
    queue = list(parents.get(root, []))
    while queue:
        pid = queue.pop()
        start = _start_time(pid)
        if start is not None:
            found.append((pid, start))
            queue.extend(parents.get(pid, []))
    return found
