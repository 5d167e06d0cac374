"""The `jetgate` command: up, run SERVICE, orgs, teams, users, keys, audit, usage, events.

The parsers come from light modules (`*_parser.py`: the standard library only), and only
the module of the command that runs is imported: `jetgate --help` and every admin command
start without the ingress, FastAPI or what other commands need."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jetgate import events_parser, keys_parser, tenants_parser
from jetgate.replay import parser as replay_parser

if TYPE_CHECKING:
    from shared.settings import Settings

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
    tenants_parser.add_parsers(sub)
    keys_parser.add_parser(sub)
    replay_parser.add_parsers(sub)
    events_parser.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, then the command line's flags."""
    from shared.settings import load_settings

    settings = load_settings()
    updates: dict[str, object] = {}
    if getattr(args, "config", None):
        updates["config"] = Path(args.config)
    if getattr(args, "home", None):
        updates["home"] = Path(args.home)
    if getattr(args, "port", None):
        updates["ingress"] = settings.ingress.model_copy(update={"port": args.port})
    return settings.model_copy(update=updates)


def _run_service(service: str, settings: Settings) -> int:
    """Join a running `jetgate up` (found by --home) unless server URLs are set."""
    from jetgate.home import joined
    from services.__main__ import load

    settings = joined(settings, service)
    load(service, settings)(settings)
    return 0


def _command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command, importing only its module."""
    if args.command == "up":
        from jetgate.launcher import up

        return up(settings)
    if args.command == "run":
        return _run_service(args.service, settings)
    if args.command == "events":
        from jetgate.events_cmd import events_command

        return events_command(args, settings)
    if args.command in tenants_parser.NOUNS:
        from jetgate.tenants_cmd import tenants_command

        return tenants_command(args, settings)
    if args.command in replay_parser.SINK_NAMES:
        from jetgate.replay.cli import command

        return command(args, settings)
    from jetgate.keys_cmd import keys_command

    return keys_command(args, settings)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from shared.service import setup_process, without_aiohttp

    settings = _settings(args)
    # `up` checks the providers' config with the router's own code, `run` decides by its service
    # (services/__main__.py); the admin and event commands never call HTTP through aiohttp
    if args.command not in ("up", "run"):
        without_aiohttp(settings.nats_url)
    setup_process(settings, "jetgate")
    sys.exit(_command(args, settings))


if __name__ == "__main__":
    main()
