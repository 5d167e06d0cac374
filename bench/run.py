"""Direct-to-upstream against through-JetGate, side by side in one run.

    python -m bench.run [--rate 100] [--seconds 20] [--conns 32] [--tp-seconds 10] [--stream] [--limits]

Starts bench/upstream.py and `jetgate up` (embedded NATS and Postgres, chDB, a temporary home
and config whose only model, gpt-4o-mini, routes to that upstream), then measures each target
at a fixed rate (open loop: p50/p90/p99) and at maximum throughput (`--conns` connections).
With `--limits` the gateway is called with a key whose org, team, user and key each set
rpm, tpm and a budget (high enough that nothing is refused): what admission costs.
Prints a markdown table (added = gateway - direct) and writes JSON to bench/results/.
Everything runs on 127.0.0.1; everything started is stopped by PID, also on errors and Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from bench import footprint, procs
from bench.client import Connection, Target
from bench.loadgen import CHAT_PATH, Summary, chat_body, closed_loop, open_loop
from bench.loop import run_loop
from jetgate.embedded.ports import free_port
from jetgate.supervisor import Child

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
MODEL = "gpt-4o-mini"
CONFIG = """\
providers:
  - name: bench-upstream
    type: openai
    base_url: http://127.0.0.1:{port}/v1
    api_key: env:BENCH_UPSTREAM_KEY
models:
  - name: {model}
    deployments:
      - provider: bench-upstream
        model: {model}
    pricing:
      input_per_million: "0.15"
      output_per_million: "0.60"
guardrails:
  enabled: {guardrails}
  pii: {{email: redact, card: redact}}
"""


def _jetgate() -> str:
    for candidate in (Path(sys.executable).parent / "jetgate", REPO / ".venv" / "bin" / "jetgate"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("jetgate is not installed: run `make install` first")


def start_upstream(workdir: Path, port: int) -> Child:
    return procs.start("upstream", [sys.executable, "-m", "bench.upstream", "--port", str(port)], workdir / "upstream.log",
                       env=dict(os.environ), cwd=REPO, port=port, ready_timeout_s=15, http=False)


def start_gateway(workdir: Path, upstream_port: int, port: int, master_key: str, guardrails: bool) -> Child:
    config = workdir / "jetgate.yaml"
    config.write_text(CONFIG.format(port=upstream_port, model=MODEL, guardrails="true" if guardrails else "false"))
    env = {**os.environ, "JETGATE_MASTER_KEY": master_key, "JETGATE_INGRESS__HOST": "127.0.0.1",
           "BENCH_UPSTREAM_KEY": "sk-bench-" + secrets.token_hex(8)}
    argv = [_jetgate(), "up", "--config", str(config), "--home", str(workdir / "home"), "--port", str(port)]
    return procs.start("gateway", argv, workdir / "gateway.log", env=env, cwd=workdir, port=port, ready_timeout_s=180,
                       http=True)


@contextlib.contextmanager
def gateway_on_upstream(name: str, master_key: str) -> Iterator[tuple[Child, int]]:
    """bench/upstream.py and `jetgate up` (guardrails on) in a scratch directory: the
    gateway's child and port; both are stopped by PID after, also on errors and Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix=f"jetgate-{name}-"))
    children: list[Child] = []
    try:
        upstream_port, gateway_port = free_port(), free_port()
        children.append(start_upstream(workdir, upstream_port))
        children.append(start_gateway(workdir, upstream_port, gateway_port, master_key, guardrails=True))
        yield children[-1], gateway_port
    finally:
        for child in reversed(children):
            procs.stop(child)
        shutil.rmtree(workdir, ignore_errors=True)


async def smoke(name: str, target: Target, stream: bool) -> None:
    """One request, so a misconfigured target fails loudly before any load."""
    conn = await Connection.open(target.port)
    try:
        reply = await conn.send(target.request_bytes())
    finally:
        conn.close()
    if reply.status != 200 or (stream and b"[DONE]" not in reply.tail):
        raise SystemExit(f"{name}: smoke request failed with HTTP {reply.status}: {reply.tail!r}")


