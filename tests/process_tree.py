"""Freeze and thaw a server with everything it forked (SIGSTOP/SIGCONT), as a stalled
machine would look. Postgres backends call setsid(), so signalling the process group
would miss them: the tree is read from /proc."""
from __future__ import annotations

import contextlib
import os
import signal
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


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    signal_tree(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        signal_tree(pid, signal.SIGCONT)
