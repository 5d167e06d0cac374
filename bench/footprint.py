"""CPU time and memory of a process tree, per part (the four services, nats-server,
Postgres, the launcher), read from /proc: what one request costs each part of the gateway."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.procs import descendants

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6


@dataclass
class Part:
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    processes: int = 0


def _part(cmdline: list[str]) -> str:
    for at, arg in enumerate(cmdline):
        if arg == "services" and at + 1 < len(cmdline):  # python -m services SERVICE
            return cmdline[at + 1]
        if arg.startswith("services."):  # python -m services.SERVICE
            return arg.removeprefix("services.")
    name = Path(cmdline[0]).name if cmdline else "?"
    if name.startswith("postgres"):  # postgres renames its processes ("postgres: walwriter")
        return "postgres"
    if name == "nats-server":
        return name
    return "launcher" if any("jetgate" in a for a in cmdline[:3]) else name


def part_of(pid: int) -> str:
    """Which part of the gateway a process is (raises OSError once it is gone)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return _part([c for c in cmdline if c])


def sample(root: int) -> dict[str, Part]:
    parts: dict[str, Part] = {}
    for pid in [root, *(pid for pid, _ in descendants(root))]:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        part = parts.setdefault(_part([c for c in cmdline if c]), Part())
        part.cpu_s += (int(fields[11]) + int(fields[12])) * TICK_S  # utime + stime
        part.rss_mb += int(fields[21]) * PAGE_MB
        part.processes += 1
    return parts


def per_request(before: dict[str, Part], after: dict[str, Part], requests: int) -> dict[str, float]:
    """CPU milliseconds per request of each part between two samples."""
    return {name: round((part.cpu_s - before.get(name, Part()).cpu_s) * 1000 / max(requests, 1), 3)
            for name, part in sorted(after.items())}


def cpu_seconds(root: int) -> float:
    """CPU time of a process tree so far, every part together."""
    return sum(part.cpu_s for part in sample(root).values())
