"""The `jetgate` command: up, run SERVICE, orgs, teams, users, keys, audit, usage, events."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from jetgate import events_cmd, keys_cmd, tenants_cmd
from jetgate.credentials import bus_as, read_credentials
from jetgate.home import read_state
from jetgate.replay import cli as replay_cli
from shared.service import setup_process
from shared.settings import Settings, load_settings

SERVICES = ("ingress", "guardrails", "router", "accounting")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jetgate", description="JetGate LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole gateway (embedded servers unless URLs are set)")
    up.add_argument("--config", help="YAML config (default ./jetgate.yaml)")
    up.add_argument("--home", help="data directory (default ./.jetgate)")
    up.add_argument("--port", type=int, help="HTTP port (default 8000)")
    run = sub.add_parser("run", help="start one service alone (to scale it on its own)")
    run.add_argument("service", choices=SERVICES)
    run.add_argument("--config")
    run.add_argument("--home")
    run.add_argument("--port", type=int, help="HTTP port (ingress only)")
    tenants_cmd.add_parsers(sub)
    keys_cmd.add_parser(sub)
    replay_cli.add_parsers(sub)
    events_cmd.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, then the command line's flags."""
    settings = load_settings()
    updates: dict[str, object] = {}
    if getattr(args, "config", None):
        updates["config"] = Path(args.config)
    if getattr(args, "home", None):
        updates["home"] = Path(args.home)
    if getattr(args, "port", None):
        updates["ingress"] = settings.ingress.model_copy(update={"port": args.port})
    return settings.model_copy(update=updates)


def joined(settings: Settings, user: str) -> Settings:
    """Server URLs not set: those of the running `jetgate up` of `--home`, if there is one,
    connecting to its embedded nats-server as `user`."""
    home = settings.home.resolve()
    state = read_state(home)
    if state is None:
        return settings
    update: dict[str, object] = {
        name: getattr(settings, name) or getattr(state, name) for name in ("nats_url", "database_url", "clickhouse_url")}
    if not settings.nats_url:
        update["bus"] = bus_as(settings.bus, read_credentials(home), user)
    return settings.model_copy(update=update)


def _run_service(service: str, settings: Settings) -> int:
    """Join a running `jetgate up` (found by --home) unless server URLs are set."""
    importlib.import_module(f"services.{service}.__main__").main(joined(settings, service))
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    setup_process(settings, "jetgate")
    if args.command == "up":
        from jetgate.launcher import up

        sys.exit(up(settings))
    if args.command == "run":
        sys.exit(_run_service(args.service, settings))
    if args.command == "events":
        sys.exit(events_cmd.events_command(args, settings))
    if args.command in tenants_cmd.COMMANDS:
        sys.exit(tenants_cmd.tenants_command(args, settings))
    if args.command in ("audit", "usage"):
        sys.exit(replay_cli.command(args, settings))
    sys.exit(keys_cmd.keys_command(args, settings))


if __name__ == "__main__":
    main()
