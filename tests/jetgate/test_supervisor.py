"""The one supervisor, on real child processes: restarts with backoff, stops in order."""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import pytest

from jetgate import supervisor as sup
from jetgate.supervisor import Child, Supervisor, child_env, why


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def wait(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_a_crashing_child_is_restarted_with_growing_backoff(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sup, "FIRST_BACKOFF_S", 0.1)
    runs = tmp_path / "runs"
    code = f"open({str(runs)!r}, 'a').write('x'); raise SystemExit(3)"
    supervisor = Supervisor()
    child = supervisor.add(Child("crasher", python(code), child_env({})))
    starts: list[float] = []
    deadline = time.monotonic() + 10
    while len(starts) < 3 and time.monotonic() < deadline:
        before = child.started_at
        supervisor.check()
        if child.started_at != before:
            starts.append(child.started_at)
        time.sleep(0.01)
    supervisor.stop_all()
    assert len(starts) == 3, starts
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[1] > gaps[0] >= 0.2  # 0.2 s (second crash) then 0.4 s: doubling
    assert child.crashes >= 3
    wait(lambda: runs.exists() and len(runs.read_text()) >= 3)


def test_a_child_that_stayed_up_starts_over_at_the_first_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "STABLE_AFTER_S", 0.2)
    supervisor = Supervisor()
    child = supervisor.add(Child("steady", python("import time; time.sleep(0.4)"), child_env({})))
    child.crashes = 5  # a bad past
    wait(lambda: not child.alive())
    supervisor.check()
    assert child.crashes == 1 and child.restart_at is not None
    assert child.restart_at - time.monotonic() <= sup.FIRST_BACKOFF_S
    supervisor.stop_all()


def test_stop_all_goes_in_order_and_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "order"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    polite = ("import signal, sys, time\n"
              f"def bye(*_):\n    open({str(log)!r}, 'a').write(sys.argv[1] + ' ')\n    sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, bye)\nprint('up', flush=True)\ntime.sleep(60)")
    supervisor = Supervisor()
    # a server added before a replica of the ingress: the replica still stops with its service
    for name, service in (("accounting", "accounting"), ("router", "router"), ("ingress", "ingress"),
                          ("nats", None), ("ingress-2", "ingress")):
        supervisor.add(Child(name, [sys.executable, "-c", polite, name], child_env({}), tmp_path / f"{name}.log",
                             service=service))
    hard = supervisor.add(Child("extra", python(stubborn), child_env({}), tmp_path / "extra.log"))
    for name in ("accounting", "router", "ingress", "nats", "ingress-2", "extra"):
        wait(lambda name=name: "up" in (tmp_path / f"{name}.log").read_text())  # type: ignore[misc]
    began = time.monotonic()
    supervisor.stop_all(timeout=0.5)
    assert log.read_text().split() == ["ingress", "ingress-2", "router", "accounting", "nats"]
    assert hard.process is None and time.monotonic() - began < 5


def test_exit_reasons_are_readable() -> None:
    assert why(3) == "exited with 3" and why(-9) == "killed by SIGKILL" and why(None) == "still running"


def test_children_get_settings_not_the_parents_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JETGATE_INGRESS__PORT", "1")
    monkeypatch.setenv("UNRELATED", "kept")
    env = child_env({"JETGATE_NATS_URL": "nats://x"}, EXTRA="y")
    assert "JETGATE_INGRESS__PORT" not in env and env["UNRELATED"] == "kept"
    assert env["JETGATE_NATS_URL"] == "nats://x" and env["EXTRA"] == "y"
