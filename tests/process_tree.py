"""Freeze and thaw a server with everything it forked (SIGSTOP/SIGCONT), as a stalled
machine would look. Postgres backends call setsid(), so signalling the process group
would miss them: the tree is read from /proc."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path


def tree(pid: int) -> list[int]:
    """`pid` and its descendants, parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        todo += children.get(current, [])
    return found


def signal_tree(pid: int, sig: int) -> None:
    for member in tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, sig)


def _stopped(pid: int) -> bool:
    """Every thread of `pid` stopped (or gone)."""
    try:
        states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in Path(f"/proc/{pid}/task").iterdir()]
    except (OSError, IndexError):
        return True
    return all(state in "TtZX" for state in states)  # stopped, or exited


def wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """Until SIGSTOP has taken hold of the whole tree: `kill` returns before it has, and a
    thread running on the other core may still answer something meanwhile."""
    deadline = time.monotonic() + timeout
    while not all(_stopped(member) for member in tree(pid)):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not stop in {timeout}s")
        time.sleep(0.001)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    signal_tree(pid, signal.SIGSTOP)
    try:
        wait_stopped(pid)
        yield
    finally:
        signal_tree(pid, signal.SIGCONT)