async def measure(targets: dict[str, Target], args: argparse.Namespace,
                  pids: dict[str, int]) -> dict[str, dict[str, Summary]]:
    results: dict[str, dict[str, Summary]] = {name: {} for name in targets}
    for name, target in targets.items():
        await smoke(name, target, args.stream)
    for name, target in targets.items():
        print(f"  {name}: fixed rate {args.rate:g} req/s for {args.seconds:g}s ...", flush=True)
        before = footprint.sample(pids[name])
        results[name]["open"] = await open_loop(target, rate=args.rate, seconds=args.seconds, warmup_s=args.warmup,
                                                timeout_s=args.timeout, stream=args.stream)
        after = footprint.sample(pids[name])
        sent = round(args.rate * (args.seconds + args.warmup))
        cpu = footprint.per_request(before, after, sent)
        print(f"    CPU ms per request: {cpu} (sum {sum(cpu.values()):.3f}); RSS MB: "
              f"{ {part: round(p.rss_mb) for part, p in after.items()} }", flush=True)
    for name, target in targets.items():
        print(f"  {name}: {args.conns} connections for {args.tp_seconds:g}s ...", flush=True)
        await closed_loop(target, conns=args.conns, seconds=args.warmup, timeout_s=args.timeout, stream=args.stream)
        before = footprint.sample(pids[name])
        results[name]["closed"] = closed = await closed_loop(target, conns=args.conns, seconds=args.tp_seconds,
                                                             timeout_s=args.timeout, stream=args.stream)
        # at full load the processes' idle work (timers, polls) is spread over many requests
        cpu = footprint.per_request(before, footprint.sample(pids[name]), max(1, closed.sent))
        print(f"    CPU ms per request at full load: {cpu} (sum {sum(cpu.values()):.3f})", flush=True)
    return results


