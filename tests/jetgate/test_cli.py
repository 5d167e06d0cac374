"""`jetgate`'s start-up: the parsers are built from the standard library alone, a command
imports only its own module, and the light parsers agree with what runs them."""
from __future__ import annotations

import argparse
import subprocess
import sys

from jetgate import tenants_parser
from jetgate.admin_flags import add_limit_flags
from jetgate.replay.parser import SINK_NAMES
from jetgate.replay.sinks import SINKS
from jetgate.tenants_cmd import COMMANDS
from shared.admin_bodies import LIMIT_NAMES

HEAVY = ("pydantic", "fastapi", "starlette", "sqlalchemy", "nats", "httpx", "aiohttp", "services", "shared")


def loaded_after(code: str) -> set[str]:
    """The top-level packages imported by a fresh interpreter that ran `code`."""
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(result.stdout.split())


def test_help_imports_nothing_heavy() -> None:
    assert loaded_after("from jetgate.cli import _parser\n_parser()") & set(HEAVY) == set()


def test_the_admin_commands_import_no_ingress_and_no_web_framework() -> None:
    loaded = loaded_after("import jetgate.keys_cmd, jetgate.tenants_cmd, jetgate.replay.cli, jetgate.events_cmd")
    assert {"fastapi", "starlette", "uvicorn"} & loaded == set()
    modules = subprocess.run([sys.executable, "-c", "import sys, jetgate.keys_cmd, jetgate.tenants_cmd\n"
                              "print(*[m for m in sys.modules if m.startswith('services.')])"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert modules == []


def test_help_shows_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "jetgate.cli", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for command in ("up", "run", "orgs", "teams", "users", "keys", "audit", "usage", "events"):
        assert f"    {command} " in result.stdout


def test_the_parsers_name_what_the_commands_run() -> None:
    assert {name: tuple(sorted(sinks)) for name, sinks in SINKS.items()} == SINK_NAMES
    assert {command: spec.kind.value for command, spec in COMMANDS.items()} == tenants_parser.NOUNS
    limits = argparse.ArgumentParser()
    add_limit_flags(limits)
    assert tuple(action.dest for action in limits._actions if action.dest != "help") == LIMIT_NAMES
