"""Processes the bench starts: started with their output in a log file, ready when a line
`ready http://127.0.0.1:PORT` appears, stopped by PID (SIGTERM, wait, then SIGKILL), and
any process they left behind found by walking /proc from that PID, never by name."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

READY = re.compile(r"^ready http://127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)


class ChildFailed(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, argv: list[str], log_path: Path, *, env: dict[str, str], cwd: Path,
          ready_timeout_s: float) -> Child:
    """Start `argv` in its own session and wait for its ready line (which names its port)."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
    child = Child(name, process, log_path)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        match = READY.search(log_path.read_text(errors="replace"))
        if match:
            child.port = int(match.group(1))
            return child
        if process.poll() is not None:
            raise ChildFailed(f"{name} exited with {process.returncode}:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise ChildFailed(f"{name} not ready after {ready_timeout_s:.0f}s:\n{child.log_tail()}")
        time.sleep(0.05)


def stop(child: Child, grace_s: float = 120.0) -> None:
    """SIGTERM the child, wait up to `grace_s`, then SIGKILL; then the same for descendants it left."""
    left = _descendants(child.pid)
    _terminate(child.process, grace_s)
    survivors = [(pid, start) for pid, start in left if _start_time(pid) == start]
    for pid, _ in survivors:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_start_time(pid) == start for pid, start in survivors) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, start in survivors:
        if _start_time(pid) == start:
            _signal(pid, signal.SIGKILL)


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


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


def _descendants(root: int) -> list[tuple[int, str]]:
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