async def measure_until_signalled(targets: dict[str, Target], args: argparse.Namespace, pids: dict[str, int]
                                  ) -> dict[str, dict[str, Summary]]:
    """`measure`, cancelled cleanly by SIGTERM (the loop's own handler turns SIGINT into KeyboardInterrupt)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await measure(targets, args, pids)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _interrupt)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _errors(summary: Summary) -> str:
    return f"{summary.ok:,}/{summary.sent:,}" + (f" {summary.errors}" if summary.errors else "")


def table(results: dict[str, dict[str, Summary]], args: argparse.Namespace) -> tuple[str, dict[str, float | None]]:
    """The markdown table, and the added latency (gateway - direct) per row."""
    direct, gateway = results["direct"], results.get("gateway")
    rate, conns = f"{args.rate:g} req/s", f"{args.conns} conns"
    rows: list[tuple[str, str, str]] = [
        (f"{rate} p50 ms", "open", "p50_ms"), (f"{rate} p90 ms", "open", "p90_ms"),
        (f"{rate} p99 ms", "open", "p99_ms"), (f"{rate} max ms", "open", "max_ms"),
        (f"{rate} first byte p50 ms", "open", "first_byte_p50_ms"),
        (f"{rate} first byte p99 ms", "open", "first_byte_p99_ms"),
        (f"{conns} req/s", "closed", "ok_rps"), (f"{conns} p50 ms", "closed", "p50_ms"),
        (f"{conns} p99 ms", "closed", "p99_ms"),
    ]
    lines = ["| measure | direct | gateway | added |", "|---|---:|---:|---:|"]
    added: dict[str, float | None] = {}
    for label, mode, key in rows:
        d = getattr(direct[mode], key)
        g = getattr(gateway[mode], key) if gateway else None
        diff = round(g - d, 2) if d is not None and g is not None else None
        added[label] = diff
        shown = "n/a" if diff is None else (f"{g / d:.1%} of direct" if key == "ok_rps" and d else f"{diff:+,.2f}")
        lines.append(f"| {label} | {_cell(d)} | {_cell(g)} | {shown} |")
    for mode, label in (("open", rate), ("closed", conns)):
        g_errors = _errors(gateway[mode]) if gateway else "n/a"
        lines.append(f"| {label} ok/sent | {_errors(direct[mode])} | {g_errors} | |")
    return "\n".join(lines), added


def _git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def write_json(results: dict[str, dict[str, Summary]], added: dict[str, float | None],
               args: argparse.Namespace) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{stamp}{'-stream' if args.stream else ''}.json"
    doc = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": _git_revision(), "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": {name: {mode: asdict(s) for mode, s in modes.items()} for name, modes in results.items()},
        "added": added,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


LIMITS = {"rpm_limit": 10_000_000, "tpm_limit": 1_000_000_000, "max_budget": "1000000", "budget_duration": "1mo"}


def _admin_post(port: int, master_key: str, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"authorization": f"Bearer {master_key}",
                                              "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def limited_key(port: int, master_key: str) -> str:
    """A key under an org, team and user of its own, every level with LIMITS."""
    _admin_post(port, master_key, "/admin/orgs", {"id": "bench", "name": "bench", **LIMITS})
    _admin_post(port, master_key, "/admin/teams", {"id": "bench-team", "org_id": "bench", "name": "t", **LIMITS})
    _admin_post(port, master_key, "/admin/users", {"id": "bench-user", "org_id": "bench", "team_id": "bench-team",
                                                   "name": "u", **LIMITS})
    made = _admin_post(port, master_key, "/admin/keys", {"name": "bench", "org_id": "bench", "user_id": "bench-user",
                                                         **LIMITS})
    return str(made["key"])


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="fixed rate, req/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured fixed-rate duration")
    parser.add_argument("--conns", type=int, default=32, help="connections for max throughput")
    parser.add_argument("--tp-seconds", type=float, default=10.0, help="measured max-throughput duration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured lead-in before each measurement")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--stream", action="store_true", help='"stream": true with include_usage')
    parser.add_argument("--direct-only", action="store_true", help="skip the gateway")
    parser.add_argument("--no-guardrails", action="store_true", help="guardrails off in the gateway's config "
                        "(its stage left out of the pipeline): what that hop costs")
    parser.add_argument("--limits", action="store_true", help="call the gateway with a key whose every level "
                        "(org, team, user, key) sets rpm, tpm and a budget")
    args = parser.parse_args()
    if not (0 < args.rate <= 20_000 and 0 < args.seconds <= 600 and 0 < args.tp_seconds <= 600
            and 0 < args.conns <= 1024 and 0 <= args.warmup <= 60):
        parser.error("out of range: rate (0, 20000], seconds/tp-seconds (0, 600], conns (0, 1024], warmup [0, 60]")
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="jetgate-bench-"))
    children: list[Child] = []
    finished = interrupted = False
    try:
        upstream_port = free_port()
        children.append(start_upstream(workdir, upstream_port))
        pids = {"direct": children[-1].pid}
        body = chat_body(MODEL, args.stream)
        targets = {"direct": Target(upstream_port, CHAT_PATH, body)}
        if not args.direct_only:
            master_key = "jg-bench-" + secrets.token_urlsafe(24)
            print("starting the gateway ...", flush=True)
            gateway_port = free_port()
            children.append(start_gateway(workdir, upstream_port, gateway_port, master_key, not args.no_guardrails))
            pids["gateway"] = children[-1].pid
            key = limited_key(gateway_port, master_key) if args.limits else master_key
            targets["gateway"] = Target(gateway_port, CHAT_PATH, body, key)
        print(f"measuring {', '.join(targets)}{' (streaming)' if args.stream else ''}:", flush=True)
        results = run_loop(measure_until_signalled(targets, args, pids))
        markdown, added = table(results, args)
        print("\n" + markdown + "\n")
        print(f"written: {write_json(results, added, args).relative_to(REPO)}")
        finished = True
    except procs.ChildFailed as exc:
        raise SystemExit(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; stopping what was started", file=sys.stderr)
        interrupted = True
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            procs.stop(child)
        if finished or interrupted:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
